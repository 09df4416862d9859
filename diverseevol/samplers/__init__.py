"""Samplers: the contract, the registry and the built-in strategies.

Built-in samplers (``list_samplers()`` also shows installed plugins):

============================  ==================================  ====================================
name                          class                               requires
============================  ==================================  ====================================
``"random"``                  :class:`RandomSampler`              ``Requirements()``
``"kcenter"``                 :class:`KCenterSampler`             ``Requirements(embeddings=True)``
``"least_confidence"``        :class:`LeastConfidenceSampler`     ``Requirements(scores={"confidence"})``
``"margin"``                  :class:`MarginSampler`              ``Requirements(scores={"margin"})``
``"entropy"``                 :class:`EntropySampler`             ``Requirements(scores={"entropy"})``
``"kmeans"``                  :class:`KMeansSampler`              ``Requirements(embeddings=True)``
``"facility_location"``       :class:`FacilityLocationSampler`    ``Requirements(embeddings=True)``
``"novelsum_greedy"``         :class:`NovelSumGreedySampler`      ``Requirements(embeddings=True)``
``"balanced_random"``         :class:`BalancedRandomSampler`      ``Requirements(labels=True)``
``"kmeans_random"``           :class:`KMeansRandomSampler`        ``Requirements(embeddings=True)``
``"kmq"``                     :class:`KMQSampler`                 ``Requirements(embeddings=True, scores={"loss"})``
``"longest"``                 :class:`LongestSampler`             ``Requirements(lengths=True)``
``"length_matched_random"``   :class:`LengthMatchedRandomSampler` ``Requirements(lengths=True)`` + the matched sampler's
``"kcenter_length_debiased"`` :class:`KCenterLengthDebiasedSampler` ``Requirements(embeddings=True, lengths=True)``
============================  ==================================  ====================================

The contract: a sampler declares :class:`Requirements` and its ``select(ctx, k)`` returns an
index array or a :class:`Selection` (indices plus covering radii); callers run it with
:func:`run_sampler` and read what it needs with :func:`requirements_of`.

Helpers for writing a sampler: :func:`check_k` (validate ``k`` against the candidates, as
every built-in sampler does) and :func:`require_signals`.

Importing this package needs numpy only.
"""

from .._validation import check_k
from ._common import require_signals
from .balanced_random import BalancedRandomSampler
from .base import Requirements, Sampler, Selection, SelectionContext, requirements_of, run_sampler
from .facility_location import FacilityLocationSampler
from .kcenter import KCenterSampler
from .kmeans import KMeansSampler
from .kmeans_random import KMeansRandomSampler
from .kmq import KMQSampler
from .length_debiased import KCenterLengthDebiasedSampler, LengthResidual
from .length_matched import LengthMatchedRandomSampler
from .longest import LongestSampler
from .novelsum_greedy import NovelSumGreedySampler
from .random import RandomSampler
from .registry import (
    ENTRY_POINT_GROUP,
    get_sampler,
    get_sampler_class,
    list_samplers,
    register_sampler,
    reload_plugins,
    unregister_sampler,
)
from .spec import SamplerSpec, build_sampler, parse_sampler_spec, parse_sampler_specs
from .uncertainty import EntropySampler, LeastConfidenceSampler, MarginSampler, UncertaintySampler

__all__ = [
    "ENTRY_POINT_GROUP",
    "BalancedRandomSampler",
    "EntropySampler",
    "FacilityLocationSampler",
    "KCenterLengthDebiasedSampler",
    "KCenterSampler",
    "KMQSampler",
    "KMeansRandomSampler",
    "KMeansSampler",
    "LeastConfidenceSampler",
    "LengthMatchedRandomSampler",
    "LengthResidual",
    "LongestSampler",
    "MarginSampler",
    "NovelSumGreedySampler",
    "RandomSampler",
    "Requirements",
    "Sampler",
    "SamplerSpec",
    "Selection",
    "SelectionContext",
    "UncertaintySampler",
    "build_sampler",
    "check_k",
    "get_sampler",
    "get_sampler_class",
    "list_samplers",
    "parse_sampler_spec",
    "parse_sampler_specs",
    "register_sampler",
    "reload_plugins",
    "require_signals",
    "requirements_of",
    "run_sampler",
    "unregister_sampler",
]
