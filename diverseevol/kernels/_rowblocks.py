"""Row-block plans over the candidates of Z, shared by the faiss, torch and approximate kernels.

A K-Center pick touches every candidate's embedding once. Candidates are usually Z minus a small
pool, so most of them sit in long contiguous runs of rows: reading ``emb[a:b]`` (a view, also for
``np.memmap``) and dropping the few pool rows from the result is far cheaper than a fancy-index
gather of the candidate rows on every pick. Where candidates are sparse (less than half of a row
range) the block is gathered instead. Every block is at most ``block_rows`` rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "RowBlock",
    "center_vector",
    "d2_from_dots",
    "default_block_rows",
    "draw_first_pick",
    "embedding_rows",
    "factors",
    "iter_blocks",
    "normalize_rows",
    "plan_row_blocks",
    "radius_from_sq",
    "read_block",
    "pair_products",
    "row_products",
    "sq_norms",
    "uses_vecdot",
    "unit_rows",
    "work_dtype",
]

#: Bytes of float32 embeddings per block (about 16 MiB): large enough for BLAS, small enough for cache-friendly
#: streaming of memory-mapped files.
_BLOCK_BYTES = 16 * 2**20
#: Elements of the zeros the clamp at 0 is taken against (see :func:`clamp_at_zero`).
_ZEROS_ELEMS = 1 << 20
_zeros: dict[np.dtype, np.ndarray] = {}


@dataclass(frozen=True)
class RowBlock:
    """One block of candidates.

    Attributes
    ----------
    pos_start, pos_end : int
        The block covers ``candidate_idx[pos_start:pos_end]`` (positions in the candidate list).
    row_start, row_end : int
        Row range of Z read as a slice, when ``rows`` is None.
    local : ndarray of int64 or None
        Offsets of the candidates inside ``emb[row_start:row_end]``; None when every row of the
        slice is a candidate.
    rows : ndarray of int64 or None
        Absolute row indices into Z to gather, for sparse blocks (then the slice fields are unused).
    """

    pos_start: int
    pos_end: int
    row_start: int
    row_end: int
    local: np.ndarray | None
    rows: np.ndarray | None

    @property
    def n(self) -> int:
        """Number of candidates in the block."""
        return self.pos_end - self.pos_start


def default_block_rows(d: int) -> int:
    """Rows per block so that one float32 block is about 16 MiB (at least 256 rows)."""
    return max(256, _BLOCK_BYTES // (4 * max(int(d), 1)))


def plan_row_blocks(candidate_idx: np.ndarray, block_rows: int) -> list[RowBlock]:
    """Split sorted candidates into blocks read as slices (dense) or gathers (sparse).

    Parameters
    ----------
    candidate_idx : ndarray of int64, shape (m,)
        Sorted absolute row indices into Z.
    block_rows : int
        Maximum number of rows of Z read per block.

    Returns
    -------
    list of RowBlock
        Blocks in candidate order; their ``pos`` ranges tile ``[0, m)``.
    """
    blocks: list[RowBlock] = []
    m = len(candidate_idx)
    pos = 0
    while pos < m:
        r0 = int(candidate_idx[pos])
        r1 = r0 + block_rows
        end = int(np.searchsorted(candidate_idx, r1, side="left"))
        last = int(candidate_idx[end - 1])
        n_in = end - pos
        span = last + 1 - r0
        if n_in == span:
            blocks.append(RowBlock(pos, end, r0, last + 1, None, None))
        elif 2 * n_in >= span:
            local = candidate_idx[pos:end] - r0
            blocks.append(RowBlock(pos, end, r0, last + 1, local.astype(np.int64), None))
        else:
            end = min(m, pos + block_rows)
            rows = candidate_idx[pos:end].astype(np.int64)
            blocks.append(RowBlock(pos, end, int(rows[0]), int(rows[-1]) + 1, None, rows))
        pos = end
    return blocks


def embedding_rows(emb: np.ndarray, rows: np.ndarray, *, normalize: bool) -> np.ndarray:
    """Return ``emb[rows]`` as C-contiguous float32, L2-normalised per row when ``normalize``.

    Parameters
    ----------
    emb : ndarray or np.memmap of shape (N, d)
    rows : ndarray of int64, shape (m,)
        Absolute row indices into Z, any order.
    """
    out = np.ascontiguousarray(np.asarray(emb[rows]), dtype=np.float32)
    if normalize:
        out = normalize_rows(out)
    return out


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length (zero rows stay zero), as a new array; see :func:`unit_rows`."""
    return unit_rows(np.array(x, copy=True))


def work_dtype(emb: np.ndarray) -> np.dtype:
    """Arithmetic dtype of the numpy kernels: float64 for float64 input, float32 otherwise (as the reference)."""
    return np.dtype(np.float64) if emb.dtype == np.float64 else np.dtype(np.float32)


