"""Row storage for the numpy K-Center kernel: the candidate rows in one physical order, and their arithmetic.

The rows are read in place when they are dense enough in ``emb`` (the candidates' span of a
C-contiguous array or memmap: layout ``"span"``), copied contiguously when that fits
``max_copy_bytes`` (``"copy"``), and gathered block by block otherwise (``"stream"``: a memmap
bigger than RAM is streamed). A position in this order is a *physical position*; ``abs_idx`` maps
it to the absolute row index into Z. :meth:`RowStore.regroup` copies the rows into a new order
(pruning groups them by nearest center).

The per-row arithmetic (squared norms, cosine factors, :meth:`RowStore.d2_from_dots`) gives every
row a result that depends on its data only, so skipping, gathering or reordering rows never changes
a bit of any distance. With a shift row ``s`` (:meth:`RowStore.set_shift`, see :mod:`._shift`) the
norms are ``|x - s|^2`` (shifted block by block, never a whole copy) and a center ``c`` is applied as
the vector ``w = c - s`` with the constant ``2 c.w - |w|^2``; the rows themselves are never shifted.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from ..threads import policy_threads
from ._rowblocks import d2_from_dots, factors, pair_products, row_products, sq_norms, work_dtype

__all__ = ["RowStore"]

logger = logging.getLogger(__name__)

_TILE_BYTES = 4 << 20  # rows per per-pick work tile: pruning granularity and thread job size
#: Rows one job of a pass gathers (unless a tile holds more): a job costs tens of microseconds besides its rows, and
#: tiles can be small (at least ~512 of them per run). Quick 20,000 x 768 clustered run, 2 cores, by rows per job:
#: 64 (a tile) 0.41 s, 128 0.34, 256 0.29, 512 0.31, 1,365 (4 MiB) 0.33; 50,000 x 128: 98 (a tile) 0.150 s,
#: 2,048 (1 MiB) 0.106, 8,192 0.107. Larger gathered blocks leave the core's cache before their products are taken.
_GATHER_BYTES = 1 << 20
_COPY_BYTES = 32 << 20  # bound on each block of a copy or a gather
_COLUMN_D = 8  # up to this many columns, per-row dot products are summed column by column (einsum is slow there)
_FEW_ROWS = 64  # up to this many rows, the column rule runs as one product and one running sum (np.add.accumulate)
_JOB_ELEMS = 1 << 19  # fewest row elements per thread job of a pass: below it, thread wake-ups cost more than they save
#: After a multi-threaded BLAS call (the GEMM of the initial distances) the BLAS worker threads keep spinning for a
#: while (OpenBLAS: about 0.1 s) and hold the cores; passes in that window run on the calling thread. Measured on
#: 2 cores: a 2-thread einsum pass over 50,000 x 128 took 0.84 ms during the window and 0.46 ms after it.
_BLAS_SPIN_S = 0.1
_BLAS_SINGLE_THREADED = any(
    os.environ.get(v, "").strip() == "1" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
)  # read at import, as the BLAS libraries do

T = TypeVar("T")


def _available_ram() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def ranges(a: int, b: int, step: int) -> list[tuple[int, int]]:
    """``[a, b)`` cut into half-open ranges of at most ``step``."""
    return [(s, min(s + step, b)) for s in range(a, b, step)]


class RowStore:
    """The candidate rows of one run, their layout, norms and worker threads.

    Parameters
    ----------
    emb : ndarray or np.memmap of shape (N, d)
        Embeddings of Z (floating).
    candidate_idx : ndarray of int64, shape (m,)
        Sorted absolute row indices into Z of the candidates.
    cosine : bool
        Whether distances are cosine (rows scaled by their inverse norm in the arithmetic).
    block_rows, n_threads, max_copy_bytes : int or None
        Checked options; None picks the defaults (about 4 MiB tiles, usable cores up to 8, a
        quarter of the available RAM for in-memory arrays and 0 for memmaps).
    """

    def __init__(
        self,
        emb: np.ndarray,
        candidate_idx: np.ndarray,
        *,
        cosine: bool,
        block_rows: int | None,
        n_threads: int | None,
        max_copy_bytes: int | None,
    ) -> None:
        self.emb = emb
        self.cosine = cosine
        self.d = int(emb.shape[1])
        self.dtype = work_dtype(emb)
        self.itemsize = self.dtype.itemsize
        if max_copy_bytes is None:
            max_copy_bytes = 0 if isinstance(emb, np.memmap) else _available_ram() // 4
        self.max_copy_bytes = int(max_copy_bytes)
        if block_rows is None:
            # A few MiB per tile, and at least ~512 tiles when there are enough rows, so pruning can
            # skip at the granularity of typical groups.
            by_bytes = _TILE_BYTES // (self.d * self.itemsize)
            block_rows = int(max(64, min(by_bytes, -(-len(candidate_idx) // 512))))
        self.tile = int(block_rows)
        #: Most rows one thread job gathers and computes: a tile, or 1 MiB of rows where tiles are smaller (see
        #: _GATHER_BYTES).
        self.gather_rows = max(self.tile, _GATHER_BYTES // (self.d * self.itemsize))
        self.n_threads = int(n_threads) if n_threads is not None else min(policy_threads(), 8)  # cores this process may use, shared among the node's ranks
        self._executor: ThreadPoolExecutor | None = None
        self._solo_until = 0.0  # perf_counter time until which passes stay on the calling thread (see after_blas)
        self._local = threading.local()  # per-thread scratch buffers of the full passes (see slice_dots)
        self.layout, self.X, self.abs_idx, self.live = self._layout(candidate_idx)
        self.n_phys = len(self.abs_idx)
        self.sorted_layout = True  # abs_idx increasing: the lowest position is the lowest row index
        # Norms and cosine factors of every physical row (filled by compute_norms).
        self.sqn = np.empty(0, dtype=self.dtype)
        self.inv: np.ndarray | None = None
        self.u: np.ndarray | None = None
        self.max_sqn = 0.0
        # Shift row s (work dtype) when the shifted arithmetic is engaged, else None; its norm (float64).
        self.shift: np.ndarray | None = None
        self.shift_norm = 0.0
        # Small d: a column-major copy of the rows (d, n_phys), so a full pass reads each column contiguously.
        self.XT: np.ndarray | None = None
        self._make_columns()

    def _layout(self, cand: np.ndarray) -> tuple[str, np.ndarray | None, np.ndarray, np.ndarray]:
        """``(layout, X, abs_idx, live)``: the rows' storage; ``live`` marks the candidates among them."""
        emb = self.emb
        lo, hi = int(cand[0]), int(cand[-1]) + 1
        span = hi - lo
        rows_contiguous = emb.ndim == 2 and emb.strides[1] == emb.itemsize and emb.strides[0] >= 0
        if emb.dtype == self.dtype and rows_contiguous and len(cand) * 2 >= span:
            live = np.zeros(span, dtype=bool)
            live[cand - lo] = True
            return "span", emb[lo:hi], np.arange(lo, hi, dtype=np.int64), live
        live = np.ones(len(cand), dtype=bool)
        if len(cand) * self.d * self.itemsize <= self.max_copy_bytes:
            X = np.empty((len(cand), self.d), dtype=self.dtype)
            step = max(1, _COPY_BYTES // (self.d * max(emb.itemsize, self.itemsize)))
            for a in range(0, len(cand), step):
                X[a : a + step] = emb[cand[a : a + step]]
            return "copy", X, cand.copy(), live
        return "stream", None, cand.copy(), live

    def _make_columns(self) -> None:
        """Keep the rows column by column too when ``d <= 8`` and the copy fits ``max_copy_bytes``.

        The column rule of :meth:`row_dots` then reads each column contiguously, with no temporaries:
        several times faster than on the row-major rows, and bit for bit the same sums.
        """
        self.XT = None
        if self.d > _COLUMN_D or self.X is None:
            return
        if self.n_phys * self.d * self.itemsize > max(self.max_copy_bytes, 0):
            return
        self.XT = np.ascontiguousarray(self.X.T)

    def jobs_for(self, total: int) -> int:
        """How many thread jobs a pass over ``total`` rows is worth (1: run it on the calling thread)."""
        if self.n_threads == 1 or time.perf_counter() < self._solo_until:
            return 1
        return int(max(1, min(self.n_threads, total * self.d // _JOB_ELEMS)))

    def after_blas(self) -> None:
        """Note a BLAS call: for ``_BLAS_SPIN_S`` passes run on the calling thread (unless BLAS runs one thread)."""
        if not _BLAS_SINGLE_THREADED:
            self._solo_until = time.perf_counter() + _BLAS_SPIN_S

    def scratch(self, n: int, slot: int = 0) -> np.ndarray:
        """A work-dtype buffer of ``n`` elements owned by the calling thread (``slot`` tells several apart).

        Passes reuse these instead of allocating: a fresh multi-MiB array per pick costs page faults
        (glibc returns freed blocks of that size to the system), several times the arithmetic at d = 3.
        """
        bufs = getattr(self._local, "bufs", None)
        if bufs is None:
            bufs = self._local.bufs = {}
        b = bufs.get(slot)
        if b is None or len(b) < n:
            b = bufs[slot] = np.empty(n, dtype=self.dtype)
        return b[:n]

    def slice_dots(self, a: int, b: int, c: np.ndarray) -> np.ndarray:
        """``row_dots(rows(a, b), c)`` for one center ``c`` (same bits), from the column copy when there is one.

        The result is this thread's scratch buffer (:meth:`scratch` slot 0): valid until the thread's next call.
        """
        XT = self.XT
        acc = self.scratch(b - a)
        if XT is None:
            return self.row_dots(self.rows(a, b), c, out=acc)
        return self.column_dots([XT[j, a:b] for j in range(self.d)], c, out=acc, tmp=self.scratch(b - a, 1))

    def column_dots(
        self, cols: list[np.ndarray], c: np.ndarray, out: np.ndarray | None = None, tmp: np.ndarray | None = None
    ) -> np.ndarray:
        """The column rule of :meth:`row_dots` (``d <= 8``) on the rows' columns ``cols`` (d arrays of one length).

        ``x_0 c_0 + x_1 c_1 + ...`` summed left to right, each product rounded: the bits of :meth:`row_dots`.
        ``c[j]`` multiplies column ``j`` (a scalar, or one value per row). ``out`` and ``tmp`` (optional)
        receive the sum and each product.
        """
        acc = np.multiply(cols[0], c[0], out=out)
        for j in range(1, len(cols)):
            acc += np.multiply(cols[j], c[j], out=tmp)
        return acc

    # ----------------------------------------------------------------- reading
    def rows(self, a: int, b: int) -> np.ndarray:
        """Physical rows [a, b) as a (b - a, d) array of the work dtype."""
        if self.X is not None:
            return self.X[a:b]
        return np.asarray(self.emb[self.abs_idx[a:b]], dtype=self.dtype)

    def take(self, pos: np.ndarray) -> np.ndarray:
        """Physical rows ``pos`` (an index array) as a work-dtype array."""
        if self.X is not None:
            return self.X[pos]
        return np.asarray(self.emb[self.abs_idx[pos]], dtype=self.dtype)

    def gather(self, idx: np.ndarray) -> np.ndarray:
        """Rows of Z (absolute indices, any order) as a work-dtype array, read in index order."""
        out = np.empty((len(idx), self.d), dtype=self.dtype)
        order = np.argsort(idx, kind="stable")
        step = max(1, _COPY_BYTES // (self.d * self.itemsize))
        for a in range(0, len(idx), step):
            sel = order[a : a + step]
            out[sel] = self.emb[idx[sel]]
        return out

    def position_of(self, row: int) -> int:
        """Physical position of absolute row ``row`` (a candidate)."""
        if self.sorted_layout:
            return int(np.searchsorted(self.abs_idx, row))
        return int(np.flatnonzero(self.abs_idx == row)[0])

    def lowest_index(self, positions: np.ndarray) -> int:
        """The physical position among ``positions`` whose absolute row index is lowest (the tie rule)."""
        if self.sorted_layout:
            return int(positions.min())
        return int(positions[np.argmin(self.abs_idx[positions])])

    # -------------------------------------------------------------- arithmetic
    def row_dots(self, X: np.ndarray, c: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``X @ c`` row by row, each row's result depending on its data only (never on its neighbours).

        ``c`` is one vector of shape (d,) or one vector per row, shape (len(X), d). For ``d <= 8`` the
        columns are summed one by one (``x_0 c_0 + x_1 c_1 + ...``, several times faster than einsum
        there); otherwise :func:`~._rowblocks.row_products` (one BLAS dot per row, or einsum). A run uses
        one rule for every product, so pruned, gathered and lazy updates stay bit-identical to full passes.
        ``out`` (length ``len(X)``) receives the result.
        """
        if self.d > _COLUMN_D:
            return row_products(X, c, out=out)
        if out is None and len(X) <= _FEW_ROWS:  # a few rows (centers): the same left-to-right sums in two calls
            return np.add.accumulate(X * c, axis=1)[:, -1].copy()
        return self.column_dots([X[:, j] for j in range(self.d)], c.T if c.ndim == 2 else c, out=out)

    def block_d2(self, X: np.ndarray, sel: Any, W: np.ndarray, cf: tuple[Any, Any, Any]) -> np.ndarray:
        """Clamped squared distances of rows ``X`` (physical positions ``sel``) to several centers: (rows, centers).

        ``W`` (centers, d) holds the centers' vectors and ``cf`` their :meth:`factors` as arrays (None where
        unused). Entry ``[i, k]`` is bit for bit ``d2_from_dots(row_dots(X, W[k])[i], ...)``:
        :func:`~._rowblocks.pair_products` takes the same per-pair dot as :func:`~._rowblocks.row_products`,
        the column rule the same sum per pair, and the scaling the same operations in the same order per entry.
        """
        if self.d > _COLUMN_D:
            dots = pair_products(X, W)
        else:
            dots = self.column_dots([X[:, j, None] for j in range(self.d)], W.T[:, None, :])
        c = tuple(None if f is None else f[None, :] for f in cf)
        if self.cosine:
            assert self.inv is not None and self.u is not None
            rf = (None, self.inv[sel][:, None], self.u[sel][:, None])
        else:
            rf = (self.sqn[sel][:, None], None, None)
        return d2_from_dots(dots, rf, c)  # type: ignore[arg-type]

    def sq_norms(self, X: np.ndarray) -> np.ndarray:
        """Squared norm of each row of ``X`` by the same rule as :meth:`row_dots` (so ``x.x`` equals it)."""
        return sq_norms(X) if self.d > _COLUMN_D else self.row_dots(X, X)

    def set_shift(self, row: int | None) -> None:
        """Use the shifted arithmetic with row ``row`` of Z as ``s`` (None: the plain one); before :meth:`compute_norms`."""
        if row is None or self.cosine:
            self.shift, self.shift_norm = None, 0.0
            return
        self.shift = np.asarray(self.emb[row], dtype=self.dtype).copy()
        self.shift_norm = float(np.linalg.norm(self.shift.astype(np.float64)))

    def center(self, row: int) -> tuple[np.ndarray, tuple[Any, Any, Any]]:
        """Row ``row`` of Z as a new center: the vector its products are taken with, and its :meth:`factors`.

        The vector is the row in the work dtype, or ``w = row - s`` when shifted (see :meth:`centers`).
        """
        v = np.asarray(self.emb[row], dtype=self.dtype).copy()
        if self.shift is None:
            return v, self.factors(self.sq_norms(v[None, :])[0])
        w, (K, _, _) = self.centers(v[None, :])
        return w[0], (K[0], None, None)

    def centers(self, P: np.ndarray) -> tuple[np.ndarray, tuple[Any, Any, Any]]:
        """Rows ``P`` (raw, work dtype) as centers: the vectors the rows' products are taken with, and their factors.

        Plain: ``P`` and :meth:`factors` of its squared norms. Shifted: ``W = P - s`` and, as the first
        factor, ``2 p.w - |w|^2`` by the rows' own rules (:meth:`row_dots`, :meth:`sq_norms`), so
        that ``q_x + (2 p.w - |w|^2) - 2 x.w`` is exactly 0 for ``x`` equal to ``p``.
        """
        if self.shift is None:
            return P, self.factors(self.sq_norms(P))
        W = P - self.shift
        K = self.row_dots(P, W)
        K *= 2
        K -= self.sq_norms(W)
        return W, (K, None, None)

    def _row_norms(self, X: np.ndarray) -> np.ndarray:
        """Squared norms of rows ``X`` as the per-row arithmetic uses them: ``|x|^2``, or ``|x - s|^2`` when shifted."""
        if self.shift is None:
            return self.sq_norms(X)
        out = np.empty(len(X), dtype=self.dtype)
        step = max(1, _TILE_BYTES // (self.d * self.itemsize))
        for a in range(0, len(X), step):
            out[a : a + step] = self.sq_norms(X[a : a + step] - self.shift)
        return out

    def compute_norms(self) -> None:
        """Squared norms (and cosine factors) of every physical row: one read of the rows."""
        n = self.n_phys
        self.sqn = np.empty(n, dtype=self.dtype)
        step = self.tile if self.X is None else max(self.tile, (n + self.n_threads - 1) // self.n_threads)

        def job(r: tuple[int, int]) -> None:
            self.sqn[r[0] : r[1]] = self._row_norms(self.rows(*r))

        with np.errstate(over="ignore", invalid="ignore"):  # rows outside pool and candidates are unchecked
            self.map(job, ranges(0, n, step))
        if not self.live.all() and not np.isfinite(self.sqn[~self.live]).all():
            self._drop_rows_outside()
        if self.cosine:
            _, self.inv, self.u = self.factors(self.sqn)
        live_sqn = self.sqn[self.live]
        self.max_sqn = float(live_sqn.max()) if live_sqn.size else 0.0

    def factors(self, sq: Any) -> tuple[Any, Any, Any]:
        """Scale factors of rows or one row in the work dtype, see :func:`._rowblocks.factors`."""
        return factors(sq, self.dtype, cosine=self.cosine)

    def d2_from_dots(self, dots: np.ndarray, sel: Any, cf: tuple[Any, Any, Any]) -> np.ndarray:
        """Clamped squared distances of physical rows ``sel`` (slice or positions) from their dot products.

        ``cf`` holds the center factors from :meth:`factors` (scalars, or arrays aligned with the rows).
        """
        if self.cosine:
            assert self.inv is not None and self.u is not None
            return d2_from_dots(dots, (None, self.inv[sel], self.u[sel]), cf)
        return d2_from_dots(dots, (self.sqn[sel], None, None), cf)

    # ------------------------------------------------------------------ layout
    def _drop_rows_outside(self) -> None:
        """Keep only the candidates: an unchecked row inside the span (NaN, Inf) would turn a dead row's
        running minimum into NaN, which ``np.argmax`` picks. Copied when that fits, streamed otherwise."""
        keep = np.flatnonzero(self.live)
        if self.X is not None and self.can_copy(len(keep)):
            self.regroup(keep)
            return
        self.X, self.XT, self.layout = None, None, "stream"
        self.abs_idx, self.sqn, self.live = self.abs_idx[keep], self.sqn[keep], self.live[keep]
        self.n_phys = len(keep)

    def can_copy(self, n_rows: int) -> bool:
        """Whether a contiguous copy of ``n_rows`` rows fits the copy budget (the current copy is reused)."""
        held = self.X.nbytes if self.layout == "copy" and self.X is not None else 0
        return n_rows * self.d * self.itemsize <= self.max_copy_bytes + held

    def regroup(self, order: np.ndarray, *, columns: bool = True) -> None:
        """Copy physical rows ``order`` into a new contiguous layout, in that order (rows not in it are dropped).

        ``columns=False``: no column copy is made (the caller sets :attr:`XT` itself).
        """
        if self.X is not None:
            X, out = self.X, np.empty((len(order), self.d), dtype=self.dtype)
            step = max(1, _COPY_BYTES // (self.d * self.itemsize))

            def copy(r: tuple[int, int]) -> None:  # fancy-index gathers (np.take with out= is ~10x slower here)
                out[r[0] : r[1]] = X[order[r[0] : r[1]]]

            # on the store's threads: most of the time of a fresh copy is the first write to each page (200,000 x
            # 768 float32: 2.5-5.1 s in one gather, 1.4-1.9 s in 32 MiB blocks on 2 threads, in fresh processes)
            self.map(copy, ranges(0, len(order), step), caller=True)
            self.X = out
        else:
            self.X = self.gather(self.abs_idx[order])
        self.layout = "copy"
        self.abs_idx = self.abs_idx[order]
        self.sqn = self.sqn[order]
        if self.inv is not None and self.u is not None:
            self.inv = self.inv[order]
            self.u = self.u[order]
        self.live = self.live[order]
        self.n_phys = len(order)
        self.sorted_layout = bool(np.all(np.diff(self.abs_idx) > 0))
        if columns:
            self._make_columns()
        else:
            self.XT = None

    # ----------------------------------------------------------------- threads
    def map(self, fn: Callable[[Any], T], items: list[Any], *, caller: bool = False) -> list[T]:
        """``[fn(it) for it in items]``, on the worker threads when there are several items.

        ``caller=True``: the calling thread works too (it takes items as the workers do, from one shared
        counter), so a pass split in two wakes one worker, not two, and nobody waits idle for the first item.
        """
        if self.n_threads == 1 or len(items) <= 1 or time.perf_counter() < self._solo_until:
            return [fn(it) for it in items]
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.n_threads, thread_name_prefix="kcenter")
        if not caller:
            return list(self._executor.map(fn, items))
        helpers = min(self.n_threads, len(items)) - 1
        results: list[Any] = [None] * len(items)
        counter = itertools.count()  # next() on it is atomic under the GIL

        def drain() -> None:
            while (i := next(counter)) < len(items):
                results[i] = fn(items[i])

        futures = [self._executor.submit(drain) for _ in range(helpers)]
        try:
            drain()
        finally:
            for f in futures:
                f.result()
        return results

    def close(self) -> None:
        """Stop the worker threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
