"""K-Center (farthest-first) sampling: DiverseEvol's selection step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from .._validation import check_k
from ..errors import ValidationError
from ._common import ParamsReprMixin, require_signals
from .base import SelectionContext
from .registry import register_sampler

__all__ = ["KCenterSampler"]

_METRICS = ("euclidean", "cosine")


@register_sampler("kcenter")
class KCenterSampler(ParamsReprMixin):
    """Greedy K-Center over the model's embeddings: each pick is the candidate farthest from its
    nearest member of the training pool plus the picks so far.

    A thin wrapper around :func:`diverseevol.kernels.kcenter.kcenter_select`; the sampler holds
    only hyperparameters. Requires ``{"embeddings"}``. When the pool is empty, the first center
    is drawn from ``ctx.rng``; everything else is deterministic, ties going to the lowest index.

    Parameters
    ----------
    metric : {"euclidean", "cosine"}, default "euclidean"
        ``"euclidean"`` is the paper's. On raw mean-pooled embeddings it tends to pick high-norm
        outliers; ``"cosine"`` gave a more diverse pool on real data (see ``docs/diversity.md``).
    backend : str, default "auto"
        Compute backend of :func:`~diverseevol.kernels.kcenter.kcenter_select`.
    prune : str or bool, default "auto"
        Exact pruning setting passed through to ``kcenter_select`` (triangle inequality and lazy
        evaluation on the numpy and faiss backends; ``False`` computes every distance). Never
        changes the picks.
    block_rows : int, optional
        Rows per block of the distance work; ``None`` lets the kernel choose.
    backend_options : mapping, optional
        Further keyword arguments for the backend (e.g. FAISS or torch settings, or
        ``{"lazy": True}`` for the numpy kernel).

    Attributes
    ----------
    last_radii_ : ndarray of float, shape (k,) or None
        The covering radius at each pick of the most recent :meth:`select` /
        :meth:`select_with_radii` call: the distance of the pick to its nearest center when it
        was picked (Euclidean, or ``1 - cosine similarity`` for ``metric="cosine"``;
        non-increasing; ``inf`` for a first pick made with an empty pool). ``None`` before the
        first call.

    Notes
    -----
    A selection loop that wants to record the covering radii should call
    :meth:`select_with_radii`, which returns them with the picks; ``last_radii_`` is the same
    array kept for interactive use.

    Examples
    --------
    >>> import numpy as np
    >>> from diverseevol import SelectionContext, get_sampler
    >>> emb = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    >>> ctx = SelectionContext(pool_idx=np.arange(10), candidate_idx=np.arange(10, 200),
    ...                        rng=np.random.default_rng(0), embeddings=emb)
    >>> picks, radii = get_sampler("kcenter").select_with_radii(ctx, 5)
    >>> bool(np.all(np.diff(radii) <= 0))
    True
    """

    name: ClassVar[str]
    requires: ClassVar[frozenset[str]] = frozenset({"embeddings"})

    def __init__(
        self,
        metric: str = "euclidean",
        backend: str = "auto",
        prune: str | bool = "auto",
        block_rows: int | None = None,
        backend_options: Mapping[str, Any] | None = None,
    ) -> None:
        if metric not in _METRICS:
            raise ValidationError(f"metric must be one of {list(_METRICS)}; got {metric!r}.")
        if block_rows is not None and (isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1):
            raise ValidationError(f"block_rows must be a positive int or None; got {block_rows!r}.")
        self.metric = metric
        self.backend = backend
        self.prune = prune
        self.block_rows = block_rows
        self.backend_options = dict(backend_options) if backend_options else None
        self.last_radii_: np.ndarray | None = None

    def select_with_radii(self, ctx: SelectionContext, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Select ``k`` candidates and return them with the covering radius at each pick.

        Parameters
        ----------
        ctx : SelectionContext
            Must carry ``embeddings`` of shape (N, d).
        k : int
            Number of records to select, ``0 <= k <= len(ctx.candidate_idx)``.

        Returns
        -------
        picks : ndarray of int64, shape (k,)
            Absolute row indices into Z, in pick order.
        radii : ndarray of float, shape (k,)
            Distance of each pick to its nearest center at the moment it was picked (see
            ``last_radii_``).

        Raises
        ------
        MissingSignalError
            If ``ctx.embeddings`` is None.
        PoolExhaustedError
            If ``k`` exceeds the number of candidates.
        """
        require_signals(self, ctx)
        k = check_k(k, len(ctx.candidate_idx))
        from ..kernels.kcenter import kcenter_select
        picks, radii = kcenter_select(
            ctx.embeddings,
            ctx.pool_idx,
            k,
            candidate_idx=ctx.candidate_idx,
            metric=self.metric,
            backend=self.backend,
            random_state=ctx.rng,
            return_radii=True,
            prune=self.prune,
            block_rows=self.block_rows,
            **(self.backend_options or {}),
        )
        picks = np.asarray(picks, dtype=np.int64)
        self.last_radii_ = np.asarray(radii)
        return picks, self.last_radii_

    def select(self, ctx: SelectionContext, k: int) -> np.ndarray:
        """Select ``k`` candidates by farthest-first traversal.

        Returns
        -------
        ndarray of int64, shape (k,)
            Absolute row indices into Z, in pick order; see :meth:`select_with_radii` for the
            parameters and errors. The radii are kept in ``last_radii_``.
        """
        return self.select_with_radii(ctx, k)[0]
