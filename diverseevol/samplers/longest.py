"""The longest records: the length baseline of Zhao et al. 2024 and Ivison et al. 2025."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ._common import ParamsReprMixin, checked_candidates
from ._groups import group_values
from .base import Requirements, SelectionContext
from .registry import register_sampler

__all__ = ["LongestSampler"]


@register_sampler("longest")
class LongestSampler(ParamsReprMixin):
    """Pick the ``k`` longest candidates, longest first; ties to the lowest index.

    The baseline of Zhao et al. 2024, *Long Is More for Alignment* (arXiv 2402.04833), which found
    the longest 1,000 responses a strong instruction-tuning set, and one of the recipes of Ivison
    et al. 2025 (arXiv 2503.01807), where selecting by length gained +1.3 at one scale and lost
    23.3 points at another: a baseline to tell a length effect from a diversity effect, not a
    recommendation. Requires ``Requirements(lengths=True)``: ``ctx.lengths``, one length per
    record (in :class:`~diverseevol.EvolutionLoop`, tokens when the scorer can count them, else
    words). No randomness.

    Examples
    --------
    >>> import numpy as np
    >>> from diverseevol import SelectionContext, get_sampler
    >>> ctx = SelectionContext(pool_idx=[0], candidate_idx=[1, 2, 3, 4], lengths=[9, 5, 7, 5, 7])
    >>> get_sampler("longest").select(ctx, 3).tolist()
    [2, 4, 1]
    """

    name: ClassVar[str]
    requires: ClassVar[Requirements] = Requirements(lengths=True)

    def __init__(self) -> None:
        pass

    def select(self, ctx: SelectionContext, k: int) -> np.ndarray:
        """Return the ``k`` longest candidates, longest first.

        Parameters
        ----------
        ctx : SelectionContext
            Must carry ``lengths`` of shape (N,).
        k : int
            ``0 <= k <= len(ctx.candidate_idx)``.

        Returns
        -------
        ndarray of int64, shape (k,)
            Absolute row indices into Z, by decreasing length; equal lengths by increasing index.

        Raises
        ------
        MissingSignalError
            If ``ctx.lengths`` is None.
        PoolExhaustedError
            If ``k`` exceeds the number of candidates.
        """
        cand, k = checked_candidates(self, ctx, k)
        order = np.argsort(-group_values(ctx, "lengths", cand), kind="stable")  # cand ascending: ties low first
        return cand[order[:k]]
