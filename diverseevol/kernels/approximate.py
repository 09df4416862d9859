"""APPROXIMATE greedy K-Center for very large Z: per pick, update only the cells near the new center.

This module trades exactness for speed; its picks can differ from the exact
:func:`diverseevol.kcenter_select`. The docs (docs/kcenter_scale.md) give the measured overlap.

How it works
------------
1. The candidates are partitioned into ``n_cells`` cells by k-means (Lloyd's algorithm on a
   random sample, then one blocked assignment pass, optionally on a random projection to
   ``kmeans_dim`` dimensions), like the coarse quantiser of an IVF index. Each cell keeps its
   centroid (the mean of its members), its radius (farthest member from the centroid, computed
   in the full space) and the largest running min-distance of its members.
2. Initial distances to the training pool: exact blocked matrix products (``init="exact"``), or
   for a huge pool a FAISS IVF index over the pool (``init="ivf"``, approximate: a candidate's
   distance can be overestimated when its true nearest pool member is in an unprobed list).
3. Per pick, the new center can only lower the distances of cells it can reach:
   ``dist(center, centroid) - radius < largest min-distance in the cell`` (triangle inequality,
   with a margin for the float32 rounding of the computed distances).
   Of those cells only the ``n_probe`` nearest to the center are updated. Skipping the other
   reachable cells is the approximation: their members keep a distance that may be too large, so
   they may be picked too early. With ``n_probe=None`` every reachable cell is updated and the
   picks are exact (up to float rounding), which the tests check.

Memory: O(m) for the min-distance vector, cell order and norms, plus the k-means sample, plus
(by default, for in-memory arrays up to 2 GiB) a cell-ordered float32 copy of the candidates so
that each updated cell is one contiguous slice; without it (``np.memmap``, ``max_copy_bytes=0``)
the updated cells' rows are gathered from ``emb`` on each pick.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal, overload

import numpy as np
from scipy import sparse

from .._optional import is_available, require
from .._progress import progress_bar
from .._validation import RandomState, check_scalar
from ..errors import ValidationError
from ._inputs import check_problem, check_used_rows, empty_result
from ._rowblocks import d2_from_dots, draw_first_pick, embedding_rows, radius_from_sq, row_products, sq_norms
from ._shift import choose_shift
from .contract import check_metric

__all__ = ["CellIndex", "kcenter_select_approximate"]

logger = logging.getLogger(__name__)

#: Rows per block in the blocked passes (assignment, exact initial distances).
_BLOCK = 8192
#: Default largest cell-ordered copy of in-memory candidates.
_DEFAULT_COPY_BYTES = 2 << 30


class CellIndex:
    """The candidates of Z grouped into k-means cells, stored as cell-ordered index arrays.

    Attributes
    ----------
    centroids : ndarray of float32, shape (n_cells, d)
    rows : ndarray of int64, shape (m,)
        Absolute row indices into Z of the candidates, grouped by cell (ascending within a cell).
    starts : ndarray of int64, shape (n_cells + 1,)
        Cell j holds ``rows[starts[j]:starts[j + 1]]``.
    radius : ndarray of float64, shape (n_cells,)
        Largest distance of a member to its centroid.
    sq_norms : ndarray of float32, shape (m,)
        Squared norms of the (normalised, for cosine) candidate rows, in ``rows`` order.
    data : ndarray of float32, shape (m, d), or None
        The candidates' rows in ``rows`` order (unit rows for cosine), when a copy of at most
        ``max_copy_bytes`` was allowed; None means rows are gathered from ``emb`` on each pick.
    """

    def __init__(
        self,
        emb: np.ndarray,
        candidate_idx: np.ndarray,
        n_cells: int,
        rng: np.random.Generator,
        *,
        metric: str,
        n_iter: int = 10,
        sample_size: int | None = None,
        max_copy_bytes: int = 0,
        kmeans_dim: int | None = None,
        shift: np.ndarray | None = None,
    ) -> None:
        normalize = metric == "cosine"
        # Shifted arithmetic of the exact kernels (diverseevol.kernels._shift): float32 row s, or None.
        self.shift = None if normalize or shift is None else np.asarray(shift, dtype=np.float32)
        m = len(candidate_idx)
        d = emb.shape[1]
        n_cells = int(min(max(n_cells, 1), m))
        # k-means (and the assignment pass) may run on a random projection of the rows: the cells
        # only need to be compact, and their centroids and radii below are exact in the full space.
        proj = None
        if kmeans_dim is not None and kmeans_dim < d:
            proj = (rng.standard_normal((d, kmeans_dim)) / np.sqrt(kmeans_dim)).astype(np.float32)
        size = min(m, sample_size or max(40 * n_cells, 10_000))
        sample = np.sort(rng.choice(m, size=size, replace=False))
        xs = embedding_rows(emb, candidate_idx[sample], normalize=normalize)
        if proj is not None:
            xs = xs @ proj
        centroids = xs[rng.choice(size, size=n_cells, replace=False)].copy()
        for _ in range(n_iter):
            labels, _ = _nearest(xs, centroids)
            sums, counts = _cell_sums(labels, xs, n_cells)
            empty = counts == 0
            centroids = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
            if empty.any():  # reseed empty cells on random sample points
                centroids[empty] = xs[rng.choice(size, size=int(empty.sum()), replace=False)]
        del xs
        # Pass 1: assign every candidate; accumulate the full-space member sums.
        labels = np.empty(m, dtype=np.int64)
        sq = np.empty(m, dtype=np.float32)
        raw_max_sq = 0.0
        sums = np.zeros((n_cells, d), dtype=np.float64)
        for s in range(0, m, _BLOCK):
            x = embedding_rows(emb, candidate_idx[s : s + _BLOCK], normalize=normalize)
            lab, _ = _nearest(x if proj is None else x @ proj, centroids)
            labels[s : s + len(x)] = lab
            sq[s : s + len(x)] = sq_norms(x)
            if self.shift is not None:  # |x|^2 for the margin below, |x - s|^2 for the distances
                raw_max_sq = max(raw_max_sq, float(sq[s : s + len(x)].max()))
                y = x - self.shift
                sq[s : s + len(x)] = sq_norms(y)
            sums += _cell_sums(lab, x, n_cells)[0]
        counts = np.bincount(labels, minlength=n_cells)
        means32 = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        # Pass 2: each member's distance to its cell mean, from the difference (no cancellation).
        dist_c = np.empty(m, dtype=np.float64)
        for s in range(0, m, _BLOCK):
            x = embedding_rows(emb, candidate_idx[s : s + _BLOCK], normalize=normalize)
            diff = x - means32[labels[s : s + len(x)]]
            dist_c[s : s + len(x)] = np.sqrt(np.einsum("ij,ij->i", diff, diff, dtype=np.float64))
        order = np.lexsort((candidate_idx, labels))
        self.n_cells = n_cells
        self.centroids = means32
        self.centroids64 = means32.astype(np.float64)
        self.rows = candidate_idx[order]
        self.sq_norms = sq[order]
        self.cell_of = labels[order]
        self.starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.radius = np.zeros(n_cells, dtype=np.float64)
        nonempty = counts > 0
        self.radius[nonempty] = np.maximum.reduceat(dist_c[order], self.starts[:-1][nonempty])
        # float32 rounding of the rows and means: widen every radius by a margin at the data's scale.
        max_sq = max(float(sq.max()), 0.0)
        self.radius += 1e-5 * np.sqrt(max(max_sq, raw_max_sq))
        # Bound on |computed - exact| of a float32 squared distance |x|^2 + |c|^2 - 2 x.c (as in the
        # numpy kernel's pruning): skipped cells are those whose computed values could not change.
        if self.shift is not None:  # shifted: |x - s|^2 + (2 c.w - |w|^2) - 2 x.w, as in _pruning
            max_sq = 1.5 * max_sq + float(np.linalg.norm(self.shift.astype(np.float64))) * np.sqrt(max_sq)
        self.sq_error = (2 * d + 16) * float(np.finfo(np.float32).eps) * 2.0 * max_sq * (1 + 1e-3)
        self.data: np.ndarray | None = None
        if m * d * 4 <= max_copy_bytes:
            self.data = np.empty((m, d), dtype=np.float32)
            for s in range(0, m, _BLOCK):
                self.data[s : s + _BLOCK] = embedding_rows(
                    emb, self.rows[s : s + _BLOCK], normalize=normalize
                )


def _as_centers(cells: CellIndex, pv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``pv`` as centers: the vectors products are taken with, and each one's constant (see :mod:`._shift`)."""
    if cells.shift is None:
        return pv, sq_norms(pv)
    w = pv - cells.shift
    K = row_products(pv, w)
    K *= 2
    K -= sq_norms(w)
    return w, K


