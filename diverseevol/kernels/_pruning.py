"""Exact triangle-inequality pruning for the numpy K-Center kernel.

Every candidate keeps the center it is nearest to (``assign``). A new center ``c`` can lower the
distance ``m`` of a candidate whose nearest center is ``a`` only if ``d(c, a) < 2 m``. The test uses
a rigorous bound ``E`` on the rounding error of the computed squared distances, so a skipped row is
one whose computed distance could not have dropped: the picks and radii are bit-identical to
``prune=False``. With the shifted arithmetic (:mod:`._shift`) the table holds ``w = c - s`` and the
bound is taken over ``|x - s|^2`` and ``|s|`` instead of ``|x|^2``.

A pass is planned per tile of rows: tiles without a row needing work are skipped, tiles where at
least a third of the rows need work are computed whole, from the others only the rows needing
work are gathered. When grouping rows by nearest center would avoid much work (the "waste"), the
kernel regroups the rows (ski-rental rule: after the avoidable work has cost about ten passes).
With ``prune="auto"`` pruning is dropped when pruned passes are measured slower than full reads.
"""

from __future__ import annotations

import logging
import statistics
from collections import deque
from typing import Any

import numpy as np

from ._rowstore import RowStore

__all__ = ["TrianglePruning", "distance_error_bound", "sampled_need_share"]

logger = logging.getLogger(__name__)

_SAMPLE_BLOCK_BYTES = 32 << 20  # bound on each block of centers (and of its distances) in sampled_need_share

_GATHER_COST = 3  # a gathered row costs about this many contiguous row reads (read + write + read)
_REORDER_FACTOR = 10.0  # regroup after this many passes of avoidable work (a fresh copy costs ~2-20 passes)
_PRUNE_TRIAL_PASSES = 8  # prune='auto': pruned passes timed before they are compared with a full read
_PRUNE_LOSS = 1.2  # ... and dropped when their median costs more than this many full reads
_EMPTY = np.empty(0, dtype=np.int64)


def distance_error_bound(rows: RowStore, max_center_sq: float) -> float:
    """``E``: a rigorous bound on the absolute rounding error of any squared distance the kernel computes.

    ``max_center_sq`` is the largest squared norm of a center outside the rows (pool members; as the
    arithmetic uses it: ``|w|^2`` when shifted); the rows' own are ``rows.max_sqn``. Exact pruning
    skips a row only when the true distance exceeds its running minimum by more than ``E``.
    """
    max_sq = 3.0 if rows.cosine else max(rows.max_sqn, max_center_sq)
    if rows.shift is not None:
        # Shifted (Q = max |x - s|^2 over rows and centers, |x|, |c| <= |s| + sqrt(Q)): the terms
        # q_x, q_c, 2|x||w|, 2|c||w| of q_x + (2 c.w - q_c) - 2 x.w sum to at most 6 Q + 4 |s| sqrt(Q).
        # The centers are s + w with w the rounded c - s the rows were computed with (the table's).
        max_sq = 1.5 * max_sq + rows.shift_norm * np.sqrt(max_sq)
    # Rigorous bound factor on the absolute error of a computed squared distance, relative to
    # |x|^2 + |c|^2 (two dot products of length d plus three roundings), and the bound E itself.
    delta = (2 * rows.d + 16) * float(np.finfo(rows.dtype).eps)
    return float(delta * 2.0 * max_sq * (1.0 + 1e-3) + np.finfo(np.float64).tiny)


