"""Input checks of the public K-Center entry points, done once before any backend runs.

:func:`check_problem` turns the user's embeddings (an array, a memmap or a ``.npy`` path), index
sets, ``k`` and ``random_state`` into a :class:`Problem`; :func:`check_used_rows` then reads the rows
that take part once, blockwise, and refuses NaN/Inf, overflowing and (for cosine) all-zero rows.
Backends receive these checked values and never check them again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._files import load_npy
from .._validation import (
    RandomState,
    check_disjoint,
    check_embeddings,
    check_index_array,
    check_k,
    check_random_state,
    complement_indices,
)
from ..errors import NonFiniteEmbeddingError, ValidationError
from ._rowblocks import sq_norms, work_dtype

__all__ = [
    "Problem",
    "check_problem",
    "check_shard",
    "check_used_rows",
    "empty_result",
    "given_index_sets",
    "index_sets",
    "open_embeddings",
]

_CHECK_BLOCK_BYTES = 32 << 20


@dataclass(frozen=True)
class Problem:
    """A checked K-Center problem.

    Attributes
    ----------
    emb : ndarray or np.memmap of shape (N, d)
        Floating embeddings of Z (a ``.npy`` path memory-mapped).
    pool : ndarray of int64, shape (p,)
        Sorted absolute row indices into Z of the training pool.
    cand : ndarray of int64, shape (m,)
        Sorted absolute row indices into Z that may be picked, disjoint from ``pool``.
    k : int
        Number of picks, ``0 <= k <= m``.
    rng : numpy Generator
        From ``random_state``; draws the first center when the pool is empty.
    """

    emb: np.ndarray
    pool: np.ndarray
    cand: np.ndarray
    k: int
    rng: np.random.Generator


def check_problem(emb: Any, pool_idx: Any, k: Any, candidate_idx: Any, random_state: RandomState) -> Problem:
    """Check the arguments every K-Center entry point shares; see :class:`Problem`."""
    emb = open_embeddings(emb)
    pool, cand = index_sets(emb.shape[0], pool_idx, candidate_idx)
    k = check_k(k, len(cand))
    return Problem(emb, pool, cand, k, check_random_state(random_state))


def empty_result(return_radii: bool) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The answer for ``k = 0``: no picks (and no radii)."""
    empty = np.empty(0, dtype=np.int64)
    return (empty, np.empty(0, dtype=np.float64)) if return_radii else empty


def _contains(sorted_idx: np.ndarray, row: int) -> bool:
    i = int(np.searchsorted(sorted_idx, row))
    return i < len(sorted_idx) and int(sorted_idx[i]) == row


