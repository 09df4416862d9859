"""Facility-location sampling: lazy greedy on a k-nearest-neighbour cosine-similarity graph."""

from __future__ import annotations

import heapq
from typing import Any, ClassVar, NamedTuple

import numpy as np

from .._optional import is_available, require
from .._validation import check_scalar
from ..errors import ValidationError
from ._common import (
    ParamsReprMixin,
    check_knn_backend,
    check_transform_spec,
    checked_candidates,
    embedded_rows,
    pool_then_candidates,
)
from .base import Requirements, SelectionContext
from .registry import register_sampler

__all__ = ["FacilityLocationSampler", "KNNGraph", "facility_location_greedy", "knn_graph"]

_BLOCK_ROWS = 2048
#: backend="auto" uses faiss (when installed) from this many points on; below it numpy is fast enough.
_FAISS_MIN_ROWS = 5000


class KNNGraph(NamedTuple):
    """A k-NN similarity graph over m points, stored by *covering* point (CSR by column).

    Edge (i, j, s): point j, if selected, covers point i with similarity s = max(cos(x_i, x_j), 0),
    where j is one of i's ``n_neighbors`` nearest neighbours (i itself always is, s = 1).

    Attributes
    ----------
    indptr : ndarray of int64, shape (m + 1,)
        Edges covered by j are ``covered[indptr[j]:indptr[j + 1]]``.
    covered : ndarray of int64, shape (n_edges,)
        The covered point i of each edge (positions 0..m-1), ascending within each j.
    sim : ndarray of float64, shape (n_edges,)
        The edge's similarity s.
    """

    indptr: np.ndarray
    covered: np.ndarray
    sim: np.ndarray


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ValidationError(
            f"Facility location uses cosine similarity, which is undefined for the all-zero embedding "
            f"at position {int(zero[0])} of the selection's rows. Drop that record from the candidates."
        )
    return x / norms[:, None]


def knn_graph(x: np.ndarray, n_neighbors: int, *, backend: str = "auto") -> KNNGraph:
    """Build the k-NN cosine-similarity graph of the rows of ``x``, never an m x m matrix.

    Parameters
    ----------
    x : ndarray of shape (m, d)
        The points (rows are L2-normalised here; an all-zero row raises).
    n_neighbors : int
        Neighbours per point, the point itself included (capped at m).
    backend : {"auto", "numpy", "faiss"}, default "auto"
        ``"numpy"`` computes similarities block by block (``_BLOCK_ROWS`` x m at a time);
        ``"faiss"`` uses an exact ``IndexFlatIP`` search. ``"auto"``: faiss when installed and
        m >= 5,000.

    Returns
    -------
    KNNGraph
    """
    u = _unit_rows(x)
    m = len(u)
    kk = min(int(n_neighbors), m)
    use_faiss = backend == "faiss" or (backend == "auto" and m >= _FAISS_MIN_ROWS and is_available("faiss"))
    if use_faiss:
        faiss = require("faiss", feature="facility_location backend='faiss'")
        index = faiss.IndexFlatIP(u.shape[1])
        index.add(np.ascontiguousarray(u))
        sims, nbrs = index.search(np.ascontiguousarray(u), kk)
        nbrs = nbrs.astype(np.int64)
        sims = sims.astype(np.float64)
    else:
        nbrs = np.empty((m, kk), dtype=np.int64)
        sims = np.empty((m, kk), dtype=np.float64)
        for start in range(0, m, _BLOCK_ROWS):
            block = u[start : start + _BLOCK_ROWS] @ u.T
            rows = np.arange(len(block))
            block[rows, start + rows] = np.inf  # the point itself is always a neighbour
            if kk < m:
                part = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
            else:
                part = np.tile(np.arange(m), (len(block), 1))
            nbrs[start : start + len(block)] = part
            sims[start : start + len(block)] = np.take_along_axis(block, part, axis=1)
    # Self-edges: similarity exactly 1 (faiss may have returned a duplicate instead of the point itself).
    rows = np.arange(m)
    has_self = (nbrs == rows[:, None]).any(axis=1)
    if not has_self.all():
        missing = np.flatnonzero(~has_self)
        nbrs[missing, -1] = missing
    sims[nbrs == rows[:, None]] = 1.0
    sims = np.maximum(sims, 0.0)
    covered = np.repeat(rows, kk)
    by = nbrs.reshape(-1)
    order = np.lexsort((covered, by))
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(by, minlength=m), out=indptr[1:])
    return KNNGraph(indptr=indptr, covered=covered[order], sim=sims.reshape(-1)[order])


def _gain(graph: KNNGraph, cover: np.ndarray, j: int) -> float:
    lo, hi = graph.indptr[j], graph.indptr[j + 1]
    d = graph.sim[lo:hi] - cover[graph.covered[lo:hi]]
    return float(d[d > 0].sum())


