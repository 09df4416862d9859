"""The Vendi score: known cases, orders, and why the K-Center metric matters.

Run: python examples/vendi.py            (numpy only, a few seconds)
     python examples/vendi.py --rows 1000000 --dim 768   (a memory-mapped 1M x 768 array, ~3 GB on disk)
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from diverseevol import kcenter_select, vendi_score


def known_cases() -> None:
    rng = np.random.default_rng(0)
    same = np.repeat(rng.normal(size=(1, 16)), 100, axis=0)
    basis = np.linalg.qr(rng.normal(size=(64, 10)))[0].T  # 10 orthonormal rows
    print("100 identical rows      ->", round(vendi_score(same), 6))
    print("10 orthonormal rows     ->", round(vendi_score(basis), 6))


def norm_outliers() -> None:
    """Mean-pooled LLM embeddings have very unequal norms; Euclidean K-Center chases the big ones."""
    rng = np.random.default_rng(1)
    n, d, n_topics = 20_000, 64, 40
    topics = rng.normal(size=(n_topics, d))
    topic = rng.choice(n_topics, size=n, p=rng.dirichlet(np.full(n_topics, 0.5)))
    direction = topics[topic] + 0.6 * rng.normal(size=(n, d))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    norm = rng.lognormal(mean=1.0, sigma=0.5, size=n)  # a heavy tail of long vectors
    emb = (direction * norm[:, None]).astype(np.float32)

    pool0 = rng.choice(n, size=100, replace=False)
    rows = []
    for label, picks in [
        ("random", rng.choice(np.setdiff1d(np.arange(n), pool0), size=1000, replace=False)),
        ("kcenter euclidean", kcenter_select(emb, pool0, 1000, metric="euclidean")),
        ("kcenter cosine", kcenter_select(emb, pool0, 1000, metric="cosine")),
    ]:
        pool = np.concatenate([pool0, picks])
        rows.append((label, pool))
    rows.append(("whole data set", np.arange(n)))

    print(f"\n{'pool (1,100 records)':<20} {'VS q=0.5':>9} {'q=1':>7} {'q=2':>7} {'q=inf':>7} "
          f"{'mean |x|^2':>11} {'topics':>7}")
    for label, pool in rows:
        x = emb[pool]
        scores = [vendi_score(x, q) for q in (0.5, 1, 2, math.inf)]
        sq = float(np.mean(np.einsum("ij,ij->i", x, x)))
        print(f"{label:<20} " + " ".join(f"{s:>7.2f}" for s in scores) + f"   {sq:>9.2f} {len(np.unique(topic[pool])):>5d}/{n_topics}")


def memmap_case(rows: int, dim: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "emb.f32"
        mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(rows, dim))
        rng = np.random.default_rng(2)
        for start in range(0, rows, 100_000):  # write in chunks: never the whole array in memory
            stop = min(rows, start + 100_000)
            mm[start:stop] = rng.normal(size=(stop - start, dim)).astype(np.float32)
        mm.flush()
        del mm
        data = np.memmap(path, dtype=np.float32, mode="r", shape=(rows, dim))
        t = time.perf_counter()
        score = vendi_score(data, q=1)
        elapsed = time.perf_counter() - t
        print(f"\nmemmap {rows:,} x {dim}: Vendi {score:.2f} in {elapsed:.1f} s "
              f"(d x d side: a {dim} x {dim} float64 matrix, read in blocks)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the memory-mapped example")
    parser.add_argument("--dim", type=int, default=64, help="columns of the memory-mapped example")
    args = parser.parse_args()
    known_cases()
    norm_outliers()
    memmap_case(args.rows, args.dim)


if __name__ == "__main__":
    main()