def sampled_need_share(
    rows: RowStore, mind: np.ndarray, centers: np.ndarray, probes: np.ndarray, sample_rows: int = 4096
) -> float | None:
    """Estimated share of live rows that centers ``probes`` would compute under pruning with table ``centers``.

    What :class:`TrianglePruning` would measure with a table of ``centers`` (absolute rows), from about
    ``sample_rows`` live rows instead of all of them: each sample row's nearest center and distance by float32
    GEMMs (coordinates shifted by the first center, unit rows for cosine; centers read in blocks of at most
    ``_SAMPLE_BLOCK_BYTES``), then the triangle test of each probe (absolute rows, the likely next picks) against
    it, with the kernel's rounding bound ``E``. Costs GEMMs of the sample, not of every row; used to skip building
    a full table that would not pay. None when there are too few live rows to sample.

    Parameters
    ----------
    rows : RowStore
        The run's rows (norms computed).
    mind : ndarray, shape (n_phys,)
        Running minimum per physical row; negative for dead rows.
    centers, probes : ndarray of int64
        Absolute row indices into Z.
    """
    live = np.flatnonzero(mind >= 0)
    if len(live) < 2 * len(probes) or not len(centers) or not len(probes):
        return None
    pos = live[:: max(1, len(live) // sample_rows)]
    ref = rows.gather(centers[:1])[0]

    def coordinates(a: np.ndarray) -> np.ndarray:
        if rows.cosine:
            return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), np.finfo(a.dtype).tiny)
        return a - ref

    X, Q = coordinates(rows.take(pos)), coordinates(rows.gather(probes))
    x2 = np.einsum("ij,ij->i", X, X, dtype=np.float64)
    q2 = np.einsum("ij,ij->i", Q, Q, dtype=np.float64)
    near_d2 = np.full(len(pos), np.inf)
    nearest = np.zeros(len(pos), dtype=np.int64)
    probe_d2 = np.empty((len(Q), len(centers)))  # probe-to-center squared distances
    max_p2 = 0.0
    step = max(1, min(_SAMPLE_BLOCK_BYTES // (rows.d * rows.itemsize), _SAMPLE_BLOCK_BYTES // (8 * len(pos))))
    for a in range(0, len(centers), step):
        P = coordinates(rows.gather(centers[a : a + step]))
        p2 = np.einsum("ij,ij->i", P, P, dtype=np.float64)
        max_p2 = max(max_p2, float(p2.max()))
        d2 = x2[:, None] + p2[None, :] - 2.0 * (X @ P.T)
        j = np.argmin(d2, axis=1)
        v = d2[np.arange(len(pos)), j]
        better = v < near_d2
        near_d2[better], nearest[better] = v[better], j[better] + a
        probe_d2[:, a : a + len(P)] = q2[:, None] + p2[None, :] - 2.0 * (Q @ P.T)
    rows.after_blas()
    E = distance_error_bound(rows, max_p2)
    thr = 2.0 * np.sqrt(np.maximum(near_d2, 0.0) + E)
    lb = np.sqrt(np.maximum(probe_d2 - E, 0.0))  # lower bound on each probe's distance to each center
    return float(np.mean(lb[:, nearest] < thr[None, :]))


class TrianglePruning:
    """The centers table, each row's nearest center and threshold, and the decision to keep pruning.

    Parameters
    ----------
    rows : RowStore
        The rows (norms computed).
    mind : ndarray, shape (n_phys,)
        Running minimum squared distance of every physical row (-1 for dead rows).
    assign : ndarray of int64, shape (n_phys,)
        Position in ``pool`` of each row's nearest pool member (-1: none).
    pool : ndarray of int64, shape (p,)
        Absolute row indices into Z of the pool.
    k : int
        Number of picks (room for that many more centers).
    adaptive : bool
        ``prune="auto"``: drop pruning when it is measured not to pay.
    """

    def __init__(
        self, rows: RowStore, mind: np.ndarray, assign: np.ndarray, pool: np.ndarray, k: int, *, adaptive: bool
    ) -> None:
        self.cosine = rows.cosine
        self.shifted = rows.shift is not None  # the table holds w = c - s, and Csq |w|^2
        self.active = True
        self.adaptive = adaptive
        self.loss_scale = 1.0  # multiplies _PRUNE_LOSS in judge (raised where an estimate vouches for pruning)
        self.dropped = False
        self.pass_s: deque[float] = deque(maxlen=_PRUNE_TRIAL_PASSES)
        self.waste = 0.0  # work a regrouping could have avoided since the last one; -inf: never regroup
        self.reorders = 0
        live = mind >= 0
        # The pool members nearest to some live row, sorted (np.unique's hashing took 0.25 s on 200,000 rows).
        used = np.flatnonzero(np.bincount(assign[live & (assign >= 0)], minlength=len(pool)))
        n_centers = len(used) + k
        self.C = np.empty((n_centers, rows.d), dtype=rows.dtype)
        self.Csq = np.zeros(n_centers, dtype=np.float64)
        self.Cinv = np.zeros(n_centers, dtype=np.float64)
        self.Cu = np.zeros(n_centers, dtype=np.float64)
        if len(used):
            W, _ = rows.centers(rows.gather(pool[used]))
            self.C[: len(used)] = W
            sq, inv, u = rows.factors(rows.sq_norms(W))
            self.Csq[: len(used)] = sq
            if self.cosine:
                self.Cinv[: len(used)] = inv
                self.Cu[: len(used)] = u
        self.n_centers = len(used)
        remap = np.full(len(pool), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        self.assign = np.where(assign >= 0, remap[np.maximum(assign, 0)], -1) if len(used) else assign
        self.E = distance_error_bound(rows, float(self.Csq[: len(used)].max()) if len(used) else 0.0)
        m = np.where(mind >= 0, mind, 0).astype(np.float64)
        self.thr = 2 * np.sqrt(m + self.E)
        self.thr[~np.isfinite(self.thr)] = np.inf
        self.thr[mind < 0] = -np.inf  # dead rows never need work

    def push(self, c: np.ndarray, cf: Any) -> int:
        """Add center ``c`` (factors ``cf``) to the table; return its id."""
        cid = self.n_centers
        self.C[cid] = c
        sq, inv, u = cf
        self.Csq[cid] = self._center_sq(c, sq)
        if self.cosine:
            self.Cinv[cid] = inv
            self.Cu[cid] = u
        self.n_centers += 1
        return cid

    def need_rows(self, c: np.ndarray, cf: Any, mind: np.ndarray) -> np.ndarray:
        """Rows whose distance may drop with center ``c`` (all others are provably unchanged).

        The bound uses every center pushed so far: with lazy updates a row's nearest center may be
        a later pick than ``c``.
        """
        nc = self.n_centers
        if nc == 1:  # c is the only center: no bound to test against
            need = np.ones(len(mind), dtype=bool)
        else:
            # einsum, not BLAS: OpenBLAS threads spin after a call and would slow the pick's own threads
            dots = np.einsum("ij,j->i", self.C[:nc], c).astype(np.float64)
            sq, inv, u = cf
            if self.cosine:
                d2 = self.Cu[:nc] + float(u) - 2.0 * dots * self.Cinv[:nc] * float(inv)
            else:
                d2 = self.Csq[:nc] + self._center_sq(c, sq) - 2.0 * dots
            lb = np.sqrt(np.maximum(d2 - self.E, 0.0))
            lb_row = np.where(self.assign >= 0, lb[np.maximum(self.assign, 0)], 0.0)
            need = lb_row < self.thr
        need &= mind >= 0
        return need

    def _center_sq(self, c: np.ndarray, sq: Any) -> float:
        """``|c|^2`` of a table vector: the factor ``sq`` (plain), or ``|w|^2`` of ``c = w`` (shifted; ``sq`` is the constant)."""
        if not self.shifted:
            return float(sq)
        return float(np.einsum("i,i->", c, c, dtype=np.float64))

    def plan(self, need: np.ndarray, tile: int) -> tuple[list[tuple[int, int]], np.ndarray, int]:
        """Work of one pruned pass: ``(ranges, rows, cost)``.

        ``ranges`` are runs of whole tiles to compute (half-open physical ranges), ``rows`` the
        physical positions to gather from the other tiles, ``cost`` the pass's work in contiguous
        row reads. A tile with many rows needing work is computed whole (a contiguous read); a tile
        with a few has just those rows gathered (a gather costs about ``_GATHER_COST`` row reads).
        """
        n = len(need)
        n_tiles = (n + tile - 1) // tile
        padded = np.zeros(n_tiles * tile, dtype=bool)
        padded[:n] = need
        counts = padded.reshape(n_tiles, tile).sum(axis=1)
        whole = counts * _GATHER_COST >= tile
        ranges = [(s * tile, min(n, e * tile)) for s, e in _runs(whole)]
        few = (counts > 0) & ~whole
        rows = np.flatnonzero(need & np.repeat(few, tile)[:n]) if few.any() else _EMPTY
        cost = sum(b - a for a, b in ranges) + _GATHER_COST * len(rows)
        return ranges, rows, cost

    def count_waste(self, cost: int, need: np.ndarray, mind: np.ndarray) -> None:
        """Add the work of a pass that grouping rows by nearest center would avoid.

        That is the rows computed beyond those of the groups (rows sharing a nearest center) that
        hold a row needing work. On isotropic data every group holds one, so this stays ~0 and the
        rows are never copied.
        """
        if self.waste < 0:
            return
        live = mind >= 0
        sizes = np.bincount(self.assign[live], minlength=self.n_centers)
        hit = np.bincount(self.assign[need], minlength=self.n_centers) > 0
        self.waste += max(0, cost - int(sizes[hit].sum()))

    def regroup_due(self, n_live: int) -> bool:
        """Whether the avoidable work has cost more than a regrouping (about ``_REORDER_FACTOR`` passes)."""
        return self.waste > _REORDER_FACTOR * max(1, n_live)

    def group_order(self, mind: np.ndarray) -> np.ndarray:
        """Physical positions of the live rows, grouped by nearest center (stable)."""
        live = np.flatnonzero(mind >= 0)
        return live[np.argsort(self.assign[live], kind="stable")]

    def regrouped(self, order: np.ndarray | None) -> None:
        """The rows were regrouped into ``order`` (None: it was impossible; never try again)."""
        if order is None:
            self.waste = -np.inf
            return
        self.waste = 0.0
        self.assign = self.assign[order]
        self.thr = self.thr[order]
        self.reorders += 1

    def lowered(self, pos: np.ndarray, d2: np.ndarray, cid: int) -> None:
        """Rows ``pos`` now have center ``cid`` nearest, at squared distance ``d2``."""
        self.assign[pos] = cid
        self.thr[pos] = 2 * np.sqrt(d2.astype(np.float64) + self.E)

    def judge(self, seconds: float, full_pass_s: float) -> None:
        """prune='auto': stop pruning when pruned passes are measured slower than a full read of the rows.

        Pruning pays on clustered data; on data where most rows need work anyway its bookkeeping and
        gathers cost more than the rows it skips. The picks do not depend on this choice.
        """
        self.pass_s.append(seconds)
        if len(self.pass_s) < _PRUNE_TRIAL_PASSES:
            return
        median = statistics.median(self.pass_s)  # np.median: 50 us a call on 8 floats, this: 1 us
        if median > _PRUNE_LOSS * self.loss_scale * full_pass_s:
            self.active = False
            self.dropped = True
            logger.debug("kcenter numpy: pruned passes cost %.3g s vs %.3g s for a full read; pruning off",
                         median, full_pass_s)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Half-open [start, end) runs of True in a 1-D bool array."""
    if not flags.any():
        return []
    f = np.concatenate(([False], flags, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(f))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))