def facility_location_greedy(
    graph: KNNGraph, selectable: np.ndarray, fixed: np.ndarray, k: int
) -> np.ndarray:
    """Lazy greedy maximisation of F(S) = Σ_i max_{j ∈ S ∪ fixed} s(i, j) (0 where no edge).

    F is monotone submodular, so a gain computed earlier is an upper bound of the current one
    (Minoux's lazy greedy): only the top of a max-heap of stale gains is re-evaluated. Ties go
    to the lower position, so the result equals plain greedy's.

    Parameters
    ----------
    graph : KNNGraph
        Over m points.
    selectable : ndarray of int64, shape (c,)
        Positions 0..m-1 that may be picked.
    fixed : ndarray of int64, shape (p,)
        Positions already selected (the training pool): they cover from the start.
    k : int
        ``k <= len(selectable)``.

    Returns
    -------
    ndarray of int64, shape (k,)
        Picked positions, in pick order.
    """
    m = len(graph.indptr) - 1
    cover = np.zeros(m, dtype=np.float64)
    for j in fixed:
        lo, hi = graph.indptr[j], graph.indptr[j + 1]
        idx = graph.covered[lo:hi]
        np.maximum.at(cover, idx, graph.sim[lo:hi])
    heap = [(-_gain(graph, cover, int(j)), int(j)) for j in selectable]
    heapq.heapify(heap)
    picks: list[int] = []
    while len(picks) < k:
        _, j = heapq.heappop(heap)
        g = _gain(graph, cover, j)
        if not heap or (-g, j) <= heap[0]:
            picks.append(j)
            lo, hi = graph.indptr[j], graph.indptr[j + 1]
            idx = graph.covered[lo:hi]
            cover[idx] = np.maximum(cover[idx], graph.sim[lo:hi])
        else:
            heapq.heappush(heap, (-g, j))
    return np.asarray(picks, dtype=np.int64)


@register_sampler("facility_location")
class FacilityLocationSampler(ParamsReprMixin):
    """Greedy facility location: pick records so that every record has a similar selected one.

    What it optimises: the facility-location objective F(S) = Σ_i max_{j ∈ P ∪ S} sim(i, j)
    over every record i of the pool P and the candidates, with sim the cosine similarity
    clipped at 0 and restricted to a k-nearest-neighbour graph (sim = 0 beyond a record's
    ``n_neighbors`` nearest). F is monotone submodular, so greedy is within 1 - 1/e of the
    optimum; the lazy greedy used here returns exactly plain greedy's picks (ties to the lower
    index) while re-evaluating only a few gains per pick. The graph is built with faiss when
    installed, else blockwise in numpy: memory is O(m · n_neighbors), never an m x m matrix
    (the numpy graph build still costs O(m² d) time).

    When to prefer it: when the pool should *represent* the data (every record close to a
    selected one), dense regions getting more picks than sparse ones, and outliers few. Cosine
    similarity makes it insensitive to embedding norms. Prefer K-Center to reach far corners of
    the space, k-means for proportional coverage at a lower cost.

    Deterministic: it uses no randomness (``ctx.rng`` is left untouched).

    Parameters
    ----------
    n_neighbors : int, default 10
        Neighbours per record in the similarity graph, the record itself included. More
        neighbours make the objective closer to the dense one, at O(m · n_neighbors) memory.
    transform : str or EmbeddingTransform, optional
        An embedding transform fitted on the candidates and applied (to pool and candidates)
        before the graph is built, e.g. ``"whiten"``.
    backend : {"auto", "numpy", "faiss"}, default "auto"
        k-NN search backend (``"auto"``: faiss when installed and pool + candidates >= 5,000).
    """

    name: ClassVar[str]
    requires: ClassVar[Requirements] = Requirements(embeddings=True)

    def __init__(self, n_neighbors: int = 10, transform: Any = None, backend: str = "auto") -> None:
        self.n_neighbors = check_scalar(n_neighbors, "n_neighbors", int, min_val=1)
        check_knn_backend(backend)
        check_transform_spec(transform)
        self.transform = transform
        self.backend = backend

    def select(self, ctx: SelectionContext, k: int) -> np.ndarray:
        """Select ``k`` candidates by lazy greedy facility location.

        Parameters
        ----------
        ctx : SelectionContext
            Must carry ``embeddings`` of shape (N, d).
        k : int
            ``0 <= k <= len(ctx.candidate_idx)``.

        Returns
        -------
        ndarray of int64, shape (k,)
            Absolute row indices into Z, in pick order (largest marginal gain first).
        """
        cand, k = checked_candidates(self, ctx, k)
        if k == 0:
            return np.empty(0, dtype=np.int64)
        pool, rows = pool_then_candidates(ctx, cand)  # positions: pool first, then candidates
        x = embedded_rows(ctx, rows, cand, self.transform)
        graph = knn_graph(x, self.n_neighbors, backend=self.backend)
        selectable = np.arange(pool.size, rows.size, dtype=np.int64)
        fixed = np.arange(pool.size, dtype=np.int64)
        picks = facility_location_greedy(graph, selectable, fixed, k)
        return rows[picks]