def read_block(
    emb: np.ndarray, block: RowBlock, dtype: np.dtype | type = np.float32
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one block: ``(X, local)``.

    ``X`` holds rows of Z (a view for slices, a copy for gathers, converted only if ``emb`` is not
    of ``dtype``); the block's candidates are ``X[local]`` (all rows when ``local`` is None).
    """
    if block.rows is not None:
        x = np.asarray(emb[block.rows])
        local = None
    else:
        x = np.asarray(emb[block.row_start : block.row_end])
        local = block.local
    if x.dtype != dtype:
        x = x.astype(dtype)
    return x, local


def iter_blocks(
    emb: np.ndarray, blocks: list[RowBlock], dtype: np.dtype | type = np.float32
) -> Iterator[tuple[RowBlock, np.ndarray, np.ndarray | None]]:
    """Yield ``(block, X, local)`` for each block, see :func:`read_block`."""
    for b in blocks:
        x, local = read_block(emb, b, dtype)
        yield b, x, local


# The per-row arithmetic below is shared with the numpy reference kernel (diverseevol.kernels._numpy):
# products whose per-row result does not depend on the rows around it (row_products), and one order of
# scaling and additions, so backends that use it agree with "numpy" bit for bit.

#: Longest rows whose products go through ``np.vecdot`` (one BLAS dot per row): OpenBLAS splits dots of more
#: than 10,000 elements over its threads, which would make a row's bits depend on the thread count.
VECDOT_MAX_D = 8192
#: Shortest rows for ``np.vecdot``: below, its per-row call costs more than einsum's loop (one thread, 2026-12-07:
#: 16 columns 8.3 vs 3.1 ms per 250,000 rows, blocks against 32 centers 4x slower; 128 columns 1.26x and 1.9x faster).
VECDOT_MIN_D = 128
_vecdot_ok: bool | None = None


def _probe_vecdot() -> bool:
    """Whether ``np.vecdot`` gives each row bits that depend on its data only, in this numpy and BLAS.

    numpy >= 2.0 computes each row's product with one BLAS dot; a BLAS whose dot depends on the data's
    alignment (some builds of MKL without its reproducibility mode) would break the kernels' promise
    that pruned, gathered and full passes agree bit for bit. Probed once per process on rows at every
    alignment, alone, in blocks and against several centers; einsum is used where any check fails.
    """
    if not hasattr(np, "vecdot"):
        return False
    rng = np.random.default_rng(12345)
    for dtype in (np.float32, np.float64):
        for d in (9, 67, 129, 1031):
            x = rng.standard_normal((37, d)).astype(dtype)
            c = rng.standard_normal(d).astype(dtype)
            ref = np.vecdot(x, c)
            for shift in range(1, 4):  # rows starting at other offsets from an aligned address
                buf = np.empty(x.size + shift, dtype=dtype)
                moved = buf[shift:].reshape(x.shape)
                moved[:] = x
                if not np.array_equal(np.vecdot(moved, c), ref):
                    return False
            if not all(np.array_equal(np.vecdot(x[i : i + 1], c)[0], ref[i]) for i in (0, 5, 36)):
                return False
            pairs = np.vecdot(x[:, None, :], np.stack([c, x[3]])[None, :, :])
            if not (np.array_equal(pairs[:, 0], ref) and np.array_equal(pairs[:, 1], np.vecdot(x, x[3]))):
                return False
    return True


def uses_vecdot(d: int) -> bool:
    """Whether rows of ``d`` columns take their products from ``np.vecdot`` (else ``np.einsum``) in this process."""
    global _vecdot_ok
    if not VECDOT_MIN_D <= d <= VECDOT_MAX_D:
        return False
    if _vecdot_ok is None:
        _vecdot_ok = _probe_vecdot()
    return _vecdot_ok


def _unit_stride(a: np.ndarray) -> np.ndarray:
    # strided rows take another code path (other bits) in BLAS dots and in einsum's loop alike
    return a if a.strides[-1] == a.itemsize else np.ascontiguousarray(a)


def row_products(x: np.ndarray, c: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``x @ c`` row by row, each row's result depending on its data only (never on its neighbours).

    Parameters
    ----------
    x : ndarray of shape (n, d)
    c : ndarray of shape (d,) or (n, d)
        One vector for every row, or one per row.
    out : ndarray of shape (n,), optional

    Notes
    -----
    One BLAS dot per row (``np.vecdot``; 1.2-1.4x the speed of einsum's loop on 128-4,096 columns) on
    128-8,192 columns where :func:`uses_vecdot` says it is row-local, else ``np.einsum``. Within a process the rule depends on ``d``
    only, so every path of a run (full, pruned, gathered, lazy, blocked) gets the same bits.
    """
    x, c = _unit_stride(x), _unit_stride(c)
    if uses_vecdot(x.shape[-1]):
        return np.vecdot(x, c, out=out)
    return np.einsum("ij,ij->i" if c.ndim == 2 else "ij,j->i", x, c, out=out)


def pair_products(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Products of every row of ``x`` (n, d) with every row of ``w`` (m, d): (n, m), entry ``[i, k]`` bit for
    bit ``row_products(x, w[k])[i]``."""
    x, w = _unit_stride(x), _unit_stride(w)
    if uses_vecdot(x.shape[-1]):
        return np.vecdot(x[:, None, :], w[None, :, :])
    return np.einsum("ij,kj->ik", x, w)


def sq_norms(x: np.ndarray) -> np.ndarray:
    """Squared L2 norm of each row of ``x``, by the rule of :func:`row_products` (so ``x.x`` equals it)."""
    return row_products(x, x)


def factors(sq: Any, dtype: np.dtype, *, cosine: bool) -> tuple[Any, Any, Any]:
    """``(|x|^2, 1/|x|, |x|^2/|x|/|x|)`` for rows (arrays) or one row (scalars); the last two are None for euclidean.

    Cosine distances are computed from raw rows as ``u_x + u_c - 2 (x.c / |x|) / |c|``, with ``u``
    made by the same operations, so a row and its exact duplicate are at distance exactly 0.
    Zero rows get ``inv = u = 0``.
    """
    if not cosine:
        return sq, None, None
    one = dtype.type(1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = one / np.sqrt(sq)
        u = sq * inv * inv
    if np.ndim(sq):
        dead = sq == 0
        inv[dead] = 0
        u[dead] = 0
    return sq, inv, u


def center_vector(
    emb: np.ndarray, row: int, *, metric: str, dtype: np.dtype
) -> tuple[np.ndarray, tuple[Any, Any, Any]]:
    """Row ``row`` of Z in ``dtype`` (raw, also for cosine) and its factors."""
    v = np.asarray(emb[row], dtype=dtype).copy()
    return v, factors(sq_norms(v[None, :])[0], dtype, cosine=metric == "cosine")


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Scale the rows of ``x`` to unit length in place (zero rows stay zero)."""
    with np.errstate(divide="ignore"):
        inv = x.dtype.type(1.0) / np.sqrt(sq_norms(x))
    inv[~np.isfinite(inv)] = 0
    x *= inv[:, None]
    return x


def d2_from_dots(dots: np.ndarray, rows: tuple[Any, Any, Any], center: tuple[Any, Any, Any]) -> np.ndarray:
    """Clamped squared distances from raw dot products, in place.

    ``rows`` and ``center`` are :func:`factors` of the rows and of the center(s) (scalars or aligned
    arrays). For cosine the result is the squared distance of the unit rows, ``2 - 2 cos``.
    """
    sqn, inv, u = rows
    csq, cinv, cu = center
    if inv is not None:
        dots *= inv
        dots *= cinv
        dots *= -2
        dots += u
        dots += cu
    else:
        dots *= -2
        dots += sqn
        dots += csq
    clamp_at_zero(dots)
    return dots


def clamp_at_zero(a: np.ndarray) -> None:
    """``np.maximum(a, 0, out=a)``, bit for bit, about 5x faster on a contiguous 1-D array.

    numpy (2.x) runs its SIMD ``maximum`` loop for two arrays but a scalar loop for an array against
    the scalar 0 (0.29 vs 0.05 ms per million float32); the same ufunc against an array of zeros gives
    the same values, signs of zero and NaNs included. The zeros are one read-only ``calloc`` block
    per dtype (untouched pages: they all map the kernel's zero page, so reading them stays in cache).
    """
    if a.ndim != 1 or not a.flags.c_contiguous or a.dtype.kind != "f":
        np.maximum(a, 0, out=a)
        return
    z = _zeros.get(a.dtype)
    if z is None:
        z = np.zeros(_ZEROS_ELEMS, dtype=a.dtype)
        z.flags.writeable = False
        _zeros[a.dtype] = z  # a race only builds it twice
    n = len(a)
    if n <= _ZEROS_ELEMS:
        np.maximum(a, z[:n], out=a)
        return
    for s in range(0, n, _ZEROS_ELEMS):
        e = min(n, s + _ZEROS_ELEMS)
        np.maximum(a[s:e], z[: e - s], out=a[s:e])


def radius_from_sq(sq: float, metric: str) -> float:
    """Convert a squared Euclidean distance (on normalised rows for cosine) to the reported radius."""
    sq = max(float(sq), 0.0)
    return sq / 2.0 if metric == "cosine" else float(np.sqrt(sq))


def draw_first_pick(rng: np.random.Generator, candidate_idx: np.ndarray) -> int:
    """First center for an empty pool, by the rule of :func:`diverseevol.kcenter_select` (uniform draw).

    Parameters
    ----------
    rng : numpy Generator
    candidate_idx : ndarray of int64, shape (m,)
        Sorted absolute row indices into Z.
    """
    return int(candidate_idx[int(rng.integers(len(candidate_idx)))])
