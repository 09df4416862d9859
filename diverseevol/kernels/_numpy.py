"""Exact greedy K-Center (farthest-first) in numpy: the reference backend.

The backend contract is described in :mod:`diverseevol.kernels.kcenter`. This module assumes its
input was validated there: sorted, disjoint int64 index arrays, finite rows, ``1 <= k``.

How it works
------------
* One running minimum of the squared distance of every candidate to its nearest center (pool plus
  picks so far): O(N) floats. Squared norms are computed once, so the distance of every candidate to
  a new center costs one matrix-vector product, ``d2 = |x|^2 + |c|^2 - 2 x.c``, clamped at 0.
* When the rows share a large common mean (the rule of :mod:`._shift`: on a fixed sample, the mean's
  squared norm above the mean squared distance to it), the same product is taken with ``w = c - s``
  (``s`` the first center) and the norms are ``|x - s|^2``: ``d2 = |x - s|^2 + (2 c.w - |w|^2) - 2 x.w``,
  whose float32 rounding scales with the spread, not with the mean (same per-pick cost).
* The distance to the initial pool comes from a blocked BLAS GEMM (never an N x |pool| matrix at
  once). The per-pick products take one dot per row (``np.vecdot``: a BLAS dot per row, probed once per
  process to be row-local, on 128-8,192 columns; ``np.einsum`` otherwise) on row tiles spread over a few
  threads: unlike BLAS GEMV, whose result for a row depends on where the row falls in the call (tail
  kernels, thread splits), this gives every row a result that depends on its data only. Exact duplicates therefore
  tie exactly (the lowest index wins), and skipping tiles (pruning) or reordering rows never changes a
  single bit of the running minimum.
* Rows are read in place when they are dense enough in ``emb`` (the candidates span of a C-contiguous
  array or memmap), copied contiguously when that fits ``max_copy_bytes``, and gathered block by block
  otherwise (a memmap bigger than RAM is streamed): :mod:`._rowstore`.
* Exact pruning (triangle inequality): every candidate keeps the center it is nearest to. A new
  center ``c`` can lower the distance ``m`` of a candidate whose nearest center is ``a`` only if
  ``d(c, a) < 2 m``. The test uses a rigorous bound on the rounding error of the computed squared
  distances, so a skipped row is one whose computed distance could not have dropped: the picks and
  radii are bit-identical to ``prune=False``. Tiles without such a row are skipped; tiles where
  at least a third of the rows need work are computed whole; from the others only the rows needing
  work are gathered; a plan costing most of a full pass (``_FULL_PASS_SHARE``) runs as one full
  pass. When grouping rows by nearest center would avoid much work (rows needing work
  concentrated in few groups but spread over many tiles), the live candidate rows are copied once,
  grouped (ski-rental rule: only after the avoidable work has cost about ten passes):
  :mod:`._pruning`.
* Exact lazy evaluation: a new center is applied only to the rows that could be the next pick:
  :mod:`._lazyeval`.
* BLAS-filtered passes (``blas_filter``): BLAS (GEMV for one center, GEMM for a block of pending
  centers in lazy catch-ups) rules out the rows a center cannot lower, by a rigorous bound on the
  rounding; the rows left take the per-row rule, so no distance that enters the running minimum
  changes a bit: :mod:`._blasfilter`.

The parts, each with one job: :class:`~._rowstore.RowStore` (row storage, streaming, per-row
arithmetic, threads), :class:`~._pruning.TrianglePruning`, :class:`~._lazyeval.LazyState`, and
:class:`_Selector`, which owns the running minimum and composes them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from .._progress import progress_bar
from ._blasfilter import filter_margin, filtered_block_pairs, filtered_rows, threshold_shifts
from ._boxes import MAX_D as _BOX_MAX_D
from ._boxes import BoxPruning, center_coordinates, pool_max_sq, spatial_order
from ._lazyeval import LazyState
from ._pooldist import pool_distances as _pool_distances
from ._pruning import TrianglePruning, sampled_need_share
from ._rowstore import RowStore, ranges
from ._shift import choose_shift

logger = logging.getLogger(__name__)

__all__ = ["OPTIONS", "farthest_first"]

#: Options accepted by :func:`farthest_first` besides ``metric`` and ``first_pick`` (declared in
#: :data:`diverseevol.kernels.contract.BACKENDS`).
OPTIONS = ("prune", "lazy", "blas_filter", "block_rows", "n_threads", "max_copy_bytes", "progress", "stats")

_LAZY_MIN_D = 16  # lazy="auto" stays eager below this many columns: a full pass costs about a lazy pick's bookkeeping
#: prune="auto", decided up front: a pruned pass costs about this many row elements of bookkeeping per row
#: (threshold tests, tile plans, gathers) on top of the rows it computes, against ``d`` per row for a full
#: pass; so pruning pays only while the share of rows needing work stays below ``1 - _PRUNE_OVERHEAD_D / d``
#: (never below 256 columns). Measured on clustered data, 2 cores: 20,000 x 768 and 5,200 x 4,096 pay,
#: 50,000 x 128 does not (pruned passes 2x a full one with 13% of the rows computed).
_PRUNE_OVERHEAD_D = 256
_PRUNE_OVERHEAD_STREAM_D = 32  # the same for streamed rows (a full pass gathers every row: the bookkeeping is small next to it)
#: lazy="auto" in a one-start run, decided after _PROBE_AFTER_PICKS picks with pruning off: lazy only while that
#: estimated share is at least this (rows that look unstructured). It was the rule up front too while a lazy
#: catch-up applied its pending picks one by one (500,000 x 128, 1,000 clusters: 3.6x the full passes). Catch-ups
#: now apply them in blocks (_LAZY_BLOCK), and with a pool lazy="auto" stays on at any share. Single-thread CPU
#: seconds, lazy kept / plain passes (2026-12-07, load 8-11, clustered, pool 100): 50,000 x 128, 100 clusters,
#: k = 100 (share 0.33) 0.21 / 0.30; 100,000 x 128, 1,000 clusters, k = 1,000 (0.90) 4.4 / 6.1; 200,000 x 128,
#: 1,000 clusters, k = 400 (0.91) 0.56 / 4.8; 50,000 x 128, 20 clusters (0.05) 0.09 / 0.34; 50,000 x 64,
#: 30 clusters, k = 300 (0.03) 0.46 / 0.54. The one-start rule was not measured again and is kept.
_LAZY_MIN_NEED = 0.95
#: prune="auto" where the estimate says pruning pays: its timed trial drops it only when pruned passes cost this
#: many times more than its usual limit (a median of wall-clock passes under other load is not proof enough).
_PRUNE_TRUST = 3.0
_PROBE_CENTERS = 4  # rows with the largest distance to the pool tried as centers to estimate that share
#: Without a pool (one start point) there is no table of centers to estimate that share from up front: it is
#: estimated after this many picks instead (pruning and lazy="auto" run their timed trials until then).
_PROBE_AFTER_PICKS = 8
#: Structured rows whose estimate said "pruning cannot pay" (the pool covers few of the clusters, so the farthest
#: rows' clusters have no center yet) are estimated again at these fractions of k, from a table rebuilt over the
#: pool and the picks so far (one GEMM of the rows against those centers and one pass): 200,000 x 768 with 1,000
#: clusters and a 100-record pool estimated 0.91 up front while pruned passes computed 57% of the rows over k = 1,000.
_REPROBE_AT = (1 / 8, 1 / 4, 1 / 2)
#: Each such estimate first samples ~4,096 live rows (:func:`._pruning.sampled_need_share`: one small GEMM); the table
#: over every row (one GEMM of all rows against pool + picks: 2.2 s of a 28 s run at 200,000 x 768, k/8 = 125 picks)
#: is built only when that sampled share is below the limit plus this margin.
_REPROBE_SKIP_MARGIN = 0.05
_LAZY_BLOCK = 32  # pending picks applied to stale rows as one block (one product over rows x picks)
_LAZY_BLOCK_FILTERED = 128  # the same with filtered updates (one BLAS GEMM over rows x picks, then the few rows left)
_LAZY_GROUP_RATIO = 1.5  # stale rows lacking p picks are grouped with those lacking up to 1.5 p
#: prune="auto" at d <= 8 (euclidean, rows in memory): box pruning (:mod:`._boxes`) from this many picks and
#: candidates; below, the spatial sort and copy cost more than the picks they would save.
_BOX_MIN_K = 32
_BOX_MIN_ROWS = 8192
#: Filtered passes (:mod:`._blasfilter`) for euclidean rows in memory with more than this many columns (below, the
#: column rule and box pruning are faster than a GEMV).
_FILTER_MIN_D = 8
#: blas_filter="auto" filters the passes of a single center only up to this many columns: there the per-row call of
#: the row rule costs more than the row (one thread, 50,000 x 128: rule 2.69 ms, GEMV 2.35 ms; at 256 columns 5.98
#: vs 5.94), above it filtering only adds the BLAS pass, and its BLAS threads keep spinning over the kernel's own
#: (5,200 x 4,096 clustered, one start, pruned: 0.41 s filtered, 0.28 s not; 200,000 x 768 pruned 28.8 s against
#: 22.7 s). Lazy catch-ups (one GEMM over rows x up to 128 picks instead of a dot per pair) are filtered at any width.
_FILTER_PASS_MAX_D = 128
_FILTER_MIN_ROWS = 4096  # shorter row ranges of a pass take the row rule directly
_FILTER_MIN_PAIRS = 1024  # ... and lazy updates of fewer rows x centers
#: A pruned pass whose plan costs at least this share of a full pass (in contiguous row reads, a gathered row counting
#: as several) runs as one full pass instead: its many short ranges and gathers cost more than their rows.
_FULL_PASS_SHARE = 0.7


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
    blas_filter: bool | str = "auto",
    block_rows: int | None = None,
    n_threads: int | None = None,
    max_copy_bytes: int | None = None,
    progress: bool | None = None,
    stats: dict[str, Any] | None = None,
    nearest_pool_idx: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy farthest-first selection of ``k`` rows of ``emb`` among ``candidate_idx``.

    The arguments follow the backend contract of :mod:`diverseevol.kernels.kcenter` and are
    checked by the caller (:mod:`diverseevol.kernels.contract`); float32 input is computed in
    float32, float64 in float64, other float dtypes in float32.

    Parameters
    ----------
    prune : {"auto", True, False}
        Exact triangle-inequality pruning. ``"auto"`` considers it when ``d >= 16`` and the number of
        centers stays small next to the number of candidates; decides up front whether it can pay
        (the share of rows a pick must compute, estimated from the rows farthest from the pool, against
        ``1 - 256 / d`` for in-memory rows: never below 256 columns); and drops it while pruned passes
        are measured to cost more than full reads. Where it pays, ``lazy="auto"`` stays eager; where it
        cannot and the rows are clustered (that share below 0.95), too, and the share is estimated again
        after k/8, k/4 and k/2 picks (the pool may cover few of the clusters the picks will reach; first on a
        sample of ~4,096 rows, then over every row only where the sample says pruning may pay). Without
        a pool the first estimate is taken after 8 picks. Never changes the result.
    lazy : {"auto", True, False}
        Exact lazy evaluation: a new center is applied only to the rows that could be the next pick
        (those whose running minimum, an upper bound while stale, is the largest); the others keep
        it pending until they could matter. ``True`` always searches lazily (full passes only where
        the lazy search cannot prove a pick); ``"auto"`` (unless ``prune=False``) does so while lazy
        picks are measured to cost less than a full pass, and switches to full passes, retrying
        later, otherwise; below 16 columns it applies every pick eagerly from the start (a full
        pass there costs about what a lazy pick's bookkeeping does). Never changes the result.
    blas_filter : {"auto", True, False}
        BLAS-filtered passes (:mod:`._blasfilter`): the product of every row with a new center (with a block of
        pending centers in lazy catch-ups) is taken by BLAS (GEMV / GEMM) only to rule out the rows the center
        cannot lower, by a rigorous bound on the rounding; the rows left are computed by the per-row rule.
        ``"auto"``: lazy catch-ups of euclidean rows held in memory with more than 8 columns, and passes of one
        center up to 128 columns (above, a row's product costs far more than the call that takes it, and
        filtering only adds the BLAS pass); ``True``: passes at any width too. Never for cosine or streamed rows.
        Never changes the result.
    block_rows : int, optional
        Rows per work tile (default: about 4 MiB of rows).
    n_threads : int, optional
        Threads for the per-pick products (default: the cores this process may use, from its affinity mask
        and cgroup quota, shared among the node's processes under a launcher (``LOCAL_WORLD_SIZE``); at most
        8: :func:`diverseevol.threads.policy_threads`).
    max_copy_bytes : int, optional
        Largest contiguous copy of the candidate rows the kernel may make (to read sparse candidate
        sets fast, convert dtypes, or group rows for pruning). Default: a quarter of the available
        RAM for in-memory arrays, 0 for memmaps (they are streamed, never loaded).
    progress : bool, optional
        Show a progress bar over the picks (default: only for large problems).
    stats : dict, optional
        Filled with counters: ``evaluations`` (candidate-center distances computed by the per-row rule
        after the initial ones), ``filtered_out`` (those a filtered pass ruled out with BLAS instead: see
        ``blas_filter``), ``evaluations_unpruned`` (what ``prune=False, lazy=False`` computes without filtering),
        ``filter`` (whether passes were filtered), ``reorders``,
        ``layout``, ``prune``, ``prune_dropped``, ``lazy``, ``lazy_adaptive``, ``lazy_fallbacks``
        (full updates where the lazy search could not prove a pick), ``lazy_switches`` (adaptive
        switches to full passes), ``lazy_epochs``, ``n_threads``, ``shift`` (whether the shifted
        arithmetic of :mod:`diverseevol.kernels._shift` was engaged), ``need_estimate`` (``prune="auto"``:
        the estimated share of rows a pick computes under pruning; NaN when not estimated), ``reprobes`` (estimates
        taken again after a drop, over a table of every row), ``reprobes_skipped`` (those a sampled estimate
        found not worth a table), ``init_s`` (norms and distances
        to the pool, seconds) and ``pick_s`` (the picks, seconds).
    nearest_pool_idx : ndarray of int64, shape (n,), optional
        Internal, for backends that search the pool themselves (FAISS): absolute row index into Z
        of each candidate's nearest pool member, in ``candidate_idx`` order. The kernel then skips
        its own search and only recomputes the distance to that member with its arithmetic.

    Returns
    -------
    picks : ndarray of int64, shape (k,)
        Absolute row indices into Z, in pick order.
    radii : ndarray of float64, shape (k,)
        Distance of each pick to its nearest center (pool + earlier picks) when it was picked:
        Euclidean distance, or ``1 - cosine similarity`` for ``metric="cosine"``; ``inf`` for a
        first pick made with an empty pool. Non-increasing.
    """
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
        blas_filter=blas_filter,
        block_rows=block_rows,
        n_threads=n_threads,
        max_copy_bytes=max_copy_bytes,
        nearest_pool_idx=nearest_pool_idx,
    )
    try:
        picks, radii = state.run(first_pick, progress)
    finally:
        state.rows.close()
    if stats is not None:
        stats.update(state.stats())
    return picks, radii


