"""Where float32 K-Center leaves the float64 greedy order, and how much a shifted formula delays it.

The kernel computes float32 squared distances as ``|x|^2 + |c|^2 - 2 x.c``. Its rounding error scales
with the norms, not with the distances, so on data with a large common mean (real embeddings often
have one) near-ties are resolved differently from float64 early on. Euclidean distances do not change
under a shift ``s``::

    |x - c|^2 = |x - s|^2 + |c - s|^2 - 2 (x - s).(c - s)
              = q_x + (q_c + 2 s.w) - 2 x.w,     w = c - s,  q_y = |y - s|^2

The second line costs the same per pick as the kernel's formula (one product of every row with one
vector) but its dot products involve ``|x| |c - s|`` instead of ``|x| |c|``: with ``s`` a data row
(known to every backend at the start, e.g. the first center), ``|c - s|`` is of the order of the
spread, not of the mean.

The kernels use it (as ``q_x + (2 c.w - q_c) - 2 x.w``, equal, and exactly 0 for duplicates) when
the data's mean is large against its spread (:mod:`diverseevol.kernels._shift`). Arithmetic compared
on the same data and start, each against a float64 greedy run (the kernel on the float64 copy):

* ``kernel_old``: :func:`diverseevol.kcenter_select` on float32 (numpy, every distance) with the shift
  rule disabled: the plain formula (what every backend did before);
* ``kernel_new``: the same call with the rule as shipped (the faiss backend is the numpy kernel's
  arithmetic, bit for bit);
* ``torch_old`` / ``torch_new``: the torch backend on the CPU (also the sharded kernel's arithmetic);
* ``shifted_f32``: the second line above in float32, ``s`` = the first center (a plain loop here);
* ``direct_f32``: direct differences ``sum((x - c)^2)`` in float32 (what the textbook FPS loops do).

For each: the first pick that differs from the float64 order and the float64 relative gap between
the two rows there (near-ties are expected eventually; the later, the better).

Usage::

    python benchmarks/kcenter_exactness.py            # small: 20,000 x 1,024 and 50,000 x 256
    python benchmarks/kcenter_exactness.py --full     # 52,002 x 4,096 (50 clusters) and 200,000 x 768
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kcenter import clustered_data  # noqa: E402


def offset_data(n: int, d: int, clusters: int, offset_ratio: float, seed: int = 1) -> np.ndarray:
    """Clustered rows plus one shared offset vector of norm ``offset_ratio`` x the rows' spread around their mean."""
    x = clustered_data(np.empty((n, d), dtype=np.float32), clusters, 2.0, seed=seed)
    mean = x.mean(axis=0, dtype=np.float64)
    sample = x[:: max(1, n // 2000)].astype(np.float64) - mean
    spread = float(np.sqrt((sample**2).sum(axis=1).mean()))
    u = np.random.default_rng(seed + 100).standard_normal(d)
    x += (u / np.linalg.norm(u) * offset_ratio * spread).astype(np.float32)
    return x


def greedy(x: np.ndarray, first: int, k: int, update) -> np.ndarray:
    """Farthest-first from ``first`` with ``update(c) -> squared distances of every row to row c``."""
    mind = np.full(len(x), np.inf, dtype=x.dtype)
    picks = np.empty(k, dtype=np.int64)
    c = first
    for t in range(k):
        picks[t] = c
        mind[c] = -1
        if t + 1 == k:
            break
        np.minimum(mind, update(c), out=mind)
        mind[picks[: t + 1]] = -1
        c = int(np.argmax(mind))
    return picks


def shifted_f32(x: np.ndarray, first: int, k: int) -> np.ndarray:
    s = x[first].copy()
    q = np.empty(len(x), dtype=np.float32)
    for a in range(0, len(x), 8192):
        y = x[a : a + 8192] - s
        q[a : a + 8192] = np.einsum("ij,ij->i", y, y)

    def update(c: int) -> np.ndarray:
        w = x[c] - s
        kc = np.float32(q[c] + np.float32(2) * np.float32(np.dot(s, w)))
        d2 = np.einsum("ij,j->i", x, w)
        d2 *= -2
        d2 += q
        d2 += kc
        return np.maximum(d2, 0, out=d2)

    return greedy(x, first, k, update)


def direct_f32(x: np.ndarray, first: int, k: int) -> np.ndarray:
    def update(c: int) -> np.ndarray:
        out = np.empty(len(x), dtype=np.float32)
        for a in range(0, len(x), 8192):
            y = x[a : a + 8192] - x[c]
            out[a : a + 8192] = np.einsum("ij,ij->i", y, y)
        return out

    return greedy(x, first, k, update)


def first_difference(x: np.ndarray, ref: np.ndarray, got: np.ndarray) -> tuple[int | None, float]:
    """(first pick where ``got`` leaves ``ref`` or None, float64 relative gap of the two rows there)."""
    diff = np.flatnonzero(ref != got)
    if not len(diff):
        return None, 0.0
    t = int(diff[0])
    rows = x[[ref[t], got[t]]].astype(np.float64)
    d = np.full(2, np.inf)
    for a in range(0, t, 1024):
        C = x[ref[a : min(t, a + 1024)]].astype(np.float64)
        d = np.minimum(d, ((rows[:, None, :] - C[None, :, :]) ** 2).sum(-1).min(axis=1))
    return t, abs(d[0] - d[1]) / max(d[0], d[1], 1e-300)


def main(argv: list[str] | None = None) -> int:
    from diverseevol import kcenter_select
    from diverseevol.kernels import _shift, _torch

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="the issue's sizes (52,002 x 4,096 and 200,000 x 768)")
    p.add_argument("--offset", type=float, default=10.0, help="shared offset norm / spread (default 10)")
    p.add_argument("--methods", default="kernel_old,kernel_new,torch_old,torch_new")
    args = p.parse_args(argv)
    cases = [(52002, 4096, 50, 300), (200000, 768, 1000, 1000)] if args.full else \
        [(20000, 1024, 50, 300), (50000, 256, 200, 500)]
    ratio = _shift.SHIFT_RATIO

    def with_ratio(r, fn):
        def run(x, f, k):
            _shift.SHIFT_RATIO = r
            try:
                return fn(x, f, k)
            finally:
                _shift.SHIFT_RATIO = ratio
        return run

    def kernel(x, f, k):
        return kcenter_select(x, np.empty(0, np.int64), k, backend="numpy", prune=False, random_state=0,
                              progress=False)

    def torch_cpu(x, f, k):
        idx = np.arange(len(x), dtype=np.int64)
        return _torch.farthest_first(x, np.empty(0, np.int64), idx, k, metric="euclidean", first_pick=f,
                                     progress=False)[0]

    methods = {
        "kernel_old": with_ratio(np.inf, kernel),
        "kernel_new": kernel,
        "torch_old": with_ratio(np.inf, torch_cpu),
        "torch_new": torch_cpu,
        "shifted_f32": shifted_f32,
        "direct_f32": direct_f32,
    }
    print(f"load average: {open('/proc/loadavg').read().split()[:3]} on {os.cpu_count()} CPUs")
    for offset in sorted({0.0, args.offset}):
        for n, d, clusters, k in cases:
            x = offset_data(n, d, clusters, offset)
            first = int(np.random.default_rng(0).integers(n))  # kcenter_select's draw with random_state=0
            t0 = time.perf_counter()
            ref = kcenter_select(x.astype(np.float64), np.empty(0, np.int64), k, backend="numpy", prune=False,
                                 random_state=0, progress=False)
            idx = np.arange(n, dtype=np.int64)
            engaged = _shift.choose_shift(x, np.empty(0, np.int64), idx, "euclidean", first) is not None
            print(f"\n== {n:,} x {d}, {clusters} clusters, shared offset {offset:g} x spread, k = {k} "
                  f"(float64 reference {time.perf_counter() - t0:.1f} s; shift rule engages: {engaged})")
            for name in args.methods.split(","):
                got = methods[name](x, first, k)
                t, gap = first_difference(x, ref, got)
                where = f"same order for all {k} picks" if t is None else f"leaves at pick {t} (rel. gap {gap:.1e})"
                print(f"{name:<12} {where}")
            del x
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
