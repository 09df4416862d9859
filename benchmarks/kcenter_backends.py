"""Measure the K-Center backends against the numpy reference, and the approximate mode against exact.

Prints, in one run on this machine:

1. initial distances (candidates to the pool) by faiss vs numpy, |pool| = 100 and 10,000;
2. per-pick time of torch (CPU, or CUDA when present) vs numpy;
3. the approximate mode on clustered data: time, overlap with the exact picks, covering radius.

Usage::

    python benchmarks/kcenter_backends.py                 # full sizes (a few minutes on 2 cores)
    python benchmarks/kcenter_backends.py --quick         # small sizes, seconds
    python benchmarks/kcenter_backends.py --only approx   # one part: init, picks or approx
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("DIVERSEEVOL_PROGRESS", "0")


def best_of(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def random_data(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)


def clustered_data(n: int, d: int, n_clusters: int, seed: int = 0) -> np.ndarray:
    """Gaussian clusters of unequal size and spread (a stand-in for LLM embeddings)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_clusters, d), dtype=np.float32) * 3
    sizes = rng.dirichlet(np.full(n_clusters, 2.0))
    labels = rng.choice(n_clusters, size=n, p=sizes)
    spread = rng.uniform(0.3, 1.2, size=n_clusters).astype(np.float32)
    x = rng.standard_normal((n, d), dtype=np.float32)
    x *= spread[labels, None]
    x += centers[labels]
    return x


