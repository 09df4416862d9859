"""Exact greedy K-Center (farthest-first) in numpy: the reference backend.

The backend contract is described in :mod:`diverseevol.kernels.kcenter`. This module assumes its
input was validated there: sorted, disjoint int64 index arrays, finite rows, ``1 <= k``.

How it works
------------
* One running minimum of the squared distance of every candidate to its nearest center (pool plus
  picks so far): O(N) floats. Squared norms are computed once, so the distance of every candidate to
  a new center costs one matrix-vector product, ``d2 = |x|^2 + |c|^2 - 2 x.c``, clamped at 0.
* The distance to the initial pool comes from a blocked BLAS GEMM (never an N x |pool| matrix at
  once). The per-pick products use ``np.einsum`` on row tiles spread over a few threads: unlike BLAS
  GEMV, whose result for a row depends on where the row falls in the call (tail kernels, thread
  splits), einsum gives every row a result that depends on its data only. Exact duplicates therefore
  tie exactly (the lowest index wins), and skipping tiles (pruning) or reordering rows never changes a
  single bit of the running minimum.
* Rows are read in place when they are dense enough in ``emb`` (the candidates span of a C-contiguous
  array or memmap), copied contiguously when that fits ``max_copy_bytes``, and gathered block by block
  otherwise (a memmap bigger than RAM is streamed).
* Exact pruning (triangle inequality): every candidate keeps the center it is nearest to. A new
  center ``c`` can lower the distance ``m`` of a candidate whose nearest center is ``a`` only if
  ``d(c, a) < 2 m``. The test uses a rigorous bound on the rounding error of the computed squared
  distances, so a skipped row is one whose computed distance could not have dropped: the picks and
  radii are bit-identical to ``prune=False``. Tiles without such a row are skipped; tiles where
  at least a third of the rows need work are computed whole; from the others only the rows needing
  work are gathered. When grouping rows by nearest center would avoid much work (rows needing work
  concentrated in few groups but spread over many tiles), the live candidate rows are copied once,
  grouped (ski-rental rule: only after the avoidable work has cost about ten passes).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .._progress import progress_bar
from ..errors import ValidationError
from ._rowblocks import center_vector, d2_from_dots, factors, sq_norms, work_dtype

logger = logging.getLogger(__name__)

__all__ = ["OPTIONS", "farthest_first"]

#: Options accepted by :func:`farthest_first` besides ``metric`` and ``first_pick``.
OPTIONS = ("prune", "lazy", "block_rows", "n_threads", "max_copy_bytes", "progress", "stats")

_TILE_BYTES = 4 << 20  # rows per per-pick work tile: pruning granularity and thread job size
_INIT_BYTES = 32 << 20  # bound on each block of the initial GEMM (data block and result block)
_POOL_BYTES = 256 << 20  # pool rows kept in memory at once for the initial distances
_GATHER_COST = 3  # a gathered row costs about this many contiguous row reads (read + write + read)
_EMPTY = np.empty(0, dtype=np.int64)
_REORDER_FACTOR = 10.0  # regroup after this many passes of avoidable work (a fresh copy costs ~2-20 passes)
_LAZY_BATCH = 64  # rows brought up to date in the first round of a lazy argmax
_LAZY_GROWTH = 4  # the batch grows by this factor while it cannot prove its argmax
_LAZY_MAX_FRACTION = 8  # an epoch set larger than 1/8 of the live rows falls back to one full update
_PRUNE_TRIAL_PASSES = 8  # prune='auto': pruned passes timed before they are compared with a full read
_PRUNE_LOSS = 1.2  # ... and dropped when their median costs more than this many full reads
_LAZY_TRIAL_PICKS = 4  # adaptive mode: lazy picks timed before they are compared with a full pass
_EPOCH_ROWS = 4096  # rows with the largest minima searched by the lazy picks until they cannot prove a pick
_LAZY_MAX_COOLDOWN = 64  # at most this many eager picks after repeated fallbacks
_CENTER_CACHE_BYTES = 256 << 20  # pick vectors kept for lazy updates; beyond it they are re-read from Z


def farthest_first(
    emb: np.ndarray,
    pool_idx: np.ndarray,
    candidate_idx: np.ndarray,
    k: int,
    *,
    metric: str,
    first_pick: int | None,
    prune: bool | str = "auto",
    lazy: bool | str = "auto",
    block_rows: int | None = None,
    n_threads: int | None = None,
    max_copy_bytes: int | None = None,
    progress: bool | None = None,
    stats: dict[str, Any] | None = None,
    nearest_pool_idx: np.ndarray | None = None,
    **unknown: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy farthest-first selection of ``k`` rows of ``emb`` among ``candidate_idx``.

    Parameters
    ----------
    emb : ndarray or np.memmap of shape (N, d)
        Embeddings of Z, floating dtype (float32 computed in float32, float64 in float64, other float
        dtypes in float32).
    pool_idx : ndarray of int64, shape (p,)
        Sorted absolute row indices into Z of the training pool (may be empty).
    candidate_idx : ndarray of int64, shape (n,)
        Sorted absolute row indices into Z that may be picked, disjoint from ``pool_idx``.
    k : int
        Number of picks, ``1 <= k <= n``.
    metric : {"euclidean", "cosine"}
        Distance. ``"cosine"`` works on L2-normalised rows (normalised on the fly).
    first_pick : int or None
        Absolute index of the first pick when ``pool_idx`` is empty, else None.
    prune : {"auto", True, False}
        Exact triangle-inequality pruning. ``"auto"`` enables it when ``d >= 16`` and the number of
        centers stays small next to the number of candidates. Never changes the result.
    lazy : {"auto", True, False}
        Exact lazy evaluation: a new center is applied only to the rows that could be the next pick
        (those whose running minimum, an upper bound while stale, is the largest); the others keep
        it pending until they could matter. ``True`` always searches lazily (full passes only where
        the lazy search cannot prove a pick); ``"auto"`` (unless ``prune=False``) does so while lazy
        picks are measured to cost less than a full pass, and switches to full passes, retrying
        later, otherwise. Never changes the result.
    block_rows : int, optional
        Rows per work tile (default: about 4 MiB of rows).
    n_threads : int, optional
        Threads for the per-pick products (default: the usable CPU cores, at most 8).
    max_copy_bytes : int, optional
        Largest contiguous copy of the candidate rows the kernel may make (to read sparse candidate
        sets fast, convert dtypes, or group rows for pruning). Default: a quarter of the available
        RAM for in-memory arrays, 0 for memmaps (they are streamed, never loaded).
    progress : bool, optional
        Show a progress bar over the picks (default: only for large problems).
    stats : dict, optional
        Filled with counters: ``evaluations`` (candidate-center distances computed after the
        initial ones), ``evaluations_unpruned`` (what ``prune=False`` computes), ``reorders``,
        ``layout``, ``prune``, ``lazy``, ``lazy_adaptive``, ``lazy_fallbacks`` (full updates where
        the lazy search could not prove a pick), ``lazy_switches`` (adaptive switches to full
        passes), ``lazy_epochs``, ``n_threads``, ``init_s`` (norms and distances to the pool,
        seconds) and ``pick_s`` (the picks, seconds).
    nearest_pool_idx : ndarray of int64, shape (n,), optional
        For backends that search the pool themselves (FAISS): absolute row index into Z of each
        candidate's nearest pool member, in ``candidate_idx`` order. The kernel then skips its own
        search and only recomputes the distance to that member with its arithmetic.

    Returns
    -------
    picks : ndarray of int64, shape (k,)
        Absolute row indices into Z, in pick order.
    radii : ndarray of float64, shape (k,)
        Distance of each pick to its nearest center (pool + earlier picks) when it was picked:
        Euclidean distance, or ``1 - cosine similarity`` for ``metric="cosine"``; ``inf`` for a
        first pick made with an empty pool. Non-increasing.
    """
    if unknown:
        raise ValidationError(
            f"backend 'numpy' got unknown option(s) {sorted(unknown)}; it accepts {list(OPTIONS)}. "
            f"Check the spelling, or pass backend-specific options only to that backend."
        )
    if metric not in ("euclidean", "cosine"):
        raise ValidationError(f"metric must be 'euclidean' or 'cosine'; got {metric!r}.")
    if prune not in ("auto", True, False):
        raise ValidationError(f"prune must be 'auto', True or False; got {prune!r}.")
    if lazy not in ("auto", True, False):
        raise ValidationError(f"lazy must be 'auto', True or False; got {lazy!r}.")
    if lazy == "auto" and prune is False:
        lazy = False
    state = _Selector(
        emb,
        pool_idx,
        candidate_idx,
        k,
        cosine=metric == "cosine",
        prune=prune,
        lazy=lazy,
        block_rows=block_rows,
        n_threads=n_threads,
        max_copy_bytes=max_copy_bytes,
        nearest_pool_idx=nearest_pool_idx,
    )
    try:
        picks, radii = state.run(first_pick, progress)
    finally:
        state.close()
    if stats is not None:
        stats.update(state.stats())
    return picks, radii


