"""BLAS-filtered passes of the numpy K-Center kernel: BLAS finds the rows a center may lower, the row rule computes them.

The kernel's per-row products (:func:`~._rowblocks.row_products`: one dot per row) give every row bits
that depend on its data only, but they cost a call per row: at 128 columns a pass of them is 1.1-2x a
BLAS GEMV (whose bits depend on where a row falls in the call, so it cannot produce the distances).
A filtered pass takes the product of every row with the center from BLAS (GEMV for one center, GEMM
for a block of pending centers) only to *rule rows out*: a row is skipped when its BLAS distance
exceeds its running minimum by more than a rigorous bound on how far two computations of the same
distance, in any summation order, can differ. The few rows left (those the center lowers, and the
near ties) are computed by the row rule, so every distance that enters the running minimum has the
bits of a full pass: the picks and radii are unchanged.

The test is taken on the dot products, without forming the BLAS distances: row ``i`` may be lowered by
a center only if ``x_i . w >= (|x_i|^2 - m_i) / 2 + (c_w - M) / 2``, with ``m_i`` the running minimum, ``c_w``
the center's constant (``|c|^2``, or ``2 c.w - |w|^2`` when shifted) and ``M`` the margin below.
"""

from __future__ import annotations

import numpy as np

from ._pruning import distance_error_bound
from ._rowstore import RowStore

__all__ = ["FILTER_ROWS", "filter_margin", "filtered_block_pairs", "filtered_rows", "threshold_shifts"]

#: Rows per BLAS call of a filtered pass: the products and thresholds of a chunk (2 x 256 KiB in float32) stay in cache.
FILTER_ROWS = 1 << 16


def filter_margin(rows: RowStore) -> float:
    """``M``: four times the kernel's bound on the rounding error of a computed squared distance.

    A skipped row's BLAS distance exceeds its minimum by more than ``M`` minus the rounding of the test
    itself (``(d + 6) eps`` of the largest squared norm, twice); its row-rule distance differs from the
    exact one by at most ``E`` (``(2 d + 16) eps`` of twice that norm), so it lies strictly above the minimum
    and could not have changed it (nor tied it). Centers are candidate rows, so the rows' own norms bound theirs.
    """
    return 4.0 * distance_error_bound(rows, 0.0)


def threshold_shifts(c_w: np.ndarray | float, margin: float) -> np.ndarray:
    """``(c_w - M) / 2``, in float64, for center constants ``c_w`` (one or an array) and margin ``M`` (the module docstring)."""
    return (np.asarray(c_w, dtype=np.float64) - margin) * 0.5


def _half_gaps(rows: RowStore, mind: np.ndarray, sel: slice | np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``(|x|^2 - m) / 2`` for physical rows ``sel`` (a slice or positions), into ``out`` when given."""
    h = np.subtract(rows.sqn[sel], mind[sel], out=out)
    h *= 0.5
    return h


def filtered_rows(rows: RowStore, mind: np.ndarray, a: int, b: int, w: np.ndarray, shift: float) -> np.ndarray:
    """Physical positions in ``[a, b)`` that center vector ``w`` may lower (sorted); every other row it cannot.

    Parameters
    ----------
    rows : RowStore
        In-memory rows (``rows.X`` set), norms computed, euclidean.
    mind : ndarray, shape (n_phys,)
        Running minimum of every physical row (-1 for dead rows, ``inf`` before any center).
    a, b : int
        Physical row range.
    w : ndarray, shape (d,)
        The center's vector as the row rule takes products with it.
    shift : float
        ``(c_w - M) / 2`` for this center (:func:`threshold_shifts`).

    Returns
    -------
    ndarray of int64
        Physical positions (dead rows may be among them: lowering them changes nothing).
    """
    out: list[np.ndarray] = []
    X = rows.X
    assert X is not None
    for s in range(a, b, FILTER_ROWS):
        e = min(b, s + FILTER_ROWS)
        g = np.matmul(X[s:e], w, out=rows.scratch(e - s, 2))
        g -= rows.dtype.type(shift)
        hit = np.flatnonzero(g >= _half_gaps(rows, mind, slice(s, e), out=rows.scratch(e - s, 3)))
        if hit.size:
            out.append(hit + s)
    if not out:
        return np.empty(0, dtype=np.int64)
    return out[0] if len(out) == 1 else np.concatenate(out)


def filtered_block_pairs(rows: RowStore, mind: np.ndarray, sel: np.ndarray, X: np.ndarray, W: np.ndarray,
                         shifts: np.ndarray, held: np.ndarray | None = None) -> np.ndarray:
    """Which of centers ``W`` (m, d) may lower which of rows ``sel``: a (rows, m) mask.

    ``sel`` holds physical positions, ``X`` their data, ``shifts`` (m,) :func:`threshold_shifts` of the centers, and
    ``held`` (rows,), optional, how many of the first centers each row's minimum already includes (those
    pairs are left out: the row's own nearest center would otherwise tie). One BLAS GEMM.
    """
    G = X @ W.T
    G -= shifts.astype(G.dtype)[None, :]
    pairs = G >= _half_gaps(rows, mind, sel)[:, None]
    if held is not None and held.max(initial=0) > 0:
        pairs &= np.arange(W.shape[0])[None, :] >= held[:, None]
    return pairs
