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

import numpy as np

__all__ = [
    "RowBlock",
    "plan_row_blocks",
    "read_block",
    "iter_blocks",
    "default_block_rows",
    "embedding_rows",
    "normalize_rows",
    "candidate_norms",
    "center_vector",
    "radius_from_sq",
    "numpy_pick_loop",
    "draw_first_pick",
]

#: Bytes of float32 embeddings per block (about 16 MiB): large enough for BLAS, small enough for cache-friendly
#: streaming of memory-mapped files.
_BLOCK_BYTES = 16 * 2**20


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
    """L2-normalise the rows of float32 ``x`` (zero rows stay zero); returns a new array."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64)).astype(np.float32)
    norms[norms == 0] = 1.0
    return x / norms[:, None]


def read_block(emb: np.ndarray, block: RowBlock) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one block: ``(X, local)``.

    ``X`` holds rows of Z (a view for slices, a copy for gathers, converted to float32 only if
    ``emb`` is not float32); the block's candidates are ``X[local]`` (all rows when ``local`` is None).
    """
    if block.rows is not None:
        x = np.asarray(emb[block.rows])
        local = None
    else:
        x = np.asarray(emb[block.row_start : block.row_end])
        local = block.local
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    return x, local


def iter_blocks(emb: np.ndarray, blocks: list[RowBlock]) -> Iterator[tuple[RowBlock, np.ndarray, np.ndarray | None]]:
    """Yield ``(block, X, local)`` for each block, see :func:`read_block`."""
    for b in blocks:
        x, local = read_block(emb, b)
        yield b, x, local


def candidate_norms(
    emb: np.ndarray, blocks: list[RowBlock], n_candidates: int, *, metric: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-candidate squared norms (of the normalised rows for cosine) and, for cosine, inverse norms.

    Returns
    -------
    sq_norms : ndarray of float32, shape (m,)
        ``||x||^2`` (euclidean) or ``||x / ||x|| ||^2`` (cosine: 1, or 0 for a zero row), in candidate order.
    inv_norms : ndarray of float32, shape (m,) or None
        ``1 / ||x||`` for cosine (1 for zero rows), None for euclidean.
    """
    sq = np.empty(n_candidates, dtype=np.float32)
    inv = np.empty(n_candidates, dtype=np.float32) if metric == "cosine" else None
    for b, x, local in iter_blocks(emb, blocks):
        xs = x if local is None else x[local]
        nrm2 = np.einsum("ij,ij->i", xs, xs)
        if inv is None:
            sq[b.pos_start : b.pos_end] = nrm2
        else:
            nrm = np.sqrt(nrm2)
            safe = np.where(nrm == 0, np.float32(1), nrm)
            inv[b.pos_start : b.pos_end] = 1.0 / safe
            xhat = xs * (1.0 / safe)[:, None]
            sq[b.pos_start : b.pos_end] = np.einsum("ij,ij->i", xhat, xhat)
    return sq, inv


def radius_from_sq(sq: float, metric: str) -> float:
    """Convert a squared Euclidean distance (on normalised rows for cosine) to the reported radius."""
    sq = max(float(sq), 0.0)
    return sq / 2.0 if metric == "cosine" else float(np.sqrt(sq))


def center_vector(emb: np.ndarray, row: int, *, metric: str) -> np.ndarray:
    """Row ``row`` of Z as float32 (d,), L2-normalised for cosine."""
    return embedding_rows(emb, np.array([row], dtype=np.int64), normalize=metric == "cosine")[0]


def numpy_pick_loop(
    emb: np.ndarray,
    candidate_idx: np.ndarray,
    blocks: list[RowBlock],
    mind: np.ndarray,
    k: int,
    *,
    metric: str,
    first_pick: int | None,
    sq_norms: np.ndarray,
    inv_norms: np.ndarray | None,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy farthest-first picks from a running squared min-distance vector, one GEMV per block per pick.

    Parameters
    ----------
    emb : ndarray or np.memmap of shape (N, d)
    candidate_idx : ndarray of int64, shape (m,)
        Sorted absolute row indices into Z.
    blocks : list of RowBlock
        Plan from :func:`plan_row_blocks` over ``candidate_idx``.
    mind : ndarray of float32, shape (m,)
        Squared distance of each candidate to its nearest center so far (+inf when none); updated in place.
    k : int
        Number of picks.
    first_pick : int or None
        Absolute row index forced as the first pick (radius +inf), used when the pool is empty.

    Returns
    -------
    picks : ndarray of int64, shape (k,)
        Absolute row indices into Z in pick order.
    radii : ndarray of float64, shape (k,)
        Distance of each pick to its nearest earlier center at the time of the pick.
    """
    from .._progress import progress_bar

    picks = np.empty(k, dtype=np.int64)
    radii = np.empty(k, dtype=np.float64)
    scratch = np.empty(max((b.n for b in blocks), default=0), dtype=np.float32)
    for j in progress_bar(range(k), disable=None if progress is None else not progress, desc="k-center picks"):
        if j == 0 and first_pick is not None:
            pos = int(np.searchsorted(candidate_idx, first_pick))
            radii[j] = np.inf
        else:
            pos = int(np.argmax(mind))
            radii[j] = radius_from_sq(mind[pos], metric)
        picks[j] = candidate_idx[pos]
        mind[pos] = -1.0
        if j == k - 1:
            break
        c = center_vector(emb, int(picks[j]), metric=metric)
        c_sq = np.float32(np.dot(c, c))
        for b, x, local in iter_blocks(emb, blocks):
            dots = x @ c
            if local is not None:
                dots = dots[local]
            out = scratch[: b.n]
            if inv_norms is not None:
                np.multiply(dots, inv_norms[b.pos_start : b.pos_end], out=out)
            else:
                out[:] = dots
            out *= np.float32(-2.0)
            out += sq_norms[b.pos_start : b.pos_end]
            out += c_sq
            np.maximum(out, np.float32(0.0), out=out)
            seg = mind[b.pos_start : b.pos_end]
            np.minimum(seg, out, out=seg)  # picked centers hold -1 and stay below every distance
    return picks, radii


def draw_first_pick(rng: np.random.Generator, candidate_idx: np.ndarray) -> int:
    """First center for an empty pool, by the rule of :func:`diverseevol.kcenter_select` so all kernels agree.

    Parameters
    ----------
    rng : numpy Generator
    candidate_idx : ndarray of int64, shape (m,)
        Sorted absolute row indices into Z.
    """
    try:
        from .kcenter import draw_first_pick as rule  # type: ignore[attr-defined]
    except ImportError:
        return int(candidate_idx[int(rng.integers(len(candidate_idx)))])
    return int(rule(rng, candidate_idx))
