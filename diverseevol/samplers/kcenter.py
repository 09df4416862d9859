"""K-Center (farthest-first) sampling: DiverseEvol's selection step."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from .._validation import check_k, check_scalar
from ..kernels.contract import check_metric
from ..norm_bias import norm_bias, warn_if_norm_biased
from ..transforms import EmbeddingTransform, Pipeline, make_transform
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
    transform : str, EmbeddingTransform, list of these, or None, default None
        Embedding transform applied before the distance work (see :mod:`diverseevol.transforms`):
        ``"normalize"`` (L2), ``"center"``, ``"whiten"`` (center, PCA-whiten, L2-normalise),
        ``"project"`` (seeded random projection, ``"project:dim=256"``), a composition such as
        ``"center+normalize"``, or a transform object. On every :meth:`select` call it is fitted
        once on the candidates' embeddings and applied to the pool's and the candidates' rows;
        the kernel is then exact on the transformed vectors. A random projection without its
        own ``random_state`` is seeded from ``ctx.rng``. ``None`` (default) is the paper's
        recipe: raw vectors. The transformed (N, d_out) float32 array is held in memory for
        the call; ``"whiten:dim=..."`` or ``"project:dim=..."`` make it smaller.

    Notes
    -----
    Norm bias: after every selection the sampler compares the mean L2 norm of the picks with
    that of the candidates (raw embeddings) and issues one
    :class:`~diverseevol.errors.NormBiasWarning` per sampler setting and process when the ratio
    is above :data:`~diverseevol.norm_bias.NORM_BIAS_THRESHOLD` (1.25). On Dolly-15k with
    all-MiniLM-L6-v2 embeddings the paper's recipe (Euclidean, raw vectors) gives ~1.8 and
    starves whole categories; ``transform="normalize"`` or ``"whiten"`` give ~1.0-1.1.

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
        transform: str | EmbeddingTransform | list[Any] | None = None,
    ) -> None:
        make_transform(transform)  # fail fast on an unknown spec; the sampler keeps it as given
        check_metric(metric)
        check_scalar(block_rows, "block_rows", int, min_val=1, allow_none=True)
        self.metric = metric
        self.backend = backend
        self.prune = prune
        self.block_rows = block_rows
        self.backend_options = dict(backend_options) if backend_options else None
        self.transform = transform

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters; ``transform`` only when set, so that the parameters (and the
        repr) of the paper's recipe, recorded in run directories before ``transform`` existed,
        stay the same and those runs still resume."""
        params = super().get_params()
        if params.get("transform") is None:
            params.pop("transform", None)
        return params

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

        vectors = self._transformed(ctx) if k > 0 else ctx.embeddings
        picks, radii = kcenter_select(
            vectors,
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
        del vectors
        if k > 0:
            self._check_norm_bias(ctx, picks)
        return Selection(indices=picks, radii=radii)

    def _transformed(self, ctx: SelectionContext) -> Any:
        """``ctx.embeddings``, or an (N, d_out) float32 array with the pool's and candidates' rows
        transformed (fitted on the candidates; other rows zero and never read by the kernel)."""
        if self.transform is None:
            return ctx.embeddings
        from ..transforms import fit_transform_rows

        built = make_transform(self.transform, random_state=ctx.rng)
        if built is None:
            return ctx.embeddings
        for step in built.steps if isinstance(built, Pipeline) else [built]:
            if getattr(step, "random_state", 0) is None:
                step.random_state = ctx.rng  # a projection object without a seed: deterministic per ctx.rng
        rows = np.concatenate([ctx.pool_idx, ctx.candidate_idx])
        return fit_transform_rows(built, ctx.embeddings, ctx.candidate_idx, rows, random_state=ctx.rng)

    def _check_norm_bias(self, ctx: SelectionContext, picks: np.ndarray) -> None:
        """Warn once per setting when the picks' mean norm is far above the candidates'."""
        bias = norm_bias(ctx.embeddings, ctx.candidate_idx, picks)
        where = f"K-Center (metric={self.metric!r}, transform={self.transform!r})"
        warn_if_norm_biased(bias, where=where, key=repr(self), stacklevel=3)

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
