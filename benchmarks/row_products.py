"""The kernels' per-row product rule against einsum and BLAS GEMV, one thread, same process, interleaved.

For each shape: ``np.einsum("ij,j->i")`` (the old rule), ``kernels._rowblocks.row_products`` (the rule in use:
``np.vecdot``, one BLAS dot per row, where it is row-local) and ``x @ c`` (BLAS GEMV, whose per-row bits depend on
where a row falls in the call, so the exact kernels cannot use it), then the blocked forms against 32 centers
(``np.einsum("ij,kj->ik")`` vs ``pair_products``). Milliseconds, min over rounds; the ratio old / new.

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/row_products.py
"""

from __future__ import annotations

import os
import time

import numpy as np

from diverseevol.kernels import _rowblocks

SHAPES = [(5_200, 4_096), (20_000, 768), (50_000, 256), (50_000, 128), (100_000, 16)]


def best_ms(fn, rounds: int) -> float:  # type: ignore[no-untyped-def]
    out = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out * 1e3


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.2f}; numpy {np.__version__}; rule: "
          f"{'vecdot' if _rowblocks.uses_vecdot(128) else 'einsum'}; OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}")
    print(f"{'shape':>16} {'einsum':>9} {'rule':>9} {'GEMV':>9} {'old/new':>8} {'block einsum':>13} {'block rule':>11} "
          f"{'old/new':>8}")
    rng = np.random.default_rng(0)
    for n, d in SHAPES:
        x = rng.standard_normal((n, d), dtype=np.float32)
        c = x[7].copy()
        w = x[:32].copy()
        xb = x[: max(1, min(n, 4_000_000 // d))]
        out = np.empty(n, dtype=np.float32)
        t = {k: float("inf") for k in ("einsum", "rule", "gemv", "beinsum", "brule")}
        for _ in range(5):  # rounds, the methods interleaved
            t["einsum"] = min(t["einsum"], best_ms(lambda: np.einsum("ij,j->i", x, c, out=out), 2))
            t["rule"] = min(t["rule"], best_ms(lambda: _rowblocks.row_products(x, c, out=out), 2))
            t["gemv"] = min(t["gemv"], best_ms(lambda: np.matmul(x, c, out=out), 2))
            t["beinsum"] = min(t["beinsum"], best_ms(lambda: np.einsum("ij,kj->ik", xb, w), 1))
            t["brule"] = min(t["brule"], best_ms(lambda: _rowblocks.pair_products(xb, w), 1))
        print(f"{n:>7,} x {d:<6,} {t['einsum']:9.2f} {t['rule']:9.2f} {t['gemv']:9.2f} {t['einsum'] / t['rule']:8.2f} "
              f"{t['beinsum']:13.2f} {t['brule']:11.2f} {t['beinsum'] / t['brule']:8.2f}   (block: {len(xb):,} rows x 32)")


if __name__ == "__main__":
    main()
