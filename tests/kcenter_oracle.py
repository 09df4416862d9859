"""The brute-force greedy K-Center oracle shared by the K-Center tests (kernel, backends, sampler, loop).

Deliberately plain and independent of ``diverseevol``: the full float64 distance matrix of Z, then
farthest-first one pick at a time, ties to the lowest absolute row index. Only for small Z (it
builds an (N, N, d) array).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def kcenter_oracle(
    emb: np.ndarray,
    pool: Iterable[int],
    cand: Iterable[int] | None,
    k: int,
    metric: str = "euclidean",
    first_pick: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy K-Center (farthest-first) by brute force.

    Parameters
    ----------
    emb : array of shape (N, d)
        Z's embeddings; converted to float64.
    pool : iterable of int
        Absolute row indices into Z of the training pool (the initial centers); may be empty.
    cand : iterable of int or None
        Absolute row indices into Z that may be picked, in any order; ``None``: every row not in
        ``pool``.
    k : int
        Number of picks.
    metric : {"euclidean", "cosine"}
        ``"cosine"``: distances between the L2-normalised rows, reported as ``1 - cosine
        similarity`` (= squared distance / 2 on unit vectors).
    first_pick : int, optional
        The first pick when ``pool`` is empty (the kernels draw it at random); its radius is ``inf``.

    Returns
    -------
    picks : ndarray of int64, shape (k,)
        Absolute row indices into Z, in pick order.
    radii : ndarray of float64, shape (k,)
        Each pick's distance to its nearest center when picked.
    """
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
    x = np.asarray(emb, dtype=np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        assert np.all(norms > 0), "the cosine oracle needs non-zero rows"
        x = x / norms
    # The difference form keeps exact ties exact (identical rows are at distance exactly 0).
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    if metric == "cosine":
        dist = dist**2 / 2  # 1 - cos on unit vectors

    centers = [int(i) for i in pool]
    left = sorted(set(range(len(x))) - set(centers)) if cand is None else sorted(int(i) for i in cand)
    picks: list[int] = []
    radii: list[float] = []
    for _ in range(k):
        if not centers:
            if first_pick is None:
                raise ValueError("the pool is empty: give first_pick")
            best, radius = int(first_pick), np.inf
        else:
            nearest = dist[np.ix_(left, centers)].min(axis=1)
            i = int(np.argmax(nearest))  # `left` is ascending: the first maximum is the lowest index
            best, radius = left[i], float(nearest[i])
        picks.append(best)
        radii.append(radius)
        centers.append(best)
        left.remove(best)
    return np.array(picks, dtype=np.int64), np.array(radii, dtype=np.float64)
