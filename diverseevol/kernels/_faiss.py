"""K-Center backend on FAISS: exact nearest-pool-member search for the initial distances (CPU or GPU).

The initial step (distance of every candidate to its nearest member of a possibly large training
pool) is a k=1 nearest-neighbour search, which FAISS does with blocked BLAS on CPU or on GPUs
(``faiss-gpu``). The distance to the member found is recomputed, and the picks are made, by the
numpy reference kernel (:mod:`diverseevol.kernels._numpy`, with its exact pruning and lazy
evaluation), so the results are the reference's bit for bit.

faiss is imported inside :func:`farthest_first`; this module loads with numpy alone.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .._optional import require
from ..errors import BackendUnavailableError, ValidationError
from . import _numpy
from ._rowblocks import (
    RowBlock,
    default_block_rows,
    embedding_rows,
    iter_blocks,
    plan_row_blocks,
    unit_rows,
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


def nearest_pool_rows(
    emb: np.ndarray,
    pool_idx: np.ndarray,
    candidate_idx: np.ndarray,
    blocks: list[RowBlock],
    *,
    metric: str,
    device: str | None = None,
) -> np.ndarray:
    """Nearest pool member of every candidate, by an exact FAISS k=1 search over float32 vectors.

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
    device : {None, "cpu", "gpu"}
        None uses a GPU when FAISS has one.

    Returns
    -------
    ndarray of int64, shape (m,)
        Absolute row index into Z (a member of ``pool_idx``) of each candidate's nearest pool
        member, in candidate order. Members equally near up to float32 rounding may be swapped.
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
    logger.debug("faiss nearest pool members: %d candidates x %d pool rows (gpu=%s)", m, len(pool_idx), gpu)
    return best_row


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
    **pick_options: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact greedy K-Center with FAISS initial distances; see :mod:`diverseevol.kernels.kcenter`.

    FAISS finds each candidate's nearest pool member; the numpy reference kernel
    (:func:`diverseevol.kernels._numpy.farthest_first`) recomputes that distance and makes the picks.
    The arguments before ``device`` follow the backend contract (checked by the caller).

    Parameters
    ----------
    device : {None, "cpu", "gpu"}, optional
        Where FAISS searches; None uses a GPU when faiss-gpu sees one. "gpu" without one raises
        :class:`~diverseevol.errors.BackendUnavailableError`.
    block_rows : int, optional
        Rows of Z read per block by the search, and per work tile by the picks (default: about
        16 MiB of float32 for the search, the numpy kernel's default for the picks).
    **pick_options
        The numpy kernel's options for the picks (``prune``, ``lazy``, ``blas_filter``, ``n_threads``,
        ``max_copy_bytes``, ``progress``, ``stats``); see
        :func:`diverseevol.kernels._numpy.farthest_first`.

    Returns
    -------
    picks, radii
        As :func:`diverseevol.kernels._numpy.farthest_first`: bit for bit the same.
    """
    faiss = require("faiss", feature="backend='faiss'", extra="faiss")
    if len(pool_idx):
        blocks = plan_row_blocks(candidate_idx, int(block_rows or default_block_rows(emb.shape[1])))
        nearest = nearest_pool_rows(emb, pool_idx, candidate_idx, blocks, metric=metric, device=device)
    else:
        _use_gpu(faiss, device)  # an impossible explicit device still fails loudly
        nearest = None
    return _numpy.farthest_first(
        emb,
        pool_idx,
        candidate_idx,
        k,
        metric=metric,
        first_pick=first_pick,
        block_rows=block_rows,
        nearest_pool_idx=nearest,
        **pick_options,
    )
