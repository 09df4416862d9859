"""Distances of the candidate rows to the training pool, the start of the numpy K-Center kernel.

:func:`pool_distances` finds each row's nearest pool member with a blocked GEMM (never an N x |pool|
matrix at once) and recomputes the distance to it with the kernel's per-row arithmetic, so every
running minimum rests on a distance computed exactly as the picks' updates compute theirs.
"""

from __future__ import annotations

import numpy as np

from ._rowstore import RowStore, ranges

__all__ = ["pool_distances"]

_INIT_BYTES = 32 << 20  # bound on each block of the initial GEMM (data block and result block)
_POOL_BYTES = 256 << 20  # pool rows kept in memory at once for the initial distances


def pool_distances(
    rows: RowStore, pool: np.ndarray, cand: np.ndarray, nearest_pool_idx: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(mind, assign)``: squared distance of every physical row to its nearest pool member, and that member.

    ``assign`` holds positions into ``pool`` (-1 with an empty pool). A blocked GEMM finds the
    nearest member (never an N x |pool| matrix at once), unless ``nearest_pool_idx`` (absolute
    rows, in ``cand`` order) gives it; the distance to it is then recomputed with the same per-row
    arithmetic as the per-pick updates, so exact duplicates get bit-identical values wherever they sit.
    """
    n, d, itemsize = rows.n_phys, rows.d, rows.itemsize
    mind = np.full(n, np.inf, dtype=rows.dtype)
    p = len(pool)
    if p == 0:
        return mind, np.full(n, -1, dtype=np.int64)
    pool_mem = p * d * itemsize <= _POOL_BYTES
    bp = p if pool_mem else max(1, _POOL_BYTES // (d * itemsize))
    bp = min(bp, max(1, _INIT_BYTES // itemsize // max(1, min(n, 4096))))
    bi = max(1, _INIT_BYTES // (itemsize * bp))  # bounds the (bi, bp) result block
    if rows.X is None:  # gathered blocks: bound the data block too
        bi = min(bi, max(1, _INIT_BYTES // (d * itemsize)))
    P_all = rows.gather(pool) if pool_mem else None
    best = np.full(n, -1, dtype=np.int64)
    if nearest_pool_idx is not None:
        phys = np.searchsorted(rows.abs_idx, cand)  # the layout is still sorted at init
        best[:] = 0  # rows outside the candidates are dead; any member will do
        best[phys] = np.searchsorted(pool, np.asarray(nearest_pool_idx, dtype=np.int64))
    for pa in range(0, 0 if nearest_pool_idx is not None else p, bp):
        pb = min(p, pa + bp)
        P = P_all[pa:pb] if P_all is not None else rows.gather(pool[pa:pb])
        P, (psq, pinv, pu) = rows.centers(P)  # shifted: P - s, and the constant of each member
        for a in range(0, n, bi):
            b = min(n, a + bi)
            G = rows.rows(a, b) @ P.T
            if rows.cosine:
                G *= rows.inv[a:b, None]  # type: ignore[index]
                G *= pinv[None, :]
                G *= -2
                G += rows.u[a:b, None]  # type: ignore[index]
                G += pu[None, :]
            else:
                G *= -2
                G += rows.sqn[a:b, None]
                G += psq[None, :]
            j = np.argmin(G, axis=1)
            v = G[np.arange(b - a), j]
            better = v < mind[a:b]
            mind[a:b] = np.where(better, v, mind[a:b])
            best[a:b] = np.where(better, j + pa, best[a:b])
    if nearest_pool_idx is None:
        rows.after_blas()
    sub = max(1, (1 << 20) // (d * itemsize))  # gathered pool rows stay in cache

    def recompute(r: tuple[int, int]) -> None:
        X = rows.rows(*r)
        for a in range(r[0], r[1], sub):
            b = min(r[1], a + sub)
            Pg = P_all[best[a:b]] if P_all is not None else rows.gather(pool[best[a:b]])
            Wg, cf = rows.centers(Pg)
            dots = rows.row_dots(X[a - r[0] : b - r[0]], Wg)
            mind[a:b] = rows.d2_from_dots(dots, slice(a, b), cf)

    rows.map(recompute, ranges(0, n, max(rows.tile, sub)))
    return mind, best
