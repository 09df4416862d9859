"""Category-balanced random sampling (Ivison et al. 2025): an equal share of the budget per label."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ._common import ParamsReprMixin, checked_candidates
from ._groups import fair_shares, group_values, round_robin, weighted_draw
from .base import Requirements, SelectionContext
from .registry import register_sampler

__all__ = ["BalancedRandomSampler"]


@register_sampler("balanced_random")
class BalancedRandomSampler(ParamsReprMixin):
    """Random records, the same number from every label (category) among the candidates.

    The recipe "category-balanced random" of Ivison et al. 2025, *Large-Scale Data Selection for
    Instruction Tuning* (arXiv 2503.01807), which beat plain random selection there (42.2 vs
    40.9). Requires ``Requirements(labels=True)``: ``ctx.labels``, one label per record (in
    :class:`~diverseevol.EvolutionLoop`, ``label_field="category"`` for Dolly).

    The budget ``k`` is split max-min fairly over the labels present among the candidates: every
    label gets ``k // g`` picks (``g`` labels), a label with fewer candidates than its share gets
    all of them and its surplus is shared among the others, and the last ``k mod g`` picks go to
    labels drawn uniformly from ``ctx.rng`` among those with room left. Inside a label the picks
    are uniform without replacement. The training pool is not counted: the *new* picks are
    balanced, whatever the pool holds.

    The result is ordered round-robin over the labels (sorted): first one pick of every label,
    then a second, ..., so any prefix is balanced too. Deterministic per ``ctx.rng``.

    Examples
    --------
    >>> import numpy as np
    >>> from diverseevol import SelectionContext, get_sampler
    >>> labels = np.array(["qa"] * 50 + ["poem"] * 3 + ["code"] * 20)
    >>> ctx = SelectionContext(pool_idx=[], candidate_idx=np.arange(73), labels=labels)
    >>> picks = get_sampler("balanced_random").select(ctx, 12)
    >>> sorted(np.unique(labels[picks], return_counts=True)[1].tolist())
    [3, 4, 5]
    """

    name: ClassVar[str]
    requires: ClassVar[Requirements] = Requirements(labels=True)

    def __init__(self) -> None:
        pass

    def select(self, ctx: SelectionContext, k: int) -> np.ndarray:
        """Select ``k`` candidates, balanced over ``ctx.labels``.

        Parameters
        ----------
        ctx : SelectionContext
            Must carry ``labels`` of shape (N,).
        k : int
            ``0 <= k <= len(ctx.candidate_idx)``.

        Returns
        -------
        ndarray of int64, shape (k,)
            Absolute row indices into Z, round-robin over the labels.

        Raises
        ------
        MissingSignalError
            If ``ctx.labels`` is None.
        PoolExhaustedError
            If ``k`` exceeds the number of candidates.
        """
        cand, k = checked_candidates(self, ctx, k)
        if k == 0:
            return np.empty(0, dtype=np.int64)
        _, group = np.unique(group_values(ctx, "labels", cand), return_inverse=True)
        sizes = np.bincount(group)
        quota = fair_shares(sizes, k, ctx.rng)
        ranked = [
            weighted_draw(np.flatnonzero(group == g), int(quota[g]), None, ctx.rng) for g in range(sizes.size)
        ]
        return cand[round_robin(ranked, np.arange(sizes.size))]
