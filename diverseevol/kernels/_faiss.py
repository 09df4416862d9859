"""K-Center backend on FAISS: exact nearest-pool-member search for the initial distances (CPU or GPU).

The initial step (distance of every candidate to its nearest member of a possibly large training
pool) is a k=1 nearest-neighbour search, which FAISS does with blocked BLAS on CPU or on GPUs
(``faiss-gpu``). The per-pick updates are one matrix-vector product per block in numpy, streamed
over the candidates (also for ``np.memmap`` input), exactly as in the numpy reference.

faiss is imported inside :func:`farthest_first`; this module loads with numpy alone.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .._optional import require
from ..errors import BackendUnavailableError, ValidationError
from ._rowblocks import (
    RowBlock,
    candidate_norms,
    d2_from_dots,
    default_block_rows,
    embedding_rows,
    factors,
    iter_blocks,
    numpy_pick_loop,
    plan_row_blocks,
    sq_norms,
    unit_rows,
    work_dtype,
)

__all__ = ["faiss_gpu_count", "farthest_first"]

logger = logging.getLogger(__name__)

#: Bytes of pool vectors held in one FAISS flat index at a time (larger pools are searched in chunks).
_POOL_CHUNK_BYTES = 256 * 2**20


def faiss_gpu_count() -> int:
    """Number of GPUs FAISS can use (0 for faiss-cpu or without a GPU); imports faiss."""
    faiss = require("faiss", feature="backend='faiss'", extra="faiss")
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def _use_gpu(faiss: Any, device: str | None) -> bool:
    n_gpu = int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    if device in (None, "auto"):
        return n_gpu > 0
    if device == "cpu":
        return False
    if device in ("gpu", "cuda"):
        if n_gpu == 0:
            raise BackendUnavailableError(
                f"backend='faiss' with device={device!r} needs faiss built with GPU support and a visible GPU; "
                f"the installed faiss {getattr(faiss, '__version__', '?')} reports 0 GPUs. Install faiss-gpu on a "
                f"CUDA machine, or use device='cpu' (or device=None to choose automatically)."
            )
        return True
    raise ValidationError(f"device for backend='faiss' must be None, 'cpu' or 'gpu'; got {device!r}.")


def initial_min_sq_distances(
    emb: np.ndarray,
    pool_idx: np.ndarray,
    candidate_idx: np.ndarray,
    blocks: list[RowBlock],
    *,
    metric: str,
    row_factors: tuple[Any, Any, Any],
    dtype: np.dtype,
    device: str | None = None,
) -> np.ndarray:
    """Squared distance of every candidate to its nearest pool member: FAISS finds the member, numpy the distance.

    FAISS runs an exact k=1 search (blocked BLAS, or a GPU) over float32 pool vectors to find each
    candidate's nearest pool member; the distance to that member is then recomputed with the
    reference kernel's arithmetic, so the result matches ``backend="numpy"`` bit for bit unless two
    pool members are equally near up to float32 rounding.

    Parameters
    ----------
    emb : ndarray or np.memmap of shape (N, d)
    pool_idx : ndarray of int64, shape (p,)
        Absolute row indices into Z of the training pool (p >= 1).
    candidate_idx : ndarray of int64, shape (m,)
        Sorted absolute row indices into Z.
    blocks : list of RowBlock
        Plan over ``candidate_idx``.
    metric : {"euclidean", "cosine"}
    row_factors : tuple of ndarray of shape (m,)
        Candidate factors from :func:`~diverseevol.kernels._rowblocks.candidate_norms`.
    dtype : numpy dtype
        Work dtype of the returned distances.
    device : {None, "cpu", "gpu"}
        None uses a GPU when FAISS has one.

    Returns
    -------
    ndarray of ``dtype``, shape (m,)
        Clamped at 0, in candidate order.
    """
    faiss = require("faiss", feature="backend='faiss'", extra="faiss")
    gpu = _use_gpu(faiss, device)
    d = emb.shape[1]
    normalize = metric == "cosine"
    m = len(candidate_idx)
    best_d = np.full(m, np.inf, dtype=np.float32)
    best_row = np.zeros(m, dtype=np.int64)
    chunk = max(1, _POOL_CHUNK_BYTES // (4 * d))
    res = faiss.StandardGpuResources() if gpu else None
    for start in range(0, len(pool_idx), chunk):
        rows = pool_idx[start : start + chunk]
        index: Any = faiss.IndexFlatL2(d)
        index.add(embedding_rows(emb, rows, normalize=normalize))
        if gpu:
            index = faiss.index_cpu_to_gpu(res, 0, index)
        for b, x, local in iter_blocks(emb, blocks, np.float32):
            q = np.ascontiguousarray(x if local is None else x[local])
            if normalize:
                q = unit_rows(q if q is not x else q.copy())
            dist, lab = index.search(q, 1)
            s, e = b.pos_start, b.pos_end
            better = dist[:, 0] < best_d[s:e]
            best_d[s:e] = np.where(better, dist[:, 0], best_d[s:e])
            best_row[s:e] = np.where(better, rows[np.maximum(lab[:, 0], 0)], best_row[s:e])
        del index
    mind = np.empty(m, dtype=dtype)
    for b, x, local in iter_blocks(emb, blocks, dtype):
        s, e = b.pos_start, b.pos_end
        xs = x if local is None else x[local]
        pg = np.asarray(emb[best_row[s:e]], dtype=dtype)
        dots = np.einsum("ij,ij->i", xs, pg)
        rf = tuple(None if a is None else a[s:e] for a in row_factors)
        mind[s:e] = d2_from_dots(dots, rf, factors(sq_norms(pg), dtype, cosine=normalize))
    logger.debug("faiss initial distances: %d candidates x %d pool rows (gpu=%s)", m, len(pool_idx), gpu)
    return mind


def farthest_first(
    emb: np.ndarray,
    pool_idx: np.ndarray,
    candidate_idx: np.ndarray,
    k: int,
    *,
    metric: str,
    first_pick: int | None,
    device: str | None = None,
    block_rows: int | None = None,
    progress: bool | None = None,
    **_unused: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact greedy K-Center with FAISS initial distances; see :mod:`diverseevol.kernels.kcenter`.

    Parameters
    ----------
    emb : ndarray or np.memmap of shape (N, d)
        Validated embeddings of Z.
    pool_idx : ndarray of int64, shape (p,)
        Sorted absolute row indices into Z of the training pool (may be empty).
    candidate_idx : ndarray of int64, shape (m,)
        Sorted absolute row indices into Z, disjoint from ``pool_idx``.
    k : int
        Number of picks, ``1 <= k <= m``.
    metric : {"euclidean", "cosine"}
    first_pick : int or None
        Absolute row index of the first center when the pool is empty (its radius is +inf).
    device : {None, "cpu", "gpu"}, optional
        Where FAISS searches; None uses a GPU when faiss-gpu sees one. "gpu" without one raises
        :class:`~diverseevol.errors.BackendUnavailableError`.
    block_rows : int, optional
        Rows of Z read per block (default: about 16 MiB of float32).
    progress : bool, optional
        Show a progress bar over the picks (default: on unless ``DIVERSEEVOL_PROGRESS=0``).

    Returns
    -------
    picks : ndarray of int64, shape (k,)
        Absolute row indices into Z in pick order.
    radii : ndarray of float64, shape (k,)
        Each pick's distance to its nearest earlier center (pool included) when picked.
    """
    require("faiss", feature="backend='faiss'", extra="faiss")
    blocks = plan_row_blocks(candidate_idx, int(block_rows or default_block_rows(emb.shape[1])))
    dtype = work_dtype(emb)
    row_factors = candidate_norms(emb, blocks, len(candidate_idx), metric=metric, dtype=dtype)
    if len(pool_idx):
        mind = initial_min_sq_distances(
            emb,
            pool_idx,
            candidate_idx,
            blocks,
            metric=metric,
            row_factors=row_factors,
            dtype=dtype,
            device=device,
        )
    else:
        if first_pick is None:
            raise ValidationError("first_pick is required when pool_idx is empty.")
        _use_gpu(require("faiss"), device)  # an impossible explicit device still fails loudly
        mind = np.full(len(candidate_idx), np.inf, dtype=dtype)
    return numpy_pick_loop(
        emb,
        candidate_idx,
        blocks,
        mind,
        k,
        metric=metric,
        first_pick=first_pick if not len(pool_idx) else None,
        row_factors=row_factors,
        progress=progress,
    )