def part_init(n: int, d: int, repeat: int) -> None:
    from diverseevol.kernels import _faiss, _numpy

    x = random_data(n, d)
    print(f"\n== initial distances to the pool: N={n:,} x d={d}, float32 (k=1: norms + init + one argmax)")
    for p in (100, min(10_000, n // 5)):
        pool = np.sort(np.random.default_rng(1).choice(n, p, replace=False))
        cand = np.setdiff1d(np.arange(n), pool)
        t_np, r_np = best_of(
            lambda pool=pool, cand=cand: _numpy.farthest_first(
                x, pool, cand, 1, metric="euclidean", first_pick=None, prune=False, progress=False
            ),
            repeat,
        )
        t_fa, r_fa = best_of(
            lambda pool=pool, cand=cand: _faiss.farthest_first(
                x, pool, cand, 1, metric="euclidean", first_pick=None, progress=False
            ),
            repeat,
        )
        same = r_np[0][0] == r_fa[0][0]
        print(
            f"|pool|={p:>6,}: numpy {t_np:6.2f} s   faiss-cpu {t_fa:6.2f} s   faiss/numpy {t_fa / t_np:4.2f}x   "
            f"same first pick: {same}"
        )


def part_picks(n: int, d: int, k: int, repeat: int) -> None:
    import torch

    from diverseevol.kernels import _numpy, _torch

    x = random_data(n, d, seed=2)
    pool = np.sort(np.random.default_rng(3).choice(n, 100, replace=False))
    cand = np.setdiff1d(np.arange(n), pool)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    print(
        f"\n== per-pick time: N={n:,} x d={d}, |pool|=100, k={k}; torch on {dev} "
        f"({torch.get_num_threads()} threads)"
    )

    def per_pick(fn):
        t1, _ = best_of(lambda: fn(1), repeat)
        tk, out = best_of(lambda: fn(k), repeat)
        return (tk - t1) / (k - 1), t1, out

    np_pp, np_t1, np_out = per_pick(
        lambda kk: _numpy.farthest_first(
            x, pool, cand, kk, metric="euclidean", first_pick=None, prune=False, progress=False
        )
    )
    bw_s = best_of(lambda: float(x.sum(dtype=np.float64)), repeat)[0]
    print(
        f"read bound (one numpy sum over the embeddings): {bw_s * 1e3:6.1f} ms  ({x.nbytes / bw_s / 1e9:5.1f} GB/s)"
    )
    print(f"numpy (prune=False): {np_pp * 1e3:6.1f} ms/pick  (start {np_t1:5.2f} s)")
    default_threads = torch.get_num_threads()
    # Multi-threaded MKL stalls badly when another process holds a core; 1 thread shows the kernel itself.
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        to_pp, to_t1, to_out = per_pick(
            lambda kk: _torch.farthest_first(
                x, pool, cand, kk, metric="euclidean", first_pick=None, device=dev, progress=False
            )
        )
        print(
            f"torch-{dev} ({threads} thr): {to_pp * 1e3:6.1f} ms/pick  (start {to_t1:5.2f} s)   "
            f"torch/numpy {to_pp / np_pp:4.2f}x   same picks: {np.array_equal(np_out[0], to_out[0])}"
        )
    torch.set_num_threads(default_threads)


def covering_radius(x: np.ndarray, centers: np.ndarray, block: int = 8192) -> float:
    """Largest distance of a row of x to its nearest center (exact, float64, blocked)."""
    c = x[centers].astype(np.float64)
    c_sq = (c * c).sum(1)
    worst = 0.0
    for s in range(0, len(x), block):
        xb = x[s : s + block].astype(np.float64)
        d2 = (xb * xb).sum(1)[:, None] + c_sq[None, :] - 2 * xb @ c.T
        worst = max(worst, float(np.sqrt(max(d2.min(axis=1).max(), 0.0))))
    return worst


def part_approx(n: int, d: int, k: int, n_clusters: int, probes: list[int]) -> None:
    from diverseevol.kernels import _numpy
    from diverseevol.kernels.approximate import kcenter_select_approximate

    x = clustered_data(n, d, n_clusters, seed=4)
    pool = np.sort(np.random.default_rng(5).choice(n, 100, replace=False))
    cand = np.setdiff1d(np.arange(n), pool)
    print(f"\n== approximate mode: clustered N={n:,} x d={d} ({n_clusters} clusters), |pool|=100, k={k}")
    t_ex, (exact, _) = best_of(
        lambda: _numpy.farthest_first(
            x, pool, cand, k, metric="euclidean", first_pick=None, prune=False, progress=False
        ),
        1,
    )
    r_ex = covering_radius(x, np.concatenate([pool, exact]))
    print(f"exact numpy (prune=False):  {t_ex:7.2f} s   covering radius {r_ex:.4f}")
    t_pr, (exact_pr, _) = best_of(
        lambda: _numpy.farthest_first(
            x, pool, cand, k, metric="euclidean", first_pick=None, prune=True, lazy=False, progress=False
        ),
        1,
    )
    print(f"exact numpy (triangle only): {t_pr:6.2f} s   same picks: {np.array_equal(exact_pr, exact)}")
    t_df, (exact_df, _) = best_of(
        lambda: _numpy.farthest_first(x, pool, cand, k, metric="euclidean", first_pick=None, progress=False),
        1,
    )
    print(f"exact numpy (default: lazy + triangle): {t_df:6.2f} s   same picks: {np.array_equal(exact_df, exact)}")
    for probe in probes:
        t_ap, approx = best_of(
            lambda probe=probe: kcenter_select_approximate(
                x, pool, k, random_state=0, n_probe=probe, progress=False
            ),
            1,
        )
        overlap = len(np.intersect1d(approx, exact)) / k
        r_ap = covering_radius(x, np.concatenate([pool, approx]))
        label = "None (exact)" if probe is None else str(probe)
        print(
            f"approximate n_probe={label:>12}: {t_ap:7.2f} s  ({t_ex / t_ap:5.1f}x faster than prune=False, "
            f"{t_df / t_ap:5.2f}x than the default)   "
            f"overlap {overlap:5.1%}   covering radius {r_ap:.4f} ({r_ap / r_ex:5.3f}x exact)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--only", choices=["init", "picks", "approx"], default=None)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    q = args.quick
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs")
    if args.only in (None, "init"):
        part_init(5_000 if q else 52_002, 256 if q else 1_024, args.repeat)
    if args.only in (None, "picks"):
        part_picks(5_000 if q else 52_002, 256 if q else 1_024, 20 if q else 100, args.repeat)
    if args.only in (None, "approx"):
        part_approx(
            20_000 if q else 500_000,
            32 if q else 128,
            100 if q else 1_000,
            50 if q else 1_000,
            [4, 16, 64, None] if not q else [4, None],
        )


if __name__ == "__main__":
    main()
