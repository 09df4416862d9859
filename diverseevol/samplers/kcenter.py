"""K-Center (farthest-first) sampling: DiverseEvol's selection step."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from .._validation import check_k
from ..errors import ValidationError
from ..kernels.kcenter import METRICS
from ._common import ParamsReprMixin, require_signals
from .base import Requirements, Selection, SelectionContext
from .registry import register_sampler

__all__ = ["KCenterSampler"]


def _deprecated_wrapper(method: Any) -> Any:
    """Mark a method as a deprecated wrapper, so run_sampler does not take it for an override."""
    method._deprecated_wrapper = True
    return method


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

    Notes
    -----
    :meth:`select` returns a :class:`~diverseevol.samplers.Selection` whose ``radii`` hold the
    covering radius at each pick: the distance of the pick to its nearest center when it was
    picked (Euclidean, or ``1 - cosine similarity`` for ``metric="cosine"``; non-increasing;
    ``inf`` for a first pick made with an empty pool). ``np.asarray(selection)`` gives the
    indices. The sampler keeps nothing between calls.

    Examples
    --------
    >>> import numpy as np
    >>> from diverseevol import SelectionContext, get_sampler
    >>> emb = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    >>> ctx = SelectionContext(pool_idx=np.arange(10), candidate_idx=np.arange(10, 200),
    ...                        rng=np.random.default_rng(0), embeddings=emb)
    >>> selection = get_sampler("kcenter").select(ctx, 5)
    >>> selection.indices.shape, bool(np.all(np.diff(selection.radii) <= 0))
    ((5,), True)
    """

    name: ClassVar[str]
    requires: ClassVar[Requirements] = Requirements(embeddings=True)

    def __init__(
        self,
        metric: str = "euclidean",
        backend: str = "auto",
        prune: str | bool = "auto",
        block_rows: int | None = None,
        backend_options: Mapping[str, Any] | None = None,
    ) -> None:
        if metric not in METRICS:
            raise ValidationError(f"metric must be one of {list(METRICS)}; got {metric!r}.")
        if block_rows is not None and (isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1):
            raise ValidationError(f"block_rows must be a positive int or None; got {block_rows!r}.")
        self.metric = metric
        self.backend = backend
        self.prune = prune
        self.block_rows = block_rows
        self.backend_options = dict(backend_options) if backend_options else None

    def select(self, ctx: SelectionContext, k: int) -> Selection:
        """Select ``k`` candidates by farthest-first traversal, with the covering radius at each pick.

        Parameters
        ----------
        ctx : SelectionContext
            Must carry ``embeddings`` of shape (N, d).
        k : int
            Number of records to select, ``0 <= k <= len(ctx.candidate_idx)``.

        Returns
        -------
        Selection
            ``indices``: int64, shape (k,), absolute row indices into Z in pick order;
            ``radii``: float64, shape (k,), the distance of each pick to its nearest center at
            the moment it was picked.

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
        return Selection(indices=picks, radii=radii)

    @_deprecated_wrapper
    def select_with_radii(self, ctx: SelectionContext, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Deprecated: use ``select(ctx, k)``, which returns a Selection with ``indices`` and ``radii``.

        Returns
        -------
        picks : ndarray of int64, shape (k,)
            Absolute row indices into Z, in pick order.
        radii : ndarray of float64, shape (k,)
            Distance of each pick to its nearest center at the moment it was picked.
        """
        warnings.warn(
            "KCenterSampler.select_with_radii(ctx, k) is deprecated; use select(ctx, k), which "
            "returns a Selection with .indices and .radii.",
            DeprecationWarning,
            stacklevel=2,
        )
        selection = self.select(ctx, k)
        return np.array(selection.indices), np.array(selection.radii)

    @property
    def last_radii_(self) -> np.ndarray:
        """Removed: the sampler keeps no state between calls; read ``select(ctx, k).radii``."""
        raise AttributeError(
            "KCenterSampler no longer keeps last_radii_ (a sampler holds only hyperparameters); "
            "the radii come with the picks: selection = sampler.select(ctx, k); selection.radii."
        )
