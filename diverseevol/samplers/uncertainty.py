"""Uncertainty samplers: least confidence, smallest margin, highest entropy.

Each reads one per-record signal from ``ctx.scores`` (an array of shape (N,) in Z's index
space) and picks the ``k`` most uncertain candidates, most uncertain first. The signals are
computed by a scorer (e.g. :mod:`diverseevol.hf`) from the current model M_t:

``"confidence"``
    mean over the record's *response* tokens of the probability of the most likely next token;
``"margin"``
    mean over the response tokens of ``p_top1 - p_top2``;
``"entropy"``
    mean over the response tokens of the entropy (nats) of the next-token distribution.

These are *probabilities over response tokens*. The original DiverseEvol code scored raw
logits averaged over all tokens, prompt included, which mixes the model's uncertainty about the
instruction it was given with its uncertainty about the answer and is not comparable across
vocabulary sizes; the numbers here therefore differ from the original baselines'.

Ties break toward the lowest index: candidates are sorted ascending and ranked with a stable
sort.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .._validation import check_k
from ._common import ParamsReprMixin, require_signals, score_array, sorted_candidates
from .base import Requirements, SelectionContext
from .registry import register_sampler

__all__ = ["UNCERTAINTY_SCORES", "EntropySampler", "LeastConfidenceSampler", "MarginSampler", "UncertaintySampler"]


class UncertaintySampler(ParamsReprMixin):
    """Rank candidates by one score in ``ctx.scores`` and take the first ``k``.

    Subclasses set ``signal`` (the key in ``ctx.scores``) and ``highest_first`` (True when a
    larger score means more uncertain). Not registered itself.
    """

    name: ClassVar[str]
    requires: ClassVar[Requirements]
    signal: ClassVar[str]
    highest_first: ClassVar[bool] = False

    def __init__(self) -> None:
        pass

    def ranking(self, ctx: SelectionContext) -> np.ndarray:
        """Return every candidate, most uncertain first (absolute row indices into Z, int64)."""
        require_signals(self, ctx)
        cand = sorted_candidates(ctx)
        values = score_array(ctx, self.signal, cand)
        order = np.argsort(-values if self.highest_first else values, kind="stable")
        return cand[order]

    def select(self, ctx: SelectionContext, k: int) -> np.ndarray:
        """Return the ``k`` most uncertain candidates, most uncertain first.

        Parameters
        ----------
        ctx : SelectionContext
            Must carry ``scores[self.signal]`` of shape (N,).
        k : int
            Number of records to select, ``0 <= k <= len(ctx.candidate_idx)``.

        Returns
        -------
        ndarray of int64, shape (k,)
            Absolute row indices into Z, a subset of ``ctx.candidate_idx``.

        Raises
        ------
        MissingSignalError
            If ``ctx.scores`` has no ``self.signal`` entry.
        PoolExhaustedError
            If ``k`` exceeds the number of candidates.
        """
        require_signals(self, ctx)
        k = check_k(k, len(ctx.candidate_idx))
        if k == 0:
            return np.empty(0, dtype=np.int64)
        return self.ranking(ctx)[:k]


@register_sampler("least_confidence")
class LeastConfidenceSampler(UncertaintySampler):
    """Pick the candidates with the *lowest* ``scores["confidence"]``.

    ``confidence`` is, per record, the mean over its response tokens of the probability the
    model M_t gives its most likely next token (a probability, not a raw logit as in the
    original code). Requires ``Requirements(scores={"confidence"})``.
    """

    requires: ClassVar[Requirements] = Requirements(scores=frozenset({"confidence"}))
    signal: ClassVar[str] = "confidence"
    highest_first: ClassVar[bool] = False


@register_sampler("margin")
class MarginSampler(UncertaintySampler):
    """Pick the candidates with the *smallest* ``scores["margin"]``.

    ``margin`` is, per record, the mean over its response tokens of ``p_top1 - p_top2``, the
    gap between the two most likely next-token probabilities under M_t. Requires
    ``Requirements(scores={"margin"})``.
    """

    requires: ClassVar[Requirements] = Requirements(scores=frozenset({"margin"}))
    signal: ClassVar[str] = "margin"
    highest_first: ClassVar[bool] = False


@register_sampler("entropy")
class EntropySampler(UncertaintySampler):
    """Pick the candidates with the *highest* ``scores["entropy"]``.

    ``entropy`` is, per record, the mean over its response tokens of the entropy of M_t's
    next-token distribution. Not in the paper; it costs nothing extra once the other two are
    computed. Requires ``Requirements(scores={"entropy"})``.
    """

    requires: ClassVar[Requirements] = Requirements(scores=frozenset({"entropy"}))
    signal: ClassVar[str] = "entropy"
    highest_first: ClassVar[bool] = True


#: The per-record scores the uncertainty samplers read (one each), in the column order a scorer
#: produces them (:mod:`diverseevol.hf` computes all three in one pass).
UNCERTAINTY_SCORES: tuple[str, ...] = tuple(
    cls.signal for cls in (LeastConfidenceSampler, MarginSampler, EntropySampler)
)
