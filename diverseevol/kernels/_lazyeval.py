"""Lazy-evaluation state of the numpy K-Center kernel.

A new center is applied only to the rows that could be the next pick; the others keep it pending.
``stamp[i]`` counts the picks row ``i``'s running minimum includes. A stale row's minimum is an
upper bound of its true one, so the largest minima, once brought up to date, prove the argmax.

The search runs inside an *epoch set* ``S``: the rows with the largest minima when the epoch began;
every other row's minimum is at most ``tau``, and minima only decrease, so one pick costs a
partition of ``S``, not of all rows. A batch of the largest minima in ``S`` is brought up to date;
its best value wins once it exceeds every other upper bound, ties included. When ``S`` cannot prove
a pick any more, a fresh (larger, if this one never won) epoch starts; when no epoch can, the
kernel falls back to a full update and stays eager for a cool-down of picks. In the adaptive mode
(``lazy="auto"``) lazy picks are timed and given up for full passes while they cost more.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np


__all__ = ["LazyState"]

_LAZY_BATCH = 64  # rows brought up to date in the first round of a lazy argmax
_LAZY_GROWTH = 4  # the batch grows by this factor while it cannot prove its argmax
_LAZY_MAX_FRACTION = 8  # an epoch set larger than 1/8 of the live rows falls back to one full update
_LAZY_TRIAL_PICKS = 4  # adaptive mode: lazy picks timed before they are compared with a full pass
_EPOCH_ROWS = 4096  # rows with the largest minima searched by the lazy picks until they cannot prove a pick
_LAZY_MAX_COOLDOWN = 64  # at most this many eager picks after repeated fallbacks
_CENTER_CACHE_BYTES = 256 << 20  # pick vectors kept for lazy updates; beyond it they are re-read from Z

#: A pending center: (absolute row index, its vector or None when re-read from Z, its factors, pruning id).
Pending = tuple[int, "np.ndarray | None", Any, "int | None"]


class LazyState:
    """Stamps, pending centers, the epoch set and the adaptive rules of lazy evaluation.

    Parameters
    ----------
    n_phys : int
        Number of physical rows.
    adaptive : bool
        ``lazy="auto"``: lazy only while it is measured to beat full passes.
    """

    def __init__(self, n_phys: int, *, adaptive: bool) -> None:
        self.adaptive = adaptive
        self.stamp = np.zeros(n_phys, dtype=np.int64)
        self.pending: list[Pending] = []
        self.center_bytes = 0
        self.all_current = True  # every row's minimum includes every pick
        self.eager_left = 0  # picks still to apply eagerly (cool-down after a fallback or a switch)
        self.cooldown = 1
        self.batch = _LAZY_BATCH
        self.epoch: tuple[np.ndarray, Any] | None = None
        self.epoch_rows = max(_LAZY_BATCH * _LAZY_GROWTH, _EPOCH_ROWS)
        self.epoch_won = False
        self.switch_due = False
        self.caught_at = 0  # number of picks every row included when the rows were last all current
        self.streak = 0
        self.lazy_s = 0.0  # median of the last _LAZY_TRIAL_PICKS lazy pick times
        self.recent: deque[float] = deque(maxlen=_LAZY_TRIAL_PICKS)
        self.fallbacks = 0
        self.switches = 0
        self.epochs = 0

    def push(self, idx: int, c: np.ndarray, cf: Any, cid: int | None) -> None:
        """Record pick ``idx`` (vector ``c``, factors ``cf``, pruning id ``cid``) as pending."""
        keep = self.center_bytes + c.nbytes <= _CENTER_CACHE_BYTES
        self.center_bytes += c.nbytes if keep else 0
        self.pending.append((idx, c if keep else None, cf, cid))

    def center(self, j: int, read: Callable[[int], tuple[np.ndarray, Any]]) -> tuple[np.ndarray, Any, int | None]:
        """``(vector, factors, pruning id)`` of pending pick ``j``; ``read(row)`` re-reads it when not cached."""
        idx, c, cf, cid = self.pending[j]
        if c is None:
            c, _ = read(idx)
        return c, cf, cid

    def blocks(self, a: int, t: int, size: int) -> list[tuple[int, int]]:
        """Pending picks ``a:t`` cut into runs of at most ``size``, none mixing picks with and without a pruning id.

        A run is applied to stale rows as one block; picks pushed while pruning was off (no id) do not
        update the rows' nearest centers, those pushed while it was on do.
        """
        out = []
        while a < t:
            b = min(t, a + size)
            tracked = self.pending[a][3] is not None
            for j in range(a + 1, b):
                if (self.pending[j][3] is not None) != tracked:
                    b = j
                    break
            out.append((a, b))
            a = b
        return out

    def start_cooldown(self) -> None:
        """Apply the next ``cooldown`` picks eagerly, and double the next cool-down."""
        self.eager_left = self.cooldown
        self.cooldown = min(2 * self.cooldown, _LAZY_MAX_COOLDOWN)

    def search(
        self,
        mind: np.ndarray,
        n_alive: int,
        bring_up_to_date: Callable[[np.ndarray, int], None],
        lowest_index: Callable[[np.ndarray], int],
    ) -> int | None:
        """Argmax of the true running minimum, or None when the lazy search cannot prove it.

        ``bring_up_to_date(rows, t)`` applies the pending picks to sorted physical ``rows``;
        ``lowest_index(positions)`` applies the tie rule. On None the caller catches every row up
        and calls :meth:`fell_back`.
        """
        t = len(self.pending)
        failed = 0  # size of an epoch that already failed in this call
        while True:
            if self.epoch is None and not self._new_epoch(mind, n_alive, failed):
                return None
            S, tau = self.epoch  # type: ignore[misc]
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
                    bring_up_to_date(np.sort(stale), t)
                tv = mind[top]
                best = tv.max()
                if best > outside:
                    if not self.adaptive:
                        self.cooldown = 1
                    self.batch = max(_LAZY_BATCH, b // _LAZY_GROWTH)
                    self.epoch_won = True
                    return lowest_index(top[tv == best])
                if b >= len(S):
                    break
                b *= _LAZY_GROWTH
            # S cannot prove a winner any more: a fresh epoch (larger if this one never won).
            if not self.epoch_won:
                self.epoch_rows *= _LAZY_GROWTH
                failed = len(S)
            self.epoch = None

    def fell_back(self) -> None:
        """The lazy search gave up and every row was caught up: cool down, restart small."""
        self.fallbacks += 1
        self.streak = 0
        self.start_cooldown()
        self.batch = _LAZY_BATCH
        self.epoch_rows = max(_LAZY_BATCH * _LAZY_GROWTH, _EPOCH_ROWS)

    def _new_epoch(self, mind: np.ndarray, n_alive: int, failed: int) -> bool:
        """Start an epoch: ``S`` = the ``epoch_rows`` largest minima (at most 1/8 of the live rows).

        False when lazy search should stop: too few rows, or no larger set than one that just failed.
        """
        s = max(_LAZY_BATCH * _LAZY_GROWTH, min(self.epoch_rows, n_alive // _LAZY_MAX_FRACTION))
        n = len(mind)
        if s * _LAZY_MAX_FRACTION > n_alive or s <= failed:
            return False
        part = np.argpartition(mind, n - s - 1)
        tau = mind[part[n - s - 1]]
        if not np.isfinite(tau):  # rows without any center yet: a full pass is needed
            return False
        self.epoch = (np.sort(part[n - s :]), tau)
        self.epoch_won = False
        self.epochs += 1
        return True

    def judge(self, seconds: float, pass_s: float, picks_left: int) -> None:
        """Adaptive mode: schedule a switch to full passes when lazy picks cost more than a pass (``pass_s``).

        A switch first catches every row up: one full pass per pick since the rows were last all current
        (the debt), which the lazy picks may never have to pay if the run ends first. So the switch is
        made only when the excess of the lazy picks over the ``picks_left`` remaining picks exceeds that
        debt; a brief slow stretch (or a timing disturbed by other load) late in a long lazy run no longer
        turns it into a catch-up of every deferred pick.
        """
        if self.streak == 0:
            self.recent.clear()
        self.recent.append(seconds)
        self.lazy_s = statistics.median(self.recent)  # one slow pick (e.g. the process preempted) is not a trend
        self.streak += 1
        if self.streak >= _LAZY_TRIAL_PICKS:
            debt = len(self.pending) - self.caught_at
            if self.lazy_s > pass_s and (self.lazy_s - pass_s) * picks_left > debt * pass_s:
                self.switch_due = True
                self.switches += 1
                self.streak = 0
            else:
                self.cooldown = 1

    def caught_up(self) -> None:
        """Every row now includes every pending pick."""
        self.stamp.fill(len(self.pending))
        self.caught_at = len(self.pending)
        self.all_current = True

    def permute(self, order: np.ndarray) -> None:
        """The rows were regrouped into ``order`` (physical positions changed)."""
        self.stamp = self.stamp[order]
        self.epoch = None
