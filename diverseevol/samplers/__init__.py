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
from .base import Requirements, Sampler, Selection, SelectionContext, requirements_of, run_sampler
from .facility_location import FacilityLocationSampler
from .kcenter import KCenterSampler
from .kmeans import KMeansSampler
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
from .uncertainty import EntropySampler, LeastConfidenceSampler, MarginSampler, UncertaintySampler

__all__ = [
    "ENTRY_POINT_GROUP",
    "EntropySampler",
    "FacilityLocationSampler",
    "KCenterSampler",
    "KMeansSampler",
    "LeastConfidenceSampler",
    "MarginSampler",
    "NovelSumGreedySampler",
    "RandomSampler",
    "Requirements",
    "Sampler",
    "Selection",
    "SelectionContext",
    "UncertaintySampler",
    "check_k",
    "get_sampler",
    "get_sampler_class",
    "list_samplers",
    "register_sampler",
    "reload_plugins",
    "require_signals",
    "requirements_of",
    "run_sampler",
    "unregister_sampler",
]