def index_sets(n: int, pool_idx: Any, candidate_idx: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated, sorted int64 ``(pool, candidates)``: absolute row indices into Z of ``n`` rows.

    ``candidate_idx=None`` means every row not in the pool; given candidates must be disjoint from it.
    """
    pool, cand = given_index_sets(n, pool_idx, candidate_idx)
    return pool, complement_indices(n, pool) if cand is None else cand


def given_index_sets(n: int, pool_idx: Any, candidate_idx: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """As :func:`index_sets`, but the candidates stay None when not given (no (N,) complement is built).

    Returns
    -------
    pool : ndarray of int64, shape (p,)
        Sorted absolute row indices into Z.
    candidates : ndarray of int64, shape (m,), or None
        Sorted absolute row indices into Z, disjoint from ``pool``; None when ``candidate_idx`` is None.
    """
    pool = np.sort(check_index_array(pool_idx, n, name="pool_idx"))
    if candidate_idx is None:
        return pool, None
    cand = np.sort(check_index_array(candidate_idx, n, name="candidate_idx"))
    check_disjoint(pool, cand)
    return pool, cand


def check_shard(local_emb: Any, local_idx: Any) -> tuple[np.ndarray, np.ndarray]:
    """One rank's rows of Z and their absolute row indices, checked (the sharded entry point's shard).

    Parameters
    ----------
    local_emb : array-like of shape (n_local, d)
        This rank's rows of Z (a memmap is never loaded whole).
    local_idx : array-like of int, shape (n_local,)
        Absolute row indices into Z of ``local_emb``'s rows, distinct.

    Returns
    -------
    emb : ndarray or np.memmap of shape (n_local, d)
    lidx : ndarray of int64, shape (n_local,)

    Raises
    ------
    ValidationError
        ``local_emb`` is not a 2-D real array, or the two lengths differ.
    IndexValidationError
        ``local_idx`` is not a 1-D array of distinct non-negative integers.
    """
    emb = check_embeddings(local_emb, name="local_emb")
    lidx = check_index_array(local_idx, np.iinfo(np.int64).max, name="local_idx")
    if len(lidx) != emb.shape[0]:
        raise ValidationError(
            f"local_idx must give one absolute row index per row of local_emb; got {len(lidx)} indices "
            f"for {emb.shape[0]} rows."
        )
    return emb, lidx


def open_embeddings(emb: Any) -> np.ndarray:
    """Return ``emb`` as a validated 2-D float array; paths to ``.npy`` files are memory-mapped."""
    if isinstance(emb, (str, os.PathLike)):
        path = Path(emb)
        if not path.is_file():
            raise ValidationError(
                f"emb must be an array or the path of a .npy file; {str(path)!r} does not exist or is not a file."
            )
        try:
            emb = load_npy(path, mmap=True, error=ValidationError)
        except ValidationError as exc:
            raise ValidationError(
                f"emb path {str(path)!r} could not be opened as a .npy array: {exc} Save embeddings with "
                f"np.save(path, emb) (a 2-D float array)."
            ) from None
        if not isinstance(emb, np.ndarray):
            raise ValidationError(f"emb path {str(path)!r} holds {type(emb).__name__}, not one .npy array.")
    return check_embeddings(emb, name="emb")


def _sorted_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.union1d(a, b)`` of two sorted index arrays: a stable sort merges the two runs in O(n)
    (np.union1d's hashing took 0.25 s on 200,000 rows)."""
    u = np.sort(np.concatenate([a, b]), kind="stable")
    if len(u) > 1:
        keep = np.empty(len(u), dtype=bool)
        keep[0] = True
        np.not_equal(u[1:], u[:-1], out=keep[1:])
        if not keep.all():
            u = u[keep]
    return u


def check_used_rows(emb: np.ndarray, pool: np.ndarray, cand: np.ndarray, *, cosine: bool) -> None:
    """Raise if a used row holds NaN/Inf, overflows when squared, or is all-zero under cosine.

    One blockwise pass of squared row norms over the used rows (a range read when the used rows are
    dense in ``emb``, a gather otherwise), so memmaps are never loaded whole.
    """
    used = _sorted_union(pool, cand) if len(pool) else cand
    lo, hi = int(used[0]), int(used[-1]) + 1
    step = max(1, _CHECK_BLOCK_BYTES // (emb.shape[1] * emb.itemsize))
    work = work_dtype(emb)
    dense = len(used) * 2 >= hi - lo
    starts = range(lo, hi, step) if dense else range(0, len(used), step)
    for s in starts:
        if dense:
            e = min(s + step, hi)
            rows = np.arange(s, e)
            block = emb[s:e]
        else:
            rows = used[s : s + step]
            block = emb[rows]
        block = np.asarray(block, dtype=work)
        with np.errstate(over="ignore", invalid="ignore"):
            sq = sq_norms(block)
        bad = ~np.isfinite(sq) | (sq == 0 if cosine else False)
        if bad.any():
            sel = np.flatnonzero(bad)
            if dense:
                in_use = np.isin(rows[sel], used, assume_unique=True)
                sel = sel[in_use]
                if sel.size == 0:
                    continue
            i = int(sel[0])
            row = int(rows[i])
            if not np.isfinite(block[i]).all():
                raise NonFiniteEmbeddingError(
                    f"emb must be finite in the rows used for selection; row {row} contains NaN or Inf. "
                    f"Check the embedder (e.g. fp16 overflow) or drop that record from candidate_idx."
                )
            if not np.isfinite(sq[i]):
                raise NonFiniteEmbeddingError(
                    f"emb row {row} is too large: its squared norm overflows {np.dtype(work).name}. "
                    f"Rescale the embeddings (e.g. divide by their largest absolute value) or pass float64."
                )
            where = "pool" if len(pool) and _contains(pool, row) else "candidate"
            raise ValidationError(
                f"metric='cosine' needs rows with a non-zero norm; {where} row {row} is all zeros. Drop it "
                f"from {where}_idx or use metric='euclidean'."
            )
