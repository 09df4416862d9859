"""K-means sampling: cluster the candidates, pick from every cluster in proportion to its size."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .._optional import is_available
from .._validation import check_scalar
from ..errors import ValidationError
from ._common import (
    ParamsReprMixin,
    check_knn_backend,
    check_transform_spec,
    checked_candidates,
    embedded_rows,
)
from .base import Requirements, SelectionContext
from .registry import register_sampler

__all__ = ["KMeansSampler", "allocate_largest_remainder", "kmeans_fit"]

_WITHIN = ("nearest", "random")
_BLOCK_ROWS = 4096
#: backend="auto" uses faiss (when installed) from this many row-centroid pairs on; below it numpy
#: is fast enough and faiss is not even imported.
_FAISS_MIN_WORK = 10_000_000


def allocate_largest_remainder(sizes: np.ndarray, k: int) -> np.ndarray:
    """Split ``k`` over groups in proportion to ``sizes`` (Hamilton / largest-remainder method).

    Parameters
    ----------
    sizes : ndarray of int, shape (c,)
        Group sizes, ``sum(sizes) >= k``.
    k : int

    Returns
    -------
    ndarray of int64, shape (c,)
        Quotas summing to ``k``, each ``<= sizes[i]``; leftover seats go to the largest
        fractional parts, ties to the larger group, then the lower group index.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    total = int(sizes.sum())
    if k == 0 or total == 0:
        return np.zeros(sizes.shape, dtype=np.int64)
    exact = sizes * k / total
    quota = np.floor(exact).astype(np.int64)
    rest = k - int(quota.sum())
    if rest:
        order = np.lexsort((np.arange(sizes.size), -sizes, -(exact - quota)))
        quota[order[:rest]] += 1
    return quota


def _sq_dists(x: np.ndarray, centers: np.ndarray, c_sq: np.ndarray) -> np.ndarray:
    x_sq = np.einsum("ij,ij->i", x, x)
    d2 = x_sq[:, None] - 2.0 * (x @ centers.T) + c_sq[None, :]
    np.maximum(d2, 0.0, out=d2)
    return d2