def _cell_sums(labels: np.ndarray, x: np.ndarray, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell float64 sums of the rows of ``x`` and the member counts."""
    member = sparse.csr_matrix(
        (np.ones(len(labels), dtype=np.float64), (labels, np.arange(len(labels)))),
        shape=(n_cells, len(labels)),
    )
    return np.asarray(member @ x.astype(np.float64)), np.bincount(labels, minlength=n_cells)


def _nearest(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of each row of x and the clamped squared distance to it."""
    c_sq = np.einsum("ij,ij->i", centroids, centroids)
    g = x @ centroids.T
    g *= -2.0
    g += c_sq[None, :]
    lab = np.argmin(g, axis=1)
    d2 = g[np.arange(len(x)), lab] + np.einsum("ij,ij->i", x, x)
    return lab.astype(np.int64), np.maximum(d2, 0.0)


def _exact_init(emb: np.ndarray, cells: CellIndex, pool: np.ndarray, *, metric: str) -> np.ndarray:
    """Exact squared distance of each candidate (cell order) to its nearest pool member, blocked.

    A blocked product finds the nearest pool member; the distance to it is then recomputed with the
    per-row arithmetic of the exact kernels, so unpruned runs reproduce them.
    """
    normalize = metric == "cosine"
    mind = np.full(len(cells.rows), np.inf, dtype=np.float32)
    for ps in range(0, len(pool), 2048):
        pv, p_sq = _as_centers(cells, embedding_rows(emb, pool[ps : ps + 2048], normalize=normalize))
        for s in range(0, len(cells.rows), _BLOCK):
            x = embedding_rows(emb, cells.rows[s : s + _BLOCK], normalize=normalize)
            g = x @ pv.T
            g *= -2.0
            g += p_sq[None, :]
            near = np.argmin(g, axis=1)
            pg = pv[near]
            d2 = d2_from_dots(
                row_products(x, pg),
                (cells.sq_norms[s : s + len(x)], None, None),
                (p_sq[near], None, None),
            )
            np.minimum(mind[s : s + len(x)], d2, out=mind[s : s + len(x)])
    return mind


def _ivf_init(
    emb: np.ndarray, cells: CellIndex, pool: np.ndarray, *, metric: str, nprobe: int, rng: np.random.Generator
) -> np.ndarray:
    """Approximate nearest-pool-member squared distances with a FAISS IVF index over the pool."""
    faiss = require("faiss", feature="kcenter_select_approximate(init='ivf')", extra="faiss")
    normalize = metric == "cosine"
    d = emb.shape[1]
    nlist = int(max(1, min(4 * np.sqrt(len(pool)), len(pool) // 39)))
    quant = faiss.IndexFlatL2(d)
    index = faiss.IndexIVFFlat(quant, d, nlist, faiss.METRIC_L2)
    train = pool[np.sort(rng.choice(len(pool), size=min(len(pool), 256 * nlist), replace=False))]
    index.train(embedding_rows(emb, train, normalize=normalize))
    for ps in range(0, len(pool), 65536):
        index.add(embedding_rows(emb, pool[ps : ps + 65536], normalize=normalize))
    index.nprobe = int(min(nprobe, nlist))
    mind = np.empty(len(cells.rows), dtype=np.float32)
    for s in range(0, len(cells.rows), _BLOCK):
        x = embedding_rows(emb, cells.rows[s : s + _BLOCK], normalize=normalize)
        dist, _ = index.search(x, 1)
        mind[s : s + len(x)] = np.maximum(dist[:, 0], 0.0)  # an empty probe returns +inf-like max float
    return mind


@overload
def kcenter_select_approximate(
    emb: Any, pool_idx: Any, k: int, *, return_radii: Literal[False] = ..., **kw: Any
) -> np.ndarray: ...


@overload
def kcenter_select_approximate(
    emb: Any, pool_idx: Any, k: int, *, return_radii: Literal[True], **kw: Any
) -> tuple[np.ndarray, np.ndarray]: ...


def kcenter_select_approximate(
    emb: Any,
    pool_idx: Any,
    k: int,
    *,
    candidate_idx: Any = None,
    metric: str = "euclidean",
    random_state: RandomState = None,
    n_cells: int | None = None,
    n_probe: int | None = 16,
    init: str = "auto",
    init_nprobe: int = 16,
    kmeans_iter: int = 10,
    kmeans_sample: int | None = None,
    kmeans_dim: int | None = None,
    max_copy_bytes: int | None = None,
    return_radii: bool = False,
    progress: bool | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """APPROXIMATE greedy K-Center: farthest-first with per-pick updates limited to nearby cells.

    Use it when the exact :func:`diverseevol.kcenter_select` (one pass over all candidates per
    pick) is too slow, e.g. for 10M+ records. The picks are not guaranteed to equal the exact ones;
    see the module docstring and docs/kcenter_scale.md for the measured agreement.

    Parameters
    ----------
    emb : array-like or np.memmap of shape (N, d), or str / path-like
        Embeddings of Z, one row per record; a ``.npy`` path is memory-mapped.
    pool_idx : array-like of int, shape (p,)
        Absolute row indices into Z of the training pool (may be empty).
    k : int
        Number of records to select.
    candidate_idx : array-like of int, shape (m,), optional
        Absolute row indices into Z that may be picked (default: Z minus the pool).
    metric : {"euclidean", "cosine"}
    random_state : int, Generator or None
        Seeds the k-means sample and, for an empty pool, the first center.
    n_cells : int, optional
        Number of k-means cells (default ``sqrt(m)``, at most 16,384).
    n_probe : int or None, default 16
        Reachable cells updated per pick, nearest first. None updates every reachable cell: exact picks.
    init : {"auto", "exact", "ivf"}
        Initial pool distances: "exact" (blocked products, ``m * p * d`` work) or "ivf" (FAISS IVF
        index over the pool, approximate). "auto" uses "ivf" when faiss is installed and
        ``m * p * d > 1e13``.
    init_nprobe : int
        Lists probed per candidate by the IVF pool index.
    kmeans_iter, kmeans_sample : int
        Lloyd iterations and sample size (default ``max(40 * n_cells, 10000)``) of the cell k-means.
    kmeans_dim : int or None, default None
        Run the k-means and the assignment of every candidate to a cell on a Gaussian random
        projection to this many dimensions (when d is larger), cutting their cost by ``d / kmeans_dim``
        for very wide embeddings. The cells' centroids and radii are still computed in the full
        space, so ``n_probe=None`` stays exact, but the cells are looser and the capped mode agrees
        less with exact (measured at d = 128 -> 64: overlap 41-71% instead of 86-98%). None: full space.
    max_copy_bytes : int, optional
        Largest cell-ordered float32 copy of the candidates to make (then each updated cell is a
        contiguous slice; gathering its rows instead costs more than the distance product itself:
        1.1 ms for 3,131 rows x 128 on the development machine). Default: 2 GiB for in-memory
        arrays, 0 for ``np.memmap`` (rows are gathered from the file).
    return_radii : bool
        Also return each pick's estimated distance to its nearest earlier center (an upper bound
        of the true one; +inf for a drawn first pick).
    progress : bool, optional
        Progress bar over the picks.

    Returns
    -------
    picks : ndarray of int64, shape (k,)
        Absolute row indices into Z in pick order.
    radii : ndarray of float64, shape (k,)
        Only with ``return_radii=True``.
    """
    check_metric(metric)
    if init not in ("auto", "exact", "ivf"):
        raise ValidationError(f"init must be 'auto', 'exact' or 'ivf'; got {init!r}.")
    n_probe = check_scalar(n_probe, "n_probe", int, min_val=1, allow_none=True, what="None: exact")
    problem = check_problem(emb, pool_idx, k, candidate_idx, random_state)
    x, pool, cand, k, rng = problem.emb, problem.pool, problem.cand, problem.k, problem.rng
    d = x.shape[1]
    if k == 0:
        return empty_result(bool(return_radii))
    check_used_rows(x, pool, cand, cosine=metric == "cosine")

    first_pick = None
    if not len(pool):
        first_pick = draw_first_pick(rng, cand)
    m = len(cand)
    t0 = time.perf_counter()
    s_row = choose_shift(x, pool, cand, metric, first_pick)
    cells = CellIndex(
        x,
        cand,
        int(n_cells or min(16_384, max(1, round(np.sqrt(m))))),
        rng,
        metric=metric,
        n_iter=kmeans_iter,
        sample_size=kmeans_sample,
        kmeans_dim=kmeans_dim,
        shift=None if s_row is None else np.asarray(x[s_row], dtype=np.float32),
        max_copy_bytes=int(
            max_copy_bytes
            if max_copy_bytes is not None
            else (0 if isinstance(x, np.memmap) else _DEFAULT_COPY_BYTES)
        ),
    )
    t1 = time.perf_counter()
    init_used = "none"
    if len(pool):
        use_ivf = init == "ivf" or (init == "auto" and is_available("faiss") and m * len(pool) * d > 1e13)
        init_used = "ivf" if use_ivf else "exact"
        if use_ivf:
            mind = _ivf_init(x, cells, pool, metric=metric, nprobe=init_nprobe, rng=rng)
        else:
            mind = _exact_init(x, cells, pool, metric=metric)
    else:
        mind = np.full(m, np.inf, dtype=np.float32)
    logger.info(
        "approximate k-center: %d candidates in %d cells, n_probe=%s, initial pool distances: %s",
        m,
        cells.n_cells,
        n_probe,
        init_used,
    )
    t2 = time.perf_counter()
    picks, radii = _pick_loop(
        x, cells, mind, k, metric=metric, first_pick=first_pick, n_probe=n_probe, progress=progress
    )
    logger.debug(
        "approximate k-center timings: cells %.2f s, initial distances %.2f s, picks %.2f s",
        t1 - t0,
        t2 - t1,
        time.perf_counter() - t2,
    )
    return (picks, radii) if return_radii else picks


def _cell_max(mind: np.ndarray, starts: np.ndarray) -> np.ndarray:
    out = np.full(len(starts) - 1, -np.inf, dtype=np.float64)
    nonempty = starts[1:] > starts[:-1]
    out[nonempty] = np.maximum.reduceat(mind, starts[:-1][nonempty])
    return out


def _pick_loop(
    emb: np.ndarray,
    cells: CellIndex,
    mind: np.ndarray,
    k: int,
    *,
    metric: str,
    first_pick: int | None,
    n_probe: int | None,
    progress: bool | None,
) -> tuple[np.ndarray, np.ndarray]:
    normalize = metric == "cosine"
    starts = cells.starts
    cmax = _cell_max(mind, starts)
    c_sq_cent = np.einsum("ij,ij->i", cells.centroids64, cells.centroids64)
    picks = np.empty(k, dtype=np.int64)
    radii = np.empty(k, dtype=np.float64)
    n_updated = 0
    for j in progress_bar(
        range(k), disable=None if progress is None else not progress, desc="approx k-center"
    ):
        if j == 0 and first_pick is not None:
            pos = int(np.flatnonzero(cells.rows == first_pick)[0])
            radii[j] = np.inf
        else:
            top = cmax.max()
            tied_cells = np.flatnonzero(cmax == top)
            best_pos, best_row = -1, None
            for cj in tied_cells:  # ties to the lowest absolute row index, across cells
                s, e = starts[cj], starts[cj + 1]
                hits = s + np.flatnonzero(mind[s:e] == top)
                if len(hits) and (best_row is None or cells.rows[hits[0]] < best_row):
                    best_pos, best_row = int(hits[0]), int(cells.rows[hits[0]])
            pos = best_pos
            radii[j] = radius_from_sq(float(top), metric)
        picks[j] = cells.rows[pos]
        mind[pos] = -1.0
        cj = int(cells.cell_of[pos])
        cmax[cj] = mind[starts[cj] : starts[cj + 1]].max()
        if j == k - 1:
            break
        c = embedding_rows(emb, picks[j : j + 1], normalize=normalize)[0]
        c64 = c.astype(np.float64)
        w, K = _as_centers(cells, c[None, :])
        c, cf = w[0], (K[0], None, None)
        dc = np.sqrt(np.maximum(c_sq_cent + float(np.dot(c64, c64)) - 2.0 * (cells.centroids64 @ c64), 0.0))
        # A member's computed distance can drop only if the lower bound dc - radius, squared, is below
        # the cell's largest computed min-distance plus the rounding bound of a computed distance.
        lb = np.maximum(dc - cells.radius, 0.0)
        reach = lb * lb <= cmax + cells.sq_error
        chosen = np.flatnonzero(reach)
        if n_probe is not None and len(chosen) > n_probe:
            # Cells with no finite distance yet (empty pool) are always updated; the cap applies to the others.
            fresh = cmax[chosen] == np.inf
            rest = chosen[~fresh]
            if len(rest) > n_probe:
                rest = rest[np.argpartition(dc[rest], n_probe - 1)[:n_probe]]
            chosen = np.concatenate([chosen[fresh], rest])
        if not len(chosen):
            continue
        if cells.data is not None:  # cell-ordered copy: each cell is one contiguous slice
            for q in chosen:
                s, e = starts[q], starts[q + 1]
                if e == s:
                    continue
                n_updated += e - s
                dist = d2_from_dots(
                    row_products(cells.data[s:e], c), (cells.sq_norms[s:e], None, None), cf
                )
                seg = mind[s:e]
                np.minimum(seg, dist, out=seg)
                cmax[q] = seg.max()
            continue
        seg_idx = np.concatenate([np.arange(starts[q], starts[q + 1]) for q in chosen])
        n_updated += len(seg_idx)
        xr = embedding_rows(emb, cells.rows[seg_idx], normalize=normalize)
        dots = row_products(xr, c)  # one dot per row: no BLAS thread wake-up per pick
        dist = d2_from_dots(dots, (cells.sq_norms[seg_idx], None, None), cf)
        mind[seg_idx] = np.minimum(mind[seg_idx], dist)
        for q in chosen:
            s, e = starts[q], starts[q + 1]
            cmax[q] = mind[s:e].max() if e > s else -np.inf
    logger.debug(
        "approximate k-center: %.1f%% of candidate rows updated per pick",
        100 * n_updated / max(1, (k - 1) * len(mind)),
    )
    return picks, radii
