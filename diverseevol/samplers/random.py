"""Random sampling: the paper's baseline."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ._common import ParamsReprMixin, checked_candidates
from .base import Requirements, SelectionContext
from .registry import register_sampler

__all__ = ["RandomSampler"]


@register_sampler("random")
class RandomSampler(ParamsReprMixin):
    """Pick ``k`` candidates uniformly at random, without replacement.

    Requires no signal, so a loop using it never runs an embedding or scoring pass.

    The draw uses ``ctx.rng`` only, over the candidates sorted ascending: the result depends on
    the candidate *set* and the generator's state, not on the order of ``ctx.candidate_idx``.

    Examples
    --------
    >>> import numpy as np
    >>> from diverseevol import SelectionContext, get_sampler
    >>> ctx = SelectionContext(pool_idx=np.arange(5), candidate_idx=np.arange(5, 20),
    ...                        rng=np.random.default_rng(0))
    >>> picks = get_sampler("random").select(ctx, 3)
    >>> picks.shape, picks.dtype.name
    ((3,), 'int64')
    """

    name: ClassVar[str]
    requires: ClassVar[Requirements] = Requirements()

    def __init__(self) -> None:
        pass

    def select(self, ctx: SelectionContext, k: int) -> np.ndarray:
        """Return ``k`` distinct candidates in draw order.

        Parameters
        ----------
        ctx : SelectionContext
        k : int
            Number of records to select, ``0 <= k <= len(ctx.candidate_idx)``.

        Returns
        -------
        ndarray of int64, shape (k,)
            Absolute row indices into Z, a subset of ``ctx.candidate_idx``.

        Raises
        ------
        PoolExhaustedError
            If ``k`` exceeds the number of candidates.
        """
        cand, k = checked_candidates(self, ctx, k)
        if k == 0:
            return np.empty(0, dtype=np.int64)
        return cand[ctx.rng.choice(cand.size, size=k, replace=False)].astype(np.int64, copy=False)