def _assign(x: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest center of every row (ties to the lower center index) and the squared distance."""
    labels = np.empty(len(x), dtype=np.int64)
    best = np.empty(len(x), dtype=np.float64)
    c_sq = np.einsum("ij,ij->i", centers, centers)
    for start in range(0, len(x), _BLOCK_ROWS):
        d2 = _sq_dists(x[start : start + _BLOCK_ROWS], centers, c_sq)
        lab = np.argmin(d2, axis=1)
        labels[start : start + len(d2)] = lab
        best[start : start + len(d2)] = d2[np.arange(len(d2)), lab]
    return labels, best


def _kmeans_pp(x: np.ndarray, n_clusters: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii, 2007) from ``rng``."""
    m = len(x)
    chosen = [int(rng.integers(m))]
    d2 = _sq_dists(x, x[chosen], np.einsum("ij,ij->i", x[chosen], x[chosen]))[:, 0]
    for _ in range(1, n_clusters):
        total = float(d2.sum())
        if total <= 0:  # fewer distinct points than clusters: take the lowest unused rows
            unused = np.setdiff1d(np.arange(m), chosen)
            chosen.extend(unused[: n_clusters - len(chosen)].tolist())
            break
        pick = int(np.searchsorted(np.cumsum(d2), rng.random() * total, side="right"))
        pick = min(pick, m - 1)
        chosen.append(pick)
        c = x[pick : pick + 1]
        np.minimum(d2, _sq_dists(x, c, np.einsum("ij,ij->i", c, c))[:, 0], out=d2)
    return x[np.asarray(chosen[:n_clusters])].copy()


def kmeans_fit(
    x: np.ndarray,
    n_clusters: int,
    rng: np.random.Generator,
    *,
    max_iter: int = 50,
    tol: float = 1e-6,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lloyd's k-means on the rows of ``x``, seeded from ``rng``.

    Parameters
    ----------
    x : ndarray of float32, shape (m, d)
    n_clusters : int
        ``1 <= n_clusters <= m``.
    rng : numpy.random.Generator
        The only source of randomness (k-means++ seeding on numpy; faiss's seed is drawn from it).
    max_iter : int, default 50
    tol : float, default 1e-6
        Stop when the total squared centroid shift is below ``tol`` times the data's variance.
    backend : {"auto", "numpy", "faiss"}, default "auto"
        ``"auto"`` uses faiss when installed and ``m * n_clusters >= 1e7``, numpy otherwise.

    Returns
    -------
    centers : ndarray of float64, shape (n_clusters, d)
    labels : ndarray of int64, shape (m,)
        Cluster of every row (positions into ``x``).
    sq_dist : ndarray of float64, shape (m,)
        Squared distance of every row to its center.
    """
    use_faiss = backend == "faiss" or (
        backend == "auto" and len(x) * n_clusters >= _FAISS_MIN_WORK and is_available("faiss")
    )
    if use_faiss:
        from .._optional import require

        faiss = require("faiss", feature="kmeans backend='faiss'")
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        seed = int(rng.integers(2**31 - 1))
        km = faiss.Kmeans(x32.shape[1], n_clusters, niter=max_iter, seed=seed, verbose=False,
                          min_points_per_centroid=1, max_points_per_centroid=max(256, len(x32)))
        km.train(x32)
        centers = np.asarray(km.centroids, dtype=np.float64)
    else:
        x64 = np.asarray(x, dtype=np.float64)
        centers = _kmeans_pp(x64, n_clusters, rng)
        scale = float(np.var(x64, axis=0).sum()) or 1.0
        for _ in range(max_iter):
            labels, best = _assign(x64, centers)
            counts = np.bincount(labels, minlength=n_clusters)
            sums = np.zeros_like(centers)
            np.add.at(sums, labels, x64)
            new = centers.copy()
            full = counts > 0
            new[full] = sums[full] / counts[full, None]
            empty = np.flatnonzero(~full)
            if empty.size:  # re-seed empty clusters at the rows farthest from their centers
                far = np.argsort(-best, kind="stable")[: empty.size]
                new[empty] = x64[far]
            shift = float(((new - centers) ** 2).sum())
            centers = new
            if shift <= tol * scale and not empty.size:
                break
    labels, best = _assign(np.asarray(x, dtype=np.float64), centers)
    return centers, labels, best


@register_sampler("kmeans")
class KMeansSampler(ParamsReprMixin):
    """Cluster the candidates with k-means and pick from every cluster in proportion to its size.

    What it optimises: coverage of the candidates' *distribution*. Each cluster receives a
    share of ``k`` proportional to its number of candidates (largest-remainder rounding), and
    within a cluster the records nearest its centroid (its most typical members) or a random
    sample are taken. Unlike K-Center, it does not chase outliers: a lone far-away record forms
    no cluster of its own unless there are as many clusters as picks, and even then it is its
    centroid's nearest point only within a tiny cluster, which gets a small quota.

    When to prefer it: when the selected pool should mirror the mix of the data (categories,
    topics) while still covering every region; as a robust default on raw embeddings whose
    norms vary a lot; with ``within="random"`` for a stratified random sample. Prefer K-Center
    when rare, far-from-everything records are exactly what you want, and facility location when
    you want every record to have a close representative.

    Deterministic per ``ctx.rng``: k-means++ seeding (numpy) or faiss's seed is drawn from it.
    The training pool is not clustered; ``k`` is spread over the candidates' clusters. Picks
    are returned round by round: first the best record of every cluster (largest clusters
    first), then the second best, and so on, so any prefix of the result is spread out.

    Parameters
    ----------
    n_clusters : int, optional
        Number of clusters; default ``k`` (capped by the number of candidates), which gives
        ~one pick per cluster (the classic "records nearest the k-means centroids").
    within : {"nearest", "random"}, default "nearest"
        Which records of a cluster to take: the ones nearest its centroid (ties to the lower
        index), or a uniform sample from ``ctx.rng``.
    transform : str or EmbeddingTransform, optional
        An embedding transform (see :mod:`diverseevol.transforms`), fitted on the candidates and
        applied before clustering, e.g. ``"normalize"`` for spherical k-means.
    max_iter : int, default 50
    backend : {"auto", "numpy", "faiss"}, default "auto"
        ``"auto"``: faiss when installed and the job is large (candidates x clusters >= 1e7),
        else the numpy implementation. The two give different (each deterministic) clusterings.
    """

    name: ClassVar[str]
    requires: ClassVar[Requirements] = Requirements(embeddings=True)

    def __init__(
        self,
        n_clusters: int | None = None,
        within: str = "nearest",
        transform: Any = None,
        max_iter: int = 50,
        backend: str = "auto",
    ) -> None:
        check_scalar(n_clusters, "n_clusters", int, min_val=1, allow_none=True, what="None: k clusters")
        if within not in _WITHIN:
            raise ValidationError(f"within must be one of {list(_WITHIN)}; got {within!r}.")
        check_knn_backend(backend)
        check_scalar(max_iter, "max_iter", int, min_val=1)
        check_transform_spec(transform)
        self.n_clusters = n_clusters
        self.within = within
        self.transform = transform
        self.max_iter = max_iter
        self.backend = backend

    def select(self, ctx: SelectionContext, k: int) -> np.ndarray:
        """Select ``k`` candidates, spread over k-means clusters of the candidates.

        Parameters
        ----------
        ctx : SelectionContext
            Must carry ``embeddings`` of shape (N, d).
        k : int
            ``0 <= k <= len(ctx.candidate_idx)``.

        Returns
        -------
        ndarray of int64, shape (k,)
            Absolute row indices into Z, in pick order (round-robin over clusters).
        """
        cand, k = checked_candidates(self, ctx, k)
        if k == 0:
            return np.empty(0, dtype=np.int64)
        if k == cand.size:
            return cand.copy()
        x = embedded_rows(ctx, cand, cand, self.transform)  # fitted on the candidates
        n_clusters = min(self.n_clusters or k, cand.size)
        _, labels, sq = kmeans_fit(x, n_clusters, ctx.rng, max_iter=self.max_iter, backend=self.backend)
        sizes = np.bincount(labels, minlength=n_clusters)
        quota = allocate_largest_remainder(sizes, k)
        ranked: list[np.ndarray] = []
        for c in range(n_clusters):
            members = np.flatnonzero(labels == c)  # positions into cand, ascending
            if quota[c] == 0:
                ranked.append(members[:0])
            elif self.within == "nearest":
                ranked.append(members[np.lexsort((members, sq[members]))][: quota[c]])
            else:
                ranked.append(ctx.rng.choice(members, size=int(quota[c]), replace=False))
        cluster_order = np.lexsort((np.arange(n_clusters), -sizes))
        out: list[int] = []
        for depth in range(int(quota.max())):
            for c in cluster_order:
                if depth < len(ranked[c]):
                    out.append(int(ranked[c][depth]))
        return cand[np.asarray(out, dtype=np.int64)]
