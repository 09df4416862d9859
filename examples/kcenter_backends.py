"""K-Center compute backends, the "auto" choice, and the approximate mode, on synthetic data.

Runs offline in a few seconds:

    python examples/kcenter_backends.py

It selects the same records with every installed exact backend (numpy, faiss, torch), shows which
backend "auto" picks and why (INFO log), then runs the APPROXIMATE mode and reports its overlap with
the exact picks and its covering radius.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from diverseevol import kcenter_select
from diverseevol.kernels.approximate import kcenter_select_approximate
from diverseevol.kernels.backends import installed_backends


def clustered(n: int, d: int, n_clusters: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_clusters, d)).astype(np.float32) * 3
    return centers[rng.integers(n_clusters, size=n)] + rng.normal(size=(n, d)).astype(np.float32)


def covering_radius(emb: np.ndarray, centers: np.ndarray) -> float:
    """Largest distance of any record to its nearest center (exact, blocked)."""
    c = emb[centers].astype(np.float64)
    worst = 0.0
    for s in range(0, len(emb), 4096):
        x = emb[s : s + 4096].astype(np.float64)
        d2 = (x * x).sum(1)[:, None] + (c * c).sum(1)[None, :] - 2 * x @ c.T
        worst = max(worst, float(np.sqrt(max(d2.min(axis=1).max(), 0.0))))
    return worst


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)  # faiss logs which CPU build it loads
    emb = clustered(40_000, 64, 200)
    pool = np.arange(0, 40_000, 400)  # 100 records already in the training pool
    k = 200

    print(f"installed exact backends: {installed_backends()}")
    picks = {}
    for backend in installed_backends():
        t = time.perf_counter()
        picks[backend] = kcenter_select(emb, pool, k, backend=backend, metric="cosine", progress=False)
        print(f"{backend:>6}: {time.perf_counter() - t:5.2f} s, first picks {picks[backend][:5].tolist()}")
    ref = picks["numpy"]
    print("every exact backend gives the numpy picks:", all(np.array_equal(p, ref) for p in picks.values()))

    kcenter_select(emb, pool, k, backend="auto", metric="cosine", progress=False)  # logs its choice

    exact = kcenter_select(emb, pool, 1000, backend="numpy", progress=False)
    r_exact = covering_radius(emb, np.concatenate([pool, exact]))
    for n_probe in (4, 16, None):
        t = time.perf_counter()
        approx = kcenter_select_approximate(emb, pool, 1000, n_probe=n_probe, random_state=0, progress=False)
        took = time.perf_counter() - t
        overlap = len(np.intersect1d(approx, exact)) / len(exact)
        ratio = covering_radius(emb, np.concatenate([pool, approx])) / r_exact
        print(
            f"approximate n_probe={n_probe!s:>4}: {took:5.2f} s, overlap with exact {overlap:6.1%}, "
            f"covering radius {ratio:.3f}x exact"
        )


if __name__ == "__main__":
    main()