class _Selector:
    """One farthest-first run: the running minimum over the rows, and the picks.

    Composes a :class:`RowStore` (where the rows live and the per-row arithmetic), an optional
    :class:`TrianglePruning` and an optional :class:`LazyState`; this class only decides which
    rows a new center is applied to and when, and keeps the counters.
    """

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
        blas_filter: bool | str = "auto",
        block_rows: int | None,
        n_threads: int | None,
        max_copy_bytes: int | None,
        nearest_pool_idx: np.ndarray | None = None,
    ) -> None:
        self.rows = RowStore(
            emb, candidate_idx, cosine=cosine, block_rows=block_rows, n_threads=n_threads,
            max_copy_bytes=max_copy_bytes,
        )
        self.pool = pool_idx
        self.cand = candidate_idx
        self.k = k
        self.nearest_pool_idx = nearest_pool_idx
        n_active_max = min(len(pool_idx), len(candidate_idx)) + k
        # prune="auto" at a few columns: box pruning (rows copied in spatial order) where the run is big enough
        self.box_wanted = (
            prune == "auto" and not cosine and self.rows.d <= _BOX_MAX_D and self.rows.X is not None
            and (lazy is False or lazy == "auto") and k >= _BOX_MIN_K and len(candidate_idx) >= _BOX_MIN_ROWS
        )
        self.boxes: BoxPruning | None = None  # set up by run()
        self.prune_adaptive = prune == "auto"  # pruning dropped if pruned passes cost more than full ones
        if prune == "auto":
            prune = self.rows.d >= 16 and n_active_max * 4 <= len(candidate_idx)
        self.prune_wanted = bool(prune)
        self.lazy_wanted = lazy is not False
        self.lazy_adaptive = lazy == "auto"  # lazy only while it is measured to beat full passes
        self.pruning: TrianglePruning | None = None  # set up by run()
        self.need_estimate = float("nan")  # prune="auto": estimated share of rows a pick must compute
        self.reprobe_at: list[int] = []  # pick counts at which a dropped pruning is estimated again
        self.reprobes = 0
        self.reprobes_skipped = 0  # estimates again where the sampled share said no table was worth building
        self.lazy: LazyState | None = None  # set up by run()
        self.filter_wanted = blas_filter
        self.filtering = False  # BLAS-filtered lazy catch-ups (set up by run(), once the norms are known)
        self.filter_passes = False  # ... and passes of one center
        self.filter_M = 0.0
        self.filtered_out = 0  # distances the filtered passes ruled out (never computed by the row rule)
        self.mind = np.empty(0, dtype=self.rows.dtype)  # running min squared distance per physical row; -1: dead
        self.n_alive = 0
        self.evaluations = 0
        self.evaluations_unpruned = 0
        self.pass_s = float("nan")  # moving estimate of one update pass, seconds
        self.full_pass_s = float("nan")  # one read of every row (the norms pass)
        self.init_s = float("nan")
        self.pick_s = float("nan")
        logger.debug(
            "kcenter numpy: layout=%s, %d candidates, %d physical rows, prune=%s, tile=%d rows",
            self.rows.layout, len(candidate_idx), self.rows.n_phys, self.prune_wanted, self.rows.tile,
        )

    @property
    def pruning_active(self) -> bool:
        return self.pruning is not None and self.pruning.active

    # ---------------------------------------------------------------- picks
    def run(self, first_pick: int | None, progress: bool | None) -> tuple[np.ndarray, np.ndarray]:
        rows, k = self.rows, self.k
        t0 = time.perf_counter()
        rows.set_shift(choose_shift(rows.emb, self.pool, self.cand, "cosine" if rows.cosine else "euclidean",
                                    first_pick))
        rows.compute_norms()
        self.filtering = (
            self.filter_wanted is not False and not rows.cosine and rows.X is not None and rows.d > _FILTER_MIN_D
        )
        self.filter_passes = self.filtering and (self.filter_wanted is True or rows.d <= _FILTER_PASS_MAX_D)
        if self.filtering:
            self.filter_M = filter_margin(rows)
        self.pass_s = self.full_pass_s = time.perf_counter() - t0
        mind, assign = _pool_distances(rows, self.pool, self.cand, self.nearest_pool_idx)
        mind[~rows.live] = -1
        self.mind = mind
        self.n_alive = int(np.count_nonzero(rows.live))
        probe_at = -1
        if self.box_wanted and rows.can_copy(self.n_alive):
            self._sort_spatially()
        if self.prune_wanted:
            self.pruning = TrianglePruning(rows, mind, assign, self.pool, k, adaptive=self.prune_adaptive)
            if self.prune_adaptive:
                self._decide_pruning()
                if self.pruning_active and np.isnan(self.need_estimate):
                    probe_at = _PROBE_AFTER_PICKS
        # lazy="auto" below _LAZY_MIN_D columns is decided up front: every pick applied eagerly, with
        # none of the lazy bookkeeping (the plain full-pass loop).
        if self.lazy_wanted and not (self.lazy_adaptive and rows.d < _LAZY_MIN_D):
            self.lazy = LazyState(rows.n_phys, adaptive=self.lazy_adaptive)
        t1 = time.perf_counter()
        self.init_s = t1 - t0
        picks = np.empty(k, dtype=np.int64)
        radii = np.empty(k, dtype=np.float64)
        if progress is None:
            progress = rows.n_phys * rows.d * k > 5e10
        bar = progress_bar(total=k, disable=not progress, desc="k-center picks", unit="pick")
        try:
            for t in range(k):
                if t == 0 and first_pick is not None:
                    pos = rows.position_of(first_pick)
                    r2 = np.inf
                else:
                    pos = self._argmax()
                    r2 = float(self.mind[pos])
                picks[t] = rows.abs_idx[pos]
                radii[t] = r2 / 2 if rows.cosine else np.sqrt(r2)
                self.mind[pos] = -1
                if self.boxes is not None:
                    self.boxes.killed(pos)
                self.n_alive -= 1
                if t + 1 < k:
                    self._add_center(int(picks[t]))
                    if t + 1 == probe_at and self.pruning_active:
                        self._decide_late()
                    if self.reprobe_at and self.reprobe_at[0] == t + 1:
                        self.reprobe_at.pop(0)
                        if not self.pruning_active:
                            self._reprobe(picks[: t + 1])
                bar.update(1)
        finally:
            bar.close()
        self.pick_s = time.perf_counter() - t1
        return picks, radii

    def _prune_limit(self) -> float:
        """The estimated share below which pruning pays: ``1 - overhead / d`` (see ``_PRUNE_OVERHEAD_D``)."""
        rows = self.rows
        overhead = _PRUNE_OVERHEAD_D if rows.X is not None else _PRUNE_OVERHEAD_STREAM_D
        return 1.0 - overhead / rows.d

    def _decide_pruning(self, picks_done: int = 0) -> None:
        """prune="auto", up front: drop pruning where it cannot pay; where it pays, lazy="auto" stays eager.

        Pruning pays while the share ``f`` of rows a pick must compute stays below ``1 - overhead / d``
        (see ``_PRUNE_OVERHEAD_D``). ``f`` is estimated by trying the rows farthest from the pool (the
        next picks) as centers against the pool's table; without a pool (no table yet) only the
        ``d`` rule applies and the adaptive trial decides. Where the estimate says pruning pays, lazy
        evaluation is not used by ``lazy="auto"``: its catch-up of the top rows computes them unpruned.
        Where pruning cannot pay, lazy="auto" stays on (its timed trial still turns it off where lazy picks
        cost more than full passes), except in a one-start run whose share is below ``_LAZY_MIN_NEED``.
        Structured rows are estimated again later (``_REPROBE_AT``) where pruning could pay.
        The timed trial of :class:`TrianglePruning` still drops pruning if it is measured slower.
        """
        pruning, rows = self.pruning, self.rows
        assert pruning is not None
        limit = self._prune_limit()
        f = self._probe_need()
        self.need_estimate = float("nan") if f is None else f
        if limit <= 0 or (f is not None and f >= limit):
            pruning.active = False
            pruning.dropped = True
            logger.debug("kcenter numpy: pruning off up front (estimated share %s, limit %.2f)", f, limit)
            if f is not None and f < _LAZY_MIN_NEED and self.lazy_adaptive and picks_done:
                self.lazy_wanted = False  # structured rows of a one-start run: plain full passes (see _LAZY_MIN_NEED)
            if f is not None and f < _LAZY_MIN_NEED and limit > 0 and rows.X is not None:
                at = {max(_PROBE_AFTER_PICKS, int(self.k * q)) for q in _REPROBE_AT}
                self.reprobe_at = sorted(t for t in at if t > picks_done)  # never right after this estimate
        elif f is not None:
            # The estimate says pruning pays: the timed trial drops it only when clearly slower (its wall-clock
            # timings, disturbed by other load, dropped pruning on 20,000 x 768 clustered: 1.8 s instead of 0.3 s).
            pruning.loss_scale = _PRUNE_TRUST
            if self.lazy_adaptive:
                self.lazy_wanted = False

    def _reprobe(self, picked: np.ndarray) -> None:
        """Estimate the share again with a table of the pool and ``picked`` (absolute rows); prune from here if it pays.

        Each row's nearest center comes from a blocked GEMM and its distance to it is recomputed with the
        picks' own arithmetic (as for the pool at the start), so each threshold rests on a distance the
        kernel computed; the running minimum itself is not touched.
        """
        rows = self.rows
        centers = np.sort(np.concatenate([self.pool, picked]))
        limit = self._prune_limit()
        probes = self._probe_rows()
        sampled = None if probes is None else sampled_need_share(rows, self.mind, centers, rows.abs_idx[probes])
        if sampled is not None and sampled >= limit + _REPROBE_SKIP_MARGIN:
            self.reprobes_skipped += 1
            logger.debug("kcenter numpy: after %d picks, sampled share %.2f (limit %.2f): no table built",
                         len(picked), sampled, limit)
            return
        self.reprobes += 1
        dist, assign = _pool_distances(rows, centers, self.cand, None)
        dist[self.mind < 0] = -1
        trial = TrianglePruning(rows, dist, assign, centers, self.k - len(picked), adaptive=True)
        kept, self.pruning = self.pruning, trial
        f = self._probe_need(probes)
        logger.debug("kcenter numpy: after %d picks, estimated share %s (limit %.2f)", len(picked), f, limit)
        if f is not None and f < limit:
            self.need_estimate = f
            trial.loss_scale = _PRUNE_TRUST
            self.reprobe_at = []
            if self.lazy is not None:  # pruning from here, eagerly (as where it pays up front): rows caught up first
                self.pruning = kept
                if not self.lazy.all_current:
                    self._catch_up()
                self.lazy, self.lazy_wanted = None, False
                self.pruning = trial
        else:
            self.pruning = kept

    def _decide_late(self) -> None:
        """The up-front decision of :meth:`_decide_pruning`, taken after the first picks of a run without a pool."""
        self._decide_pruning(picks_done=_PROBE_AFTER_PICKS)
        if not self.lazy_wanted and self.lazy is not None:
            if not self.lazy.all_current:
                self._catch_up()
            self.lazy = None
        logger.debug("kcenter numpy: after %d picks, estimated share %.2f: prune=%s, lazy=%s",
                     _PROBE_AFTER_PICKS, self.need_estimate, self.pruning_active, self.lazy is not None)

    def _probe_need(self, top: np.ndarray | None = None) -> float | None:
        """Estimated share of live rows a new center must compute under pruning (None: no pool table to test).

        ``top``: the probe rows when the caller already has them (:meth:`_probe_rows`; the running minimum unchanged).
        """
        pruning, rows, mind = self.pruning, self.rows, self.mind
        assert pruning is not None
        if top is None:
            top = self._probe_rows()
        if pruning.n_centers < 2 or top is None:
            return None
        shares = []
        for pos in top:
            c, cf = rows.center(int(rows.abs_idx[pos]))
            shares.append(np.count_nonzero(pruning.need_rows(c, cf, mind)) / self.n_alive)
        return float(np.mean(shares))

    def _probe_rows(self) -> np.ndarray | None:
        """Physical positions of the ``_PROBE_CENTERS`` live rows farthest from their centers (the likely next
        picks), tried as centers to estimate the share of rows a pick computes; None with too few live rows."""
        if self.n_alive < 2 * _PROBE_CENTERS:
            return None
        n = len(self.mind)
        return np.argpartition(self.mind, n - _PROBE_CENTERS)[n - _PROBE_CENTERS :]

    def _argmax(self) -> int:
        if self.boxes is not None:
            return self.boxes.argmax()
        lazy = self.lazy
        if lazy is not None and not lazy.all_current:
            t0 = time.perf_counter()
            pos = lazy.search(self.mind, self.n_alive, self._bring_up_to_date, self.rows.lowest_index)
            if pos is None:  # the lazy search could not prove a pick: catch every row up
                self._catch_up()
                lazy.fell_back()
                return self._argmax()
            if lazy.adaptive and not lazy.all_current:
                lazy.judge(time.perf_counter() - t0, self.pass_s, self.k - len(lazy.pending))
            return pos
        mind = self.mind
        pos = int(np.argmax(mind))
        if self.rows.sorted_layout:
            return pos
        return self.rows.lowest_index(np.flatnonzero(mind == mind[pos]))

    def _add_center(self, idx: int) -> None:
        rows = self.rows
        c, cf = rows.center(idx)
        self.evaluations_unpruned += rows.n_phys  # what prune=False computes: every physical row
        if self.boxes is not None:
            self._apply_boxes(idx, c, cf)
            return
        cid = self.pruning.push(c, cf) if self.pruning is not None and self.pruning.active else None
        lazy = self.lazy
        if lazy is None:
            self._apply(c, cf, cid)
            return
        lazy.push(idx, c, cf, cid)
        if lazy.switch_due:  # lazy picks cost more than full passes lately: catch up, then go eager
            lazy.switch_due = False
            self._catch_up()
            lazy.start_cooldown()
        elif lazy.eager_left > 0:  # every row is current: apply now and stay current
            lazy.eager_left -= 1
            self._apply(c, cf, cid)
            lazy.caught_up()
        else:
            lazy.all_current = False

    # --------------------------------------------------------------- updates
    def _sort_spatially(self) -> None:
        """Box pruning: copy the live rows in spatial order, tile them (see :mod:`._boxes`)."""
        rows = self.rows
        assert rows.X is not None
        live = np.flatnonzero(rows.live)  # rows in the span outside pool and candidates may hold anything (NaN)
        order = live[spatial_order(rows.X[live])]
        rows.regroup(order, columns=False)
        self.boxes = BoxPruning(rows, self.mind[order], pool_max_sq(rows, self.pool))
        self.mind = self.boxes.mind
        logger.debug("kcenter numpy: %d rows in %d tiles for box pruning", rows.n_phys, self.boxes.n_tiles)

    def _apply_boxes(self, idx: int, c: np.ndarray, cf: Any) -> None:
        """Lower the running minimum with center row ``idx`` in the tiles it may reach (every row when most)."""
        boxes, n = self.boxes, self.rows.n_phys
        assert boxes is not None
        tiles = boxes.plan(center_coordinates(self.rows, idx))
        if tiles is None:
            self._update(c, cf, [(0, n)], track=None)
            self.evaluations += n
            boxes.refresh_all()
        elif len(tiles):
            self.evaluations += boxes.apply(tiles, c, cf)

    def _apply(self, c: np.ndarray, cf: Any, cid: int | None, skip: np.ndarray | None = None) -> None:
        """Lower the running minimum of every physical row with one center (pruned while pruning is active).

        ``skip`` marks rows that already hold this center (lazy updates); they are left out of the
        pruned work (recomputing them would change nothing).
        """
        t0 = time.perf_counter()
        pruned = self.pruning_active
        try:
            if pruned:
                assert cid is not None
                self._apply_pruned(c, cf, cid, skip)
            else:
                self._update(c, cf, [(0, self.rows.n_phys)], track=None)
                self.evaluations += self.rows.n_phys
        finally:
            seconds = time.perf_counter() - t0
            self.pass_s = 0.5 * self.pass_s + 0.5 * seconds
        if pruned and self.pruning is not None and self.pruning.adaptive:
            self.pruning.judge(seconds, self.full_pass_s)

    def _apply_pruned(self, c: np.ndarray, cf: Any, cid: int, skip: np.ndarray | None) -> None:
        pruning = self.pruning
        assert pruning is not None
        need = pruning.need_rows(c, cf, self.mind)
        if skip is not None:
            need &= ~skip
        work, rows, cost = pruning.plan(need, self.rows.tile)
        if cost >= _FULL_PASS_SHARE * self.rows.n_phys and len(work) + len(rows) > 1:
            work, rows = [(0, self.rows.n_phys)], rows[:0]
        self.evaluations += sum(b - a for a, b in work) + len(rows)
        if cid > 0:
            pruning.count_waste(cost, need, self.mind)
        if work or len(rows):
            self._update(c, cf, work, track=cid, rows=rows)
        if pruning.regroup_due(int(np.count_nonzero(self.mind >= 0))):
            self._regroup()

    def _update(
        self,
        c: np.ndarray,
        cf: Any,
        work: list[tuple[int, int]],
        track: int | None,
        rows: np.ndarray | None = None,
    ) -> None:
        """Lower the running minimum with center ``c`` over physical row ranges ``work`` and positions ``rows``.

        With ``track`` (pruning), rows whose minimum drops get center ``track`` as their nearest.
        """
        store = self.rows
        if self.filter_passes and self.boxes is None:
            work, rows = self._filter(c, cf, work, rows)
        total = sum(b - a for a, b in work)
        if store.X is None:
            piece = store.tile
        else:  # in-memory rows: one job per worth-while thread (small passes run on this thread)
            piece = max(1, -(-total // store.jobs_for(total + (0 if rows is None else len(rows)))))
        jobs: list[Any] = [slice(*r) for a, b in work for r in ranges(a, b, piece)]
        if rows is not None and len(rows):
            step = max(1, min(store.gather_rows, -(-len(rows) // store.jobs_for(len(rows)))))
            jobs += [rows[a : a + step] for a in range(0, len(rows), step)]

        def job(sel: Any) -> None:
            if isinstance(sel, slice):  # into this thread's scratch buffer: no allocation per pick
                self._lower_by(sel, None, c, cf, track, dots=store.slice_dots(sel.start, sel.stop, c))
                return
            self._lower_by(sel, store.take(sel), c, cf, track)

        store.map(job, jobs, caller=True)

    def _filter(
        self, c: np.ndarray, cf: Any, work: list[tuple[int, int]], rows: np.ndarray | None
    ) -> tuple[list[tuple[int, int]], np.ndarray | None]:
        """Replace the long ranges of ``work`` by the rows of them that ``c`` may lower (:mod:`._blasfilter`).

        Returns the short ranges, and those rows with ``rows``; the BLAS calls run on the BLAS library's threads.
        """
        long = [(a, b) for a, b in work if b - a >= _FILTER_MIN_ROWS]
        if not long:
            return work, rows
        store = self.rows
        shift = float(threshold_shifts(cf[0], self.filter_M))
        found = [filtered_rows(store, self.mind, a, b, c, shift) for a, b in long]
        store.after_blas()
        if rows is not None and len(rows):
            found.append(rows)
        hit = found[0] if len(found) == 1 else np.concatenate(found)
        self.filtered_out += sum(b - a for a, b in long) - sum(len(f) for f in found[: len(long)])
        return [(a, b) for a, b in work if b - a < _FILTER_MIN_ROWS], hit

    def _lower_by(
        self, sel: Any, X: np.ndarray | None, c: np.ndarray, cf: Any, track: int | None,
        dots: np.ndarray | None = None,
    ) -> None:
        """Lower the running minimum of physical rows ``sel`` (slice or positions; data ``X``) with center ``c``.

        The one per-row distance computation of the picks: its result for a row depends on the
        row's data only, which makes pruned, gathered and lazy updates bit-identical to full passes.
        ``dots`` (the rows' products with ``c``, same rule) replaces ``X`` when given.
        """
        if dots is None:
            assert X is not None
            dots = self.rows.row_dots(X, c)
        d2 = self.rows.d2_from_dots(dots, sel, cf)
        mind = self.mind
        if track is None or self.pruning is None:
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
            self.pruning.lowered(pos, v, track)

    def _lower_by_block(
        self, sel: np.ndarray, X: np.ndarray, W: np.ndarray, cf: tuple[Any, Any, Any], cids: list[int | None]
    ) -> None:
        """Lower the running minimum of physical rows ``sel`` (data ``X``) with several centers at once.

        ``W`` holds the centers' vectors (one per row of it, in pick order), ``cf`` their factors (arrays)
        and ``cids`` their pruning ids (all None or none None). Every distance is the one :meth:`_lower_by`
        computes for that row and center (:meth:`RowStore.block_d2`); the result equals applying the centers
        one after another: the minimum, and as nearest center (pruning) the first center reaching it, only
        where it is strictly below the row's minimum.
        """
        d2 = self.rows.block_d2(X, sel, W, cf)  # (rows, centers)
        j = np.argmin(d2, axis=1)
        v = d2[np.arange(len(sel)), j]
        upd = np.flatnonzero(v < self.mind[sel])
        if not upd.size:
            return
        pos, v = sel[upd], v[upd]
        self.mind[pos] = v
        if self.pruning is not None and cids[0] is not None:
            ids = np.asarray(cids, dtype=np.int64)[j[upd]]
            for cid in np.unique(ids):
                m = ids == cid
                self.pruning.lowered(pos[m], v[m], int(cid))

    def _bring_up_to_date(self, rows: np.ndarray | None, t: int) -> None:
        """Apply the pending picks ``stamp[rows]:t`` to physical ``rows`` (sorted positions; None: every live row).

        Each thread reads its rows once and applies the pending picks to them in blocks (one product of
        the rows with a block of picks). Rows are grouped by how many picks they lack (groups within a
        factor ``_LAZY_GROUP_RATIO``), so a row is computed against few picks it already holds.
        """
        store, lazy = self.rows, self.lazy
        assert lazy is not None
        if rows is None:  # every stale live row, read range by range
            alive = self.mind >= 0
            first = int(lazy.stamp[alive].min()) if alive.any() else t
            step = max(store.tile, _FILTER_MIN_ROWS) if self.filtering else store.tile  # one GEMM per step rows
            jobs: list[Any] = [slice(a, b) for a, b in ranges(0, store.n_phys, step)]
        elif len(rows):
            first = int(lazy.stamp[rows].min())
            step = max(1, min(store.gather_rows, -(-len(rows) // store.jobs_for(len(rows) * (t - first)))))
            jobs = [rows[a : a + step] for a in range(0, len(rows), step)]
        else:
            return
        if first >= t:
            return
        filtering = self.filtering
        gemms = [0]  # filtered products taken (BLAS calls: its threads keep spinning for a while after)
        blocks = lazy.blocks(first, t, _LAZY_BLOCK_FILTERED if filtering else _LAZY_BLOCK)
        stacked: dict[tuple[int, int], tuple[np.ndarray, tuple[Any, Any, Any], list[int | None]]] = {}

        def centers(a: int, b: int) -> tuple[np.ndarray, tuple[Any, Any, Any], list[int | None]]:
            got = stacked.get((a, b))
            if got is None:  # two threads may stack the same block: harmless
                block = [lazy.center(j, store.center) for j in range(a, b)]
                cf = tuple(None if f[0] is None else np.asarray(f, dtype=store.dtype) for f in zip(*[e[1] for e in block]))
                got = stacked[(a, b)] = (np.stack([e[0] for e in block]), cf, [e[2] for e in block])  # type: ignore[assignment]
            return got  # type: ignore[return-value]

        def lower(part: np.ndarray, Xp: np.ndarray, W: np.ndarray, cf: Any, cids: list[int | None],
                  held: np.ndarray) -> int:
            """Apply centers ``W`` to rows ``part`` (each already holds the first ``held`` of them); returns the pairs
            accounted for: all of them unfiltered, those not held when filtered (the ones BLAS ruled out are also
            added to ``filtered_out``)."""
            if not (filtering and len(part) * len(W) >= _FILTER_MIN_PAIRS):
                self._lower_by_block(part, Xp, W, cf, cids)
                return len(part) * len(W)
            pairs = filtered_block_pairs(store, self.mind, part, Xp, W, threshold_shifts(cf[0], self.filter_M), held)
            gemms[0] += 1
            wanted = int((len(W) - np.clip(held, 0, len(W))).sum())
            rows_hit = pairs.any(axis=1)
            computed = 0
            if rows_hit.any():
                cols_hit = pairs[rows_hit].any(axis=0)
                part, Xp = part[rows_hit], Xp[rows_hit]
                if not cols_hit.all():
                    keep = np.flatnonzero(cols_hit)
                    W, cids = W[keep], [cids[j] for j in keep]
                    cf = tuple(None if f is None else f[keep] for f in cf)
                self._lower_by_block(part, Xp, W, cf, cids)
                computed = len(part) * len(W)
            self.filtered_out += max(0, wanted - computed)
            return max(wanted, computed)

        def job(sel: Any) -> int:
            if isinstance(sel, slice):  # a range of rows (catch-up of every row): the stale live ones
                s = lazy.stamp[sel]
                keep = (s < t) & (self.mind[sel] >= 0)
                X = store.rows(sel.start, sel.stop)
                sel = np.arange(sel.start, sel.stop)
                if not keep.all():
                    if filtering and 2 * np.count_nonzero(keep) >= len(keep):
                        # BLAS takes the whole range in place (no copy of the kept rows): the others count as
                        # holding every pick, so no pair of theirs passes the filter
                        s = np.where(keep, s, t)
                    else:
                        sel, X, s = sel[keep], X[keep], s[keep]
                if not len(sel) or int(s.min()) >= t:
                    return 0
            else:
                X = store.take(sel)
                s = lazy.stamp[sel]
            if filtering:  # a product with a pick a row already holds costs a GEMM column, not a row-rule product
                group = np.zeros(len(s), dtype=np.int64)
            else:
                group = np.floor(np.log(t - s) / np.log(_LAZY_GROUP_RATIO)).astype(np.int64)
            done = 0
            for g in np.unique(group):
                m = group == g
                part, Xp, s0 = (sel, X, int(s.min())) if m.all() else (sel[m], X[m], int(s[m].min()))
                for a, b in blocks:
                    if b <= s0:
                        continue
                    W, cf, cids = centers(a, b)
                    o = max(0, s0 - a)
                    sub = tuple(None if f is None else f[o:] for f in cf)
                    done += lower(part, Xp, W[o:], sub, cids[o:], (s if m.all() else s[m]) - (a + o))
            return done

        if filtering:  # BLAS runs its own threads
            self.evaluations += sum(job(j) for j in jobs)
            if gemms[0]:
                store.after_blas()
        else:
            self.evaluations += sum(store.map(job, jobs, caller=True))
        if rows is not None:
            lazy.stamp[rows] = t

    def _catch_up(self) -> None:
        """Apply every pending pick to every row that lacks it.

        Without pruning: in blocks of picks over ranges of rows (:meth:`_bring_up_to_date`, each row read once
        per block instead of once per pick). With pruning: one pruned pass per pick.
        """
        lazy, store = self.lazy, self.rows
        assert lazy is not None
        t = len(lazy.pending)
        if not self.pruning_active:
            self._bring_up_to_date(None, t)
            lazy.caught_up()
            return
        alive = self.mind >= 0
        first = int(lazy.stamp[alive].min()) if alive.any() else t
        for j in range(first, t):
            c, cf, cid = lazy.center(j, store.center)
            self._apply(c, cf, cid, skip=lazy.stamp > j)
        lazy.caught_up()

    def _regroup(self) -> None:
        """Copy the live rows grouped by nearest center, so pruned work skips whole tiles."""
        pruning = self.pruning
        assert pruning is not None
        order = pruning.group_order(self.mind)
        if len(order) == 0 or not self.rows.can_copy(len(order)):
            pruning.regrouped(None)
            return
        self.rows.regroup(order)
        self.mind = self.mind[order]
        pruning.regrouped(order)
        if self.lazy is not None:
            self.lazy.permute(order)
        logger.debug("kcenter numpy: regrouped %d live rows by nearest center", len(order))

    def stats(self) -> dict[str, Any]:
        lazy = self.lazy
        return {
            "evaluations": self.evaluations - self.filtered_out,
            "evaluations_unpruned": self.evaluations_unpruned,
            "reorders": self.pruning.reorders if self.pruning is not None else 0,
            "layout": self.rows.layout,
            "prune": self.pruning_active,
            "lazy": self.lazy_wanted,
            "lazy_adaptive": self.lazy_adaptive,
            "prune_dropped": self.pruning.dropped if self.pruning is not None else False,
            "lazy_fallbacks": lazy.fallbacks if lazy is not None else 0,
            "lazy_epochs": lazy.epochs if lazy is not None else 0,
            "lazy_switches": lazy.switches if lazy is not None else 0,
            "n_threads": self.rows.n_threads,
            "shift": self.rows.shift is not None,
            "need_estimate": self.need_estimate,
            "reprobes": self.reprobes,
            "reprobes_skipped": self.reprobes_skipped,
            "init_s": self.init_s,
            "pick_s": self.pick_s,
            "boxes": self.boxes is not None,
            "filter": self.filtering,
            "filtered_out": self.filtered_out,
        }