def _available_ram() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


class _Selector:
    """State of one farthest-first run; rows live in a physical order (the layout)."""

    def __init__(
        self,
        emb: np.ndarray,
        pool_idx: np.ndarray,
        candidate_idx: np.ndarray,
        k: int,
        *,
        cosine: bool,
        prune: bool | str,
        lazy: bool | str,
        block_rows: int | None,
        n_threads: int | None,
        max_copy_bytes: int | None,
        nearest_pool_idx: np.ndarray | None = None,
    ) -> None:
        self.emb = emb
        self.pool = pool_idx
        self.cand = candidate_idx
        self.k = k
        self.cosine = cosine
        d = emb.shape[1]
        self.d = d
        self.dtype = work_dtype(emb)
        self.itemsize = self.dtype.itemsize
        is_memmap = isinstance(emb, np.memmap)
        if max_copy_bytes is None:
            max_copy_bytes = 0 if is_memmap else _available_ram() // 4
        if int(max_copy_bytes) < 0:
            raise ValidationError(f"max_copy_bytes must be >= 0; got {max_copy_bytes}.")
        self.max_copy_bytes = int(max_copy_bytes)
        if block_rows is None:
            # A few MiB per tile, and at least ~512 tiles when there are enough rows, so pruning can
            # skip at the granularity of typical groups.
            by_bytes = _TILE_BYTES // (d * self.itemsize)
            block_rows = int(max(64, min(by_bytes, -(-len(candidate_idx) // 512))))
        if isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1:
            raise ValidationError(f"block_rows must be a positive int; got {block_rows!r}.")
        self.tile = int(block_rows)
        if n_threads is None:
            n_threads = min(_usable_cpus(), 8)
        if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) or n_threads < 1:
            raise ValidationError(f"n_threads must be a positive int; got {n_threads!r}.")
        self.n_threads = int(n_threads)
        self._executor: ThreadPoolExecutor | None = None

        n_active_max = min(len(pool_idx), len(candidate_idx)) + k
        self.prune_adaptive = prune == "auto"  # pruning dropped if pruned passes cost more than full ones
        if prune == "auto":
            prune = d >= 16 and n_active_max * 4 <= len(candidate_idx)
        self.prune = bool(prune)
        self.pruned_pass_s: deque[float] = deque(maxlen=_PRUNE_TRIAL_PASSES)
        self.prune_dropped = False
        self.lazy = lazy is not False
        self.lazy_adaptive = lazy == "auto"  # lazy only while it is measured to beat full passes
        self.nearest_pool_idx = nearest_pool_idx

        eps = float(np.finfo(self.dtype).eps)
        # Rigorous bound factor on the absolute error of a computed squared distance, relative to
        # |x|^2 + |c|^2 (two dot products of length d plus three roundings; see module docstring).
        self.delta = (2 * d + 16) * eps
        self._choose_layout(is_memmap)
        self.evaluations = 0
        self.evaluations_unpruned = 0
        self.reorders = 0
        self.waste = 0.0
        self.lazy_fallbacks = 0
        self.lazy_switches = 0
        self.epochs = 0

    # ------------------------------------------------------------------ layout
    def _choose_layout(self, is_memmap: bool) -> None:
        emb, cand = self.emb, self.cand
        lo, hi = int(cand[0]), int(cand[-1]) + 1
        span = hi - lo
        rows_contiguous = emb.ndim == 2 and emb.strides[1] == emb.itemsize and emb.strides[0] >= 0
        cand_bytes = len(cand) * self.d * self.itemsize
        if emb.dtype == self.dtype and rows_contiguous and len(cand) * 2 >= span:
            self.layout = "span"
            self.X: np.ndarray | None = emb[lo:hi]
            self.abs_idx = np.arange(lo, hi, dtype=np.int64)
            live = np.zeros(span, dtype=bool)
            live[cand - lo] = True
        elif cand_bytes <= self.max_copy_bytes:
            self.layout = "copy"
            self.X = np.empty((len(cand), self.d), dtype=self.dtype)
            step = max(1, _INIT_BYTES // (self.d * max(emb.itemsize, self.itemsize)))
            for a in range(0, len(cand), step):
                self.X[a : a + step] = emb[cand[a : a + step]]
            self.abs_idx = cand.copy()
            live = np.ones(len(cand), dtype=bool)
        else:
            self.layout = "stream"
            self.X = None
            self.abs_idx = cand.copy()
            live = np.ones(len(cand), dtype=bool)
        self.sorted_layout = True
        self.n_phys = len(self.abs_idx)
        self.live0 = live
        logger.debug(
            "kcenter numpy: layout=%s, %d candidates, %d physical rows, prune=%s, tile=%d rows",
            self.layout, len(cand), self.n_phys, self.prune, self.tile,
        )

    def _rows(self, a: int, b: int) -> np.ndarray:
        """Physical rows [a, b) as a (b - a, d) array of the work dtype."""
        if self.X is not None:
            return self.X[a:b]
        return np.asarray(self.emb[self.abs_idx[a:b]], dtype=self.dtype)

    def _gather(self, idx: np.ndarray) -> np.ndarray:
        """Rows of Z (absolute indices, any order) as a work-dtype array."""
        out = np.empty((len(idx), self.d), dtype=self.dtype)
        order = np.argsort(idx, kind="stable")
        step = max(1, _INIT_BYTES // (self.d * self.itemsize))
        for a in range(0, len(idx), step):
            sel = order[a : a + step]
            out[sel] = self.emb[idx[sel]]
        return out

    def _ranges(self, a: int, b: int, step: int) -> list[tuple[int, int]]:
        return [(s, min(s + step, b)) for s in range(a, b, step)]

    # ------------------------------------------------------------- row norms
    def _init_norms(self) -> None:
        n = self.n_phys
        self.sqn = np.empty(n, dtype=self.dtype)
        gather = self.X is None
        step = self.tile if gather else max(self.tile, (n + self.n_threads - 1) // self.n_threads)

        def job(r: tuple[int, int]) -> None:
            self.sqn[r[0] : r[1]] = sq_norms(self._rows(*r))

        self._map(job, self._ranges(0, n, step))
        if self.cosine:
            zero = self.live0 & (self.sqn == 0)
            if zero.any():
                bad = int(self.abs_idx[np.flatnonzero(zero)[0]])
                raise ValidationError(
                    f"metric='cosine' needs rows with a non-zero norm; row {bad} is all zeros. "
                    f"Drop it from candidate_idx or use metric='euclidean'."
                )
            _, self.inv, self.u = self._factors(self.sqn)
        live_sqn = self.sqn[self.live0]
        self.max_sqn = float(live_sqn.max()) if live_sqn.size else 0.0

    # ------------------------------------------------------------- threading
    def _map(self, fn: Any, items: list[Any]) -> list[Any]:
        if self.n_threads == 1 or len(items) <= 1:
            return [fn(it) for it in items]
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.n_threads, thread_name_prefix="kcenter")
        return list(self._executor.map(fn, items))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # -------------------------------------------------------- initial state
    def _factors(self, sq: Any) -> tuple[Any, Any, Any]:
        """Scale factors of rows or one row in the work dtype, see :func:`._rowblocks.factors`."""
        return factors(sq, self.dtype, cosine=self.cosine)

    def _init_pool(self) -> np.ndarray:
        """Running min squared distance of every physical row to the pool; sets ``assign``."""
        n = self.n_phys
        mind = np.full(n, np.inf, dtype=self.dtype)
        self.assign = np.full(n, -1, dtype=np.int64)
        p = len(self.pool)
        if p == 0:
            return mind
        pool_bytes = p * self.d * self.itemsize
        pool_mem = pool_bytes <= _POOL_BYTES
        bp = p if pool_mem else max(1, _POOL_BYTES // (self.d * self.itemsize))
        bp = min(bp, max(1, _INIT_BYTES // self.itemsize // max(1, min(n, 4096))))
        bi = max(1, _INIT_BYTES // (self.itemsize * bp))  # bounds the (bi, bp) result block
        if self.X is None:  # gathered blocks: bound the data block too
            bi = min(bi, max(1, _INIT_BYTES // (self.d * self.itemsize)))
        P_all = self._pool_rows(np.arange(p)) if pool_mem else None
        best = np.full(n, -1, dtype=np.int64)
        searched = self._given_nearest(best)
        for pa in range(0, 0 if searched else p, bp):
            pb = min(p, pa + bp)
            P = P_all[pa:pb] if P_all is not None else self._pool_rows(np.arange(pa, pb))
            psq, pinv, pu = self._factors(sq_norms(P))
            for a in range(0, n, bi):
                b = min(n, a + bi)
                X = self._rows(a, b)
                G = X @ P.T
                if self.cosine:
                    G *= self.inv[a:b, None]
                    G *= pinv[None, :]
                    G *= -2
                    G += self.u[a:b, None]
                    G += pu[None, :]
                else:
                    G *= -2
                    G += self.sqn[a:b, None]
                    G += psq[None, :]
                j = np.argmin(G, axis=1)
                v = G[np.arange(b - a), j]
                better = v < mind[a:b]
                mind[a:b] = np.where(better, v, mind[a:b])
                best[a:b] = np.where(better, j + pa, best[a:b])
        # Recompute the distance to the nearest pool row with the same per-row arithmetic as the
        # per-pick updates, so exact duplicates get bit-identical values wherever they sit.
        sub = max(1, (1 << 20) // (self.d * self.itemsize))  # gathered pool rows stay in cache

        def recompute(r: tuple[int, int]) -> None:
            X = self._rows(*r)
            for a in range(r[0], r[1], sub):
                b = min(r[1], a + sub)
                Pg = P_all[best[a:b]] if P_all is not None else self._pool_rows(best[a:b])
                dots = np.einsum("ij,ij->i", X[a - r[0] : b - r[0]], Pg)
                mind[a:b] = self._d2_from_dots(dots, slice(a, b), self._factors(sq_norms(Pg)))

        self._map(recompute, self._ranges(0, n, self.tile))
        self.assign = best
        return mind

    def _given_nearest(self, best: np.ndarray) -> bool:
        """Fill ``best`` (pool positions per physical row) from ``nearest_pool_idx`` when given."""
        given = self.nearest_pool_idx
        if given is None:
            return False
        phys = np.searchsorted(self.abs_idx, self.cand)  # the layout is still sorted at init
        best[:] = 0  # rows outside the candidates are dead; any member will do
        best[phys] = np.searchsorted(self.pool, np.asarray(given, dtype=np.int64))
        return True

    def _pool_rows(self, pos: np.ndarray) -> np.ndarray:
        """Pool rows (positions into ``self.pool``) as work-dtype rows."""
        return self._gather(self.pool[pos])

    def _d2_from_dots(self, dots: np.ndarray, sel: Any, cf: tuple[Any, Any, Any]) -> np.ndarray:
        """Clamped squared distances of physical rows ``sel`` (slice or positions) from their dot products.

        ``cf`` holds the center factors from :meth:`_factors` (scalars, or arrays aligned with the rows).
        """
        rows = (None, self.inv[sel], self.u[sel]) if self.cosine else (self.sqn[sel], None, None)
        return d2_from_dots(dots, rows, cf)

    # ---------------------------------------------------------------- picks
    def run(self, first_pick: int | None, progress: bool | None) -> tuple[np.ndarray, np.ndarray]:
        k = self.k
        t0 = time.perf_counter()
        self._init_norms()
        self.pass_s = time.perf_counter() - t0  # one read of every row: the first estimate of a full pass
        self.full_pass_s = self.pass_s
        mind = self._init_pool()
        mind[~self.live0] = -1
        self.mind = mind
        self.n_alive = int(np.count_nonzero(self.live0))
        del self.live0
        if self.prune:
            self._init_prune()
        if self.lazy:
            self._init_lazy()
        t1 = time.perf_counter()
        self.init_s = t1 - t0
        picks = np.empty(k, dtype=np.int64)
        radii = np.empty(k, dtype=np.float64)
        if progress is None:
            progress = self.n_phys * self.d * k > 5e10
        bar = progress_bar(total=k, disable=not progress, desc="k-center picks", unit="pick")
        try:
            for t in range(k):
                if t == 0 and first_pick is not None:
                    pos = int(np.searchsorted(self.abs_idx, first_pick)) if self.sorted_layout else int(
                        np.flatnonzero(self.abs_idx == first_pick)[0]
                    )
                    r2 = np.inf
                else:
                    pos = self._argmax()
                    r2 = float(self.mind[pos])
                picks[t] = self.abs_idx[pos]
                radii[t] = r2 / 2 if self.cosine else np.sqrt(r2)
                self.mind[pos] = -1
                self.n_alive -= 1
                if t + 1 < k:
                    self._add_center(int(picks[t]))
                bar.update(1)
        finally:
            bar.close()
        self.pick_s = time.perf_counter() - t1
        return picks, radii

    def _argmax(self) -> int:
        if self.lazy and not self.all_current:
            t0 = time.perf_counter()
            pos = self._lazy_argmax()
            if self.lazy_adaptive and not self.all_current:
                self._judge_lazy(time.perf_counter() - t0)
            return pos
        mind = self.mind
        pos = int(np.argmax(mind))
        if self.sorted_layout:
            return pos
        return self._lowest_index(np.flatnonzero(mind == mind[pos]))

    def _lowest_index(self, positions: np.ndarray) -> int:
        """The physical position among ``positions`` whose absolute row index is lowest (the tie rule)."""
        if self.sorted_layout:
            return int(positions.min())
        return int(positions[np.argmin(self.abs_idx[positions])])

    def _add_center(self, idx: int) -> None:
        metric = "cosine" if self.cosine else "euclidean"
        c, cf = center_vector(self.emb, idx, metric=metric, dtype=self.dtype)
        self.evaluations_unpruned += self.n_phys  # what prune=False computes: every physical row
        cid = self._push_center(c, cf) if self.prune else None
        if not self.lazy:
            self._apply(c, cf, cid)
            return
        keep = self.center_bytes + c.nbytes <= _CENTER_CACHE_BYTES
        self.center_bytes += c.nbytes if keep else 0
        self.pending.append((idx, c if keep else None, cf, cid))
        if self.switch_due:  # lazy picks cost more than full passes lately: catch up, then go eager
            self.switch_due = False
            self._catch_up(len(self.pending))
            self.eager_left = self.cooldown
            self.cooldown = min(2 * self.cooldown, _LAZY_MAX_COOLDOWN)
        elif self.eager_left > 0:  # every row is current: apply now and stay current
            self.eager_left -= 1
            self._apply(c, cf, cid)
            self.stamp.fill(len(self.pending))
        else:
            self.all_current = False

    def _apply(self, c: np.ndarray, cf: Any, cid: int | None, skip: np.ndarray | None = None) -> None:
        """Lower the running minimum of every physical row with one center (pruned when ``self.prune``).

        ``skip`` marks rows that already hold this center (lazy updates); they are left out of the
        pruned work (recomputing them would change nothing).
        """
        t0 = time.perf_counter()
        pruned = self.prune
        try:
            self._apply_now(c, cf, cid, skip)
        finally:
            seconds = time.perf_counter() - t0
            self.pass_s = 0.5 * self.pass_s + 0.5 * seconds
        if pruned and self.prune_adaptive:
            self._judge_pruning(seconds)

    def _judge_pruning(self, seconds: float) -> None:
        """prune='auto': stop pruning when pruned passes are measured slower than a full read of the rows.

        Pruning pays on clustered data; on data where most rows need work anyway its bookkeeping and
        gathers cost more than the rows it skips. The picks do not depend on this choice.
        """
        self.pruned_pass_s.append(seconds)
        if len(self.pruned_pass_s) < _PRUNE_TRIAL_PASSES:
            return
        median = float(np.median(self.pruned_pass_s))
        if median > _PRUNE_LOSS * self.full_pass_s:
            self.prune = False
            self.prune_dropped = True
            logger.debug("kcenter numpy: pruned passes cost %.3g s vs %.3g s for a full read; pruning off",
                         median, self.full_pass_s)

    def _apply_now(self, c: np.ndarray, cf: Any, cid: int | None, skip: np.ndarray | None) -> None:
        n = self.n_phys
        if not self.prune:
            self._update(c, cf, [(0, n)], track=None)
            self.evaluations += n
            return
        assert cid is not None
        need_rows = self._need_rows(c, cf)
        if skip is not None:
            need_rows &= ~skip
        n_tiles = (n + self.tile - 1) // self.tile
        padded = np.zeros(n_tiles * self.tile, dtype=bool)
        padded[:n] = need_rows
        counts = padded.reshape(n_tiles, self.tile).sum(axis=1)
        # A tile with many rows needing work is computed whole (a contiguous read); a tile with a few
        # has just those rows gathered (a gather costs about _GATHER_COST contiguous row reads).
        whole = counts * _GATHER_COST >= self.tile
        runs = _runs(whole)
        ranges = [(s * self.tile, min(n, e * self.tile)) for s, e in runs]
        few = (counts > 0) & ~whole
        rows = np.flatnonzero(need_rows & np.repeat(few, self.tile)[:n]) if few.any() else _EMPTY
        computed = sum(b - a for a, b in ranges) + len(rows)
        self.evaluations += computed
        computed += (_GATHER_COST - 1) * len(rows)
        if cid > 0 and self.waste >= 0:
            # Work a regrouping could avoid: rows computed now beyond the rows of the groups (rows
            # sharing a nearest center) that hold a row needing work. On isotropic data every group
            # holds one, so this stays ~0 and the rows are never copied.
            live = self.mind >= 0
            sizes = np.bincount(self.assign[live], minlength=self.n_centers)
            hit = np.bincount(self.assign[need_rows], minlength=self.n_centers) > 0
            self.waste += max(0, computed - int(sizes[hit].sum()))
        if ranges or len(rows):
            self._update(c, cf, ranges, track=cid, rows=rows)
        if self.waste > _REORDER_FACTOR * max(1, self.n_live()):
            self._reorder()

    def n_live(self) -> int:
        return int(np.count_nonzero(self.mind >= 0))

    def _update(
        self,
        c: np.ndarray,
        cf: Any,
        ranges: list[tuple[int, int]],
        track: int | None,
        rows: np.ndarray | None = None,
    ) -> None:
        """Lower the running minimum with center ``c`` over physical row ``ranges`` and ``rows``.

        With ``track`` (pruning), rows whose minimum drops get ``assign = track`` and a new threshold.
        """
        total = sum(b - a for a, b in ranges)
        if self.X is None:
            piece = self.tile
        else:
            piece = max(self.tile, -(-total // self.n_threads))
        jobs: list[Any] = [slice(*r) for a, b in ranges for r in self._ranges(a, b, piece)]
        if rows is not None and len(rows):
            step = max(1, min(self.tile, -(-len(rows) // self.n_threads)))
            jobs += [rows[a : a + step] for a in range(0, len(rows), step)]

        def job(sel: Any) -> None:
            X = self._rows(sel.start, sel.stop) if isinstance(sel, slice) else self._take(sel)
            self._lower_by(sel, X, c, cf, track)

        self._map(job, jobs)

    def _take(self, pos: np.ndarray) -> np.ndarray:
        """Physical rows ``pos`` (an index array) as a work-dtype array."""
        if self.X is not None:
            return self.X[pos]
        return np.asarray(self.emb[self.abs_idx[pos]], dtype=self.dtype)

    def _lower_by(self, sel: Any, X: np.ndarray, c: np.ndarray, cf: Any, track: int | None) -> None:
        """Lower the running minimum of physical rows ``sel`` (slice or positions; data ``X``) with center ``c``.

        The one per-row distance computation of the picks: its result for a row depends on the
        row's data only, which makes pruned, gathered and lazy updates bit-identical to full passes.
        """
        d2 = self._d2_from_dots(np.einsum("ij,j->i", X, c), sel, cf)
        mind = self.mind
        if track is None:
            if isinstance(sel, slice):
                cur = mind[sel]
                np.minimum(cur, d2, out=cur)
            else:
                mind[sel] = np.minimum(mind[sel], d2)
            return
        cur = mind[sel]  # a view for slices, a copy for index arrays
        upd = np.flatnonzero(d2 < cur)
        if upd.size:
            pos = (sel.start + upd) if isinstance(sel, slice) else sel[upd]
            v = d2[upd]
            mind[pos] = v
            self.assign[pos] = track
            self.thr[pos] = 2 * np.sqrt(v.astype(np.float64) + self.E)

    # ------------------------------------------------------- lazy evaluation
    def _init_lazy(self) -> None:
        # stamp[i]: how many picks row i's running minimum includes. A stale row's minimum is an upper
        # bound of its true one, so the largest minima, once brought up to date, prove the argmax.
        self.stamp = np.zeros(self.n_phys, dtype=np.int64)
        self.pending: list[tuple[int, np.ndarray | None, Any, int | None]] = []
        self.center_bytes = 0
        self.all_current = True
        self.eager_left = 0
        self.cooldown = 1
        self.batch = _LAZY_BATCH
        self.epoch: tuple[np.ndarray, Any] | None = None
        self.epoch_rows = max(_LAZY_BATCH * _LAZY_GROWTH, _EPOCH_ROWS)
        self.epoch_won = False
        self.switch_due = False
        self.lazy_streak = 0
        self.lazy_s = 0.0

    def _pending_center(self, j: int) -> tuple[np.ndarray, Any, int | None]:
        idx, c, cf, cid = self.pending[j]
        if c is None:
            c, _ = center_vector(self.emb, idx, metric="cosine" if self.cosine else "euclidean", dtype=self.dtype)
        return c, cf, cid

    def _lazy_argmax(self) -> int:
        """Argmax of the true running minimum, bringing only the rows that could win up to date.

        The search runs inside the epoch set ``S`` (the rows with the largest minima when the epoch
        began; every other row's minimum is at most ``tau``, and minima only decrease), so one pick
        costs a partition of ``S``, not of all rows. A batch of the largest minima in ``S`` is brought
        up to date; its best value wins once it exceeds every other upper bound, ties included.
        """
        t = len(self.pending)
        mind = self.mind
        failed = 0  # size of an epoch that already failed in this call
        while True:
            if self.epoch is None and not self._new_epoch(failed):
                break
            S, tau = self.epoch
            b = min(self.batch, len(S))
            while True:
                vals = mind[S]
                if b < len(S):
                    part = np.argpartition(vals, len(S) - b - 1)
                    top = S[part[len(S) - b :]]
                    outside = max(vals[part[len(S) - b - 1]], tau)
                else:
                    top, outside = S, tau
                stale = top[self.stamp[top] < t]
                if len(stale):
                    self._bring_up_to_date(np.sort(stale), t)
                tv = mind[top]
                best = tv.max()
                if best > outside:
                    if not self.lazy_adaptive:
                        self.cooldown = 1
                    self.batch = max(_LAZY_BATCH, b // _LAZY_GROWTH)
                    self.epoch_won = True
                    return self._lowest_index(top[tv == best])
                if b >= len(S):
                    break
                b *= _LAZY_GROWTH
            # S cannot prove a winner any more: a fresh epoch (larger if this one never won).
            if not self.epoch_won:
                self.epoch_rows *= _LAZY_GROWTH
                failed = len(S)
            self.epoch = None
        self._catch_up(t)
        self.lazy_fallbacks += 1
        self.lazy_streak = 0
        self.eager_left = self.cooldown
        self.cooldown = min(2 * self.cooldown, _LAZY_MAX_COOLDOWN)
        self.batch = _LAZY_BATCH
        self.epoch_rows = max(_LAZY_BATCH * _LAZY_GROWTH, _EPOCH_ROWS)
        return self._argmax()

    def _judge_lazy(self, seconds: float) -> None:
        """Adaptive mode: schedule a switch to full passes when lazy picks cost more than a pass."""
        self.lazy_s = seconds if self.lazy_streak == 0 else 0.5 * self.lazy_s + 0.5 * seconds
        self.lazy_streak += 1
        if self.lazy_streak >= _LAZY_TRIAL_PICKS:
            if self.lazy_s > self.pass_s:
                self.switch_due = True
                self.lazy_switches += 1
                self.lazy_streak = 0
            else:
                self.cooldown = 1

    def _new_epoch(self, failed: int) -> bool:
        """Start an epoch: ``S`` = the ``epoch_rows`` largest minima (at most 1/8 of the live rows).

        False when lazy search should stop: too few rows, or no larger set than one that just failed.
        """
        s = max(_LAZY_BATCH * _LAZY_GROWTH, min(self.epoch_rows, self.n_alive // _LAZY_MAX_FRACTION))
        n = self.n_phys
        if s * _LAZY_MAX_FRACTION > self.n_alive or s <= failed:
            return False
        part = np.argpartition(self.mind, n - s - 1)
        tau = self.mind[part[n - s - 1]]
        if not np.isfinite(tau):  # rows without any center yet: a full pass is needed
            return False
        self.epoch = (np.sort(part[n - s :]), tau)
        self.epoch_won = False
        self.epochs += 1
        return True

    def _bring_up_to_date(self, rows: np.ndarray, t: int) -> None:
        """Apply the pending picks ``stamp[rows]:t`` to physical ``rows`` (sorted positions).

        Each thread reads its rows once and applies every pending pick to them while they are in cache.
        """
        step = max(1, min(self.tile, -(-len(rows) // self.n_threads)))

        def job(sel: np.ndarray) -> int:
            X = self._take(sel)
            s = self.stamp[sel]
            done = 0
            for j in range(int(s.min()), t):
                lacking = s <= j
                part, Xp = (sel, X) if lacking.all() else (sel[lacking], X[lacking])
                c, cf, cid = self._pending_center(j)
                self._lower_by(part, Xp, c, cf, cid)
                done += len(part)
            return done

        self.evaluations += sum(self._map(job, [rows[a : a + step] for a in range(0, len(rows), step)]))
        self.stamp[rows] = t

    def _catch_up(self, t: int) -> None:
        """Apply every pending pick to every row that lacks it (one pass per pick, pruned as usual)."""
        alive = self.mind >= 0
        first = int(self.stamp[alive].min()) if alive.any() else t
        for j in range(first, t):
            c, cf, cid = self._pending_center(j)
            self._apply(c, cf, cid, skip=self.stamp > j)
        self.stamp.fill(t)
        self.all_current = True

    # -------------------------------------------------------------- pruning
    def _init_prune(self) -> None:
        live = self.mind >= 0
        used = np.unique(self.assign[live & (self.assign >= 0)])
        n_centers = len(used) + self.k
        self.C = np.empty((n_centers, self.d), dtype=self.dtype)
        self.Csq = np.zeros(n_centers, dtype=np.float64)
        self.Cinv = np.zeros(n_centers, dtype=np.float64)
        self.Cu = np.zeros(n_centers, dtype=np.float64)
        if len(used):
            self.C[: len(used)] = self._pool_rows(used)
            sq, inv, u = self._factors(sq_norms(self.C[: len(used)]))
            self.Csq[: len(used)] = sq
            if self.cosine:
                self.Cinv[: len(used)] = inv
                self.Cu[: len(used)] = u
        self.n_centers = len(used)
        remap = np.full(len(self.pool), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        if len(used):
            self.assign = np.where(self.assign >= 0, remap[np.maximum(self.assign, 0)], -1)
        max_sq = 3.0 if self.cosine else max(self.max_sqn, float(self.Csq[: len(used)].max()) if len(used) else 0.0)
        # A bound on |computed - exact| of any squared distance used in the tests.
        self.E = self.delta * 2.0 * max_sq * (1.0 + 1e-3) + np.finfo(np.float64).tiny
        m = np.where(self.mind >= 0, self.mind, 0).astype(np.float64)
        self.thr = 2 * np.sqrt(m + self.E)
        self.thr[~np.isfinite(self.thr)] = np.inf
        self.thr[self.mind < 0] = -np.inf  # dead rows never need work

    def _push_center(self, c: np.ndarray, cf: Any) -> int:
        cid = self.n_centers
        self.C[cid] = c
        sq, inv, u = cf
        self.Csq[cid] = sq
        if self.cosine:
            self.Cinv[cid] = inv
            self.Cu[cid] = u
        self.n_centers += 1
        return cid

    def _need_rows(self, c: np.ndarray, cf: Any) -> np.ndarray:
        """Rows whose distance may drop with center ``c`` (all others are provably unchanged).

        The bound uses every center pushed so far: with lazy updates a row's nearest center may be
        a later pick than ``c``.
        """
        nc = self.n_centers
        if nc == 1:  # c is the only center: no bound to test against
            need = np.ones(self.n_phys, dtype=bool)
        else:
            # einsum, not BLAS: OpenBLAS threads spin after a call and would slow the pick's own threads
            dots = np.einsum("ij,j->i", self.C[:nc], c).astype(np.float64)
            sq, inv, u = cf
            if self.cosine:
                d2 = self.Cu[:nc] + float(u) - 2.0 * dots * self.Cinv[:nc] * float(inv)
            else:
                d2 = self.Csq[:nc] + float(sq) - 2.0 * dots
            lb = np.sqrt(np.maximum(d2 - self.E, 0.0))
            lb_row = np.where(self.assign >= 0, lb[np.maximum(self.assign, 0)], 0.0)
            need = lb_row < self.thr
        need &= self.mind >= 0
        return need

    def _reorder(self) -> None:
        """Copy the live rows grouped by nearest center, so pruned work skips whole tiles."""
        live = np.flatnonzero(self.mind >= 0)
        nbytes = len(live) * self.d * self.itemsize
        budget = self.max_copy_bytes + (self.X.nbytes if self.layout == "copy" and self.X is not None else 0)
        self.waste = 0.0
        if nbytes > budget or len(live) == 0:
            self.waste = -np.inf  # never try again
            return
        order = live[np.argsort(self.assign[live], kind="stable")]
        if self.X is not None:
            X = self.X[order]  # one fancy-index gather (np.take with out= is ~10x slower here)
        else:
            X = self._gather(self.abs_idx[order])
        self.X = X
        self.layout = "copy"
        names = ("abs_idx", "sqn", "mind", "assign", "thr") + (("inv", "u") if self.cosine else ())
        for name in names + (("stamp",) if self.lazy else ()):
            setattr(self, name, getattr(self, name)[order])
        self.n_phys = len(order)
        self.sorted_layout = bool(np.all(np.diff(self.abs_idx) > 0))
        if self.lazy:
            self.epoch = None  # positions changed
        self.reorders += 1
        logger.debug("kcenter numpy: regrouped %d live rows by nearest center", len(order))

    def stats(self) -> dict[str, Any]:
        return {
            "evaluations": self.evaluations,
            "evaluations_unpruned": self.evaluations_unpruned,
            "reorders": self.reorders,
            "layout": self.layout,
            "prune": self.prune,
            "lazy": self.lazy,
            "lazy_adaptive": self.lazy_adaptive,
            "prune_dropped": self.prune_dropped,
            "lazy_fallbacks": self.lazy_fallbacks,
            "lazy_epochs": self.epochs,
            "lazy_switches": self.lazy_switches,
            "n_threads": self.n_threads,
            "init_s": getattr(self, "init_s", float("nan")),
            "pick_s": getattr(self, "pick_s", float("nan")),
        }


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Half-open [start, end) runs of True in a 1-D bool array."""
    if not flags.any():
        return []
    f = np.concatenate(([False], flags, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(f))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))
