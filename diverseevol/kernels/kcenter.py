"""Exact greedy K-Center (farthest-first) selection: :func:`kcenter_select`.

:func:`kcenter_select` validates its input, puts the index sets in a canonical form and hands the
distance work to a compute backend chosen by :func:`diverseevol.kernels.backends.resolve_backend`.

Backend contract
----------------
A backend is a module exposing::

    farthest_first(emb, pool_idx, candidate_idx, k, *, metric, first_pick, **options)
        -> (picks, radii)

It is called only with validated input:

* ``emb``: the (N, d) embeddings of Z, a floating ndarray or ``np.memmap`` (never loaded whole by
  the caller); rows used (pool and candidates) are finite; for ``metric="cosine"`` they have a
  non-zero norm.
* ``pool_idx``: sorted int64 absolute row indices into Z of the training pool (may be empty).
* ``candidate_idx``: sorted int64 absolute row indices into Z that may be picked; disjoint from
  ``pool_idx``.
* ``k``: ``1 <= k <= len(candidate_idx)``.
* ``metric``: ``"euclidean"`` or ``"cosine"`` (rows L2-normalised on the fly).
* ``first_pick``: an absolute index in ``candidate_idx`` when ``pool_idx`` is empty (the first
  center, already drawn from ``random_state``), else ``None``.
* ``options``: always ``prune`` (``"auto"``, True or False) and ``block_rows`` (int or None), plus
  whatever the user passed as ``**backend_options``. A backend ignores options it does not use
  (``prune`` and ``block_rows`` never change the result) and raises
  :class:`~diverseevol.errors.ValidationError` for values it cannot accept.

It returns ``picks``, int64 of shape (k,), absolute indices in pick order, and ``radii``, float64
of shape (k,): the distance of each pick to its nearest member of pool + earlier picks at the moment
it was picked (Euclidean distance, or ``1 - cosine similarity``; ``inf`` for a first pick made with
an empty pool), non-increasing. Each pick is the candidate with the largest such distance; ties go
to the lowest index. Squared distances are clamped at 0 before any square root. Exact backends
return the same picks as ``"numpy"`` (up to rounding-level near-ties).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal, Union, overload

import numpy as np

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
from ._rowblocks import draw_first_pick, work_dtype
from .backends import resolve_backend

__all__ = ["METRICS", "kcenter_select"]

logger = logging.getLogger(__name__)

#: Distances accepted by ``metric=``.
METRICS = ("euclidean", "cosine")

EmbeddingsLike = Union[np.ndarray, str, "os.PathLike[str]"]

_CHECK_BLOCK_BYTES = 32 << 20


@overload
def kcenter_select(
    emb: EmbeddingsLike,
    pool_idx: Any,
    k: int,
    *,
    candidate_idx: Any = ...,
    metric: str = ...,
    backend: str = ...,
    random_state: RandomState = ...,
    return_radii: Literal[False] = ...,
    prune: bool | str = ...,
    block_rows: int | None = ...,
    **backend_options: Any,
) -> np.ndarray: ...


@overload
def kcenter_select(
    emb: EmbeddingsLike,
    pool_idx: Any,
    k: int,
    *,
    candidate_idx: Any = ...,
    metric: str = ...,
    backend: str = ...,
    random_state: RandomState = ...,
    return_radii: Literal[True],
    prune: bool | str = ...,
    block_rows: int | None = ...,
    **backend_options: Any,
) -> tuple[np.ndarray, np.ndarray]: ...


def kcenter_select(
    emb: EmbeddingsLike,
    pool_idx: Any,
    k: int,
    *,
    candidate_idx: Any = None,
    metric: str = "euclidean",
    backend: str = "auto",
    random_state: RandomState = None,
    return_radii: bool = False,
    prune: bool | str = "auto",
    block_rows: int | None = None,
    **backend_options: Any,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Select ``k`` records by exact greedy K-Center (farthest-first traversal).

    Each pick is the candidate whose distance to its nearest member of the training pool plus the
    picks so far is largest (Sener & Savarese's greedy K-Center, as used by DiverseEvol).

    Parameters
    ----------
    emb : ndarray or np.memmap of shape (N, d), or str / path-like
        One embedding per record of Z. A path to a ``.npy`` file is opened with ``mmap_mode="r"``
        and streamed, never loaded whole. float32 is computed in float32, float64 in float64.
    pool_idx : array-like of int, shape (p,)
        Absolute row indices into Z of the training pool P_t (may be empty). Order does not matter.
    k : int
        Number of records to select (``0 <= k <= number of candidates``).
    candidate_idx : array-like of int, shape (n,), optional
        Absolute row indices into Z that may be selected; default: every row not in ``pool_idx``.
        Must be disjoint from ``pool_idx``. Order does not matter.
    metric : {"euclidean", "cosine"}, default "euclidean"
        ``"euclidean"`` (the paper's) or ``"cosine"``: rows are L2-normalised on the fly, the
        radius is ``1 - cosine similarity`` and the picks equal Euclidean picks on normalised rows.
    backend : str, default "auto"
        ``"numpy"`` (exact reference), another installed backend
        (:func:`diverseevol.kernels.backends.available_backends`), or ``"auto"``.
    random_state : None, int, np.random.Generator or np.random.RandomState
        Draws the first center (uniformly among the candidates) when ``pool_idx`` is empty; unused
        otherwise.
    return_radii : bool, default False
        Also return the covering radius at each pick.
    prune : {"auto", True, False}, default "auto"
        Exact pruning on the numpy and faiss backends: triangle-inequality tests and lazy
        evaluation (a new center is applied only to the rows that could be the next pick; tune it
        with the backend option ``lazy``). ``"auto"`` keeps each while it is measured to pay;
        ``False`` computes every distance. Never changes the result.
    block_rows : int, optional
        Rows per work block (default: a few MiB of rows).
    **backend_options
        Passed to the backend, e.g. ``n_threads``, ``max_copy_bytes``, ``progress`` or ``stats``
        for ``"numpy"`` (see :func:`diverseevol.kernels._numpy.farthest_first`).

    Returns
    -------
    picks : ndarray of int64, shape (k,)
        Absolute row indices into Z, in pick order, disjoint from ``pool_idx``.
    radii : ndarray of float64, shape (k,)
        Only with ``return_radii=True``: the distance of each pick to its nearest member of pool +
        earlier picks when it was picked; non-increasing; ``inf`` for a first pick made with an
        empty pool.

    Raises
    ------
    ValidationError
        ``emb`` not 2-D, empty or not numeric; bad ``metric``, ``prune``, ``block_rows`` or ``k``;
        an all-zero row with ``metric="cosine"``.
    IndexValidationError
        Non-integer, out-of-range or duplicate indices; pool and candidates overlap.
    NonFiniteEmbeddingError
        NaN or Inf in a row that is used (pool or candidate).
    PoolExhaustedError
        ``k`` exceeds the number of candidates.

    Notes
    -----
    Ties go to the lowest index. Memory: O(N) floats beyond fixed-size blocks; never an N x N or
    N x |pool| matrix. See ``docs/kcenter.md`` for the algorithm and measured speed.

    Examples
    --------
    >>> import numpy as np
    >>> from diverseevol import kcenter_select
    >>> emb = np.random.default_rng(0).normal(size=(1000, 16)).astype(np.float32)
    >>> new = kcenter_select(emb, np.arange(10), k=5)
    >>> new.shape, new.dtype
    ((5,), dtype('int64'))
    """
    emb = _open_embeddings(emb)
    if not isinstance(metric, str) or metric not in METRICS:
        raise ValidationError(f"metric must be one of {list(METRICS)}; got {metric!r}.")
    if isinstance(prune, (bool, np.bool_)):
        prune = bool(prune)
    elif not (isinstance(prune, str) and prune == "auto"):
        raise ValidationError(f"prune must be 'auto', True or False; got {prune!r}.")
    if block_rows is not None and (
        isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1
    ):
        raise ValidationError(f"block_rows must be None or a positive int; got {block_rows!r}.")
    if not isinstance(return_radii, (bool, np.bool_)):
        raise ValidationError(f"return_radii must be True or False; got {return_radii!r}.")
    n = emb.shape[0]
    pool, cand = _index_sets(n, pool_idx, candidate_idx)
    k = check_k(k, len(cand))
    rng = check_random_state(random_state)
    if k == 0:
        empty = np.empty(0, dtype=np.int64)
        return (empty, np.empty(0, dtype=np.float64)) if return_radii else empty

    _check_used_rows(emb, pool, cand, cosine=metric == "cosine")
    first_pick = draw_first_pick(rng, cand) if len(pool) == 0 else None
    name, farthest_first = resolve_backend(
        backend, n_candidates=len(cand), n_pool=len(pool), d=emb.shape[1], is_memmap=isinstance(emb, np.memmap)
    )
    logger.debug(
        "kcenter_select: backend=%s, N=%d, d=%d, |pool|=%d, candidates=%d, k=%d, metric=%s",
        name, n, emb.shape[1], len(pool), len(cand), k, metric,
    )
    picks, radii = farthest_first(
        emb, pool, cand, k, metric=metric, first_pick=first_pick, prune=prune, block_rows=block_rows,
        **backend_options,
    )
    picks = np.asarray(picks, dtype=np.int64)
    radii = np.asarray(radii, dtype=np.float64)
    if picks.shape != (k,) or radii.shape != (k,):  # pragma: no cover - a broken backend
        raise RuntimeError(
            f"backend {name!r} returned picks of shape {picks.shape} and radii of shape {radii.shape}; "
            f"expected ({k},) for both."
        )
    return (picks, radii) if return_radii else picks


def _index_sets(n: int, pool_idx: Any, candidate_idx: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated, sorted int64 ``(pool, candidates)``: absolute row indices into Z of ``n`` rows.

    ``candidate_idx=None`` means every row not in the pool; given candidates must be disjoint from it.
    """
    pool = np.sort(check_index_array(pool_idx, n, name="pool_idx"))
    if candidate_idx is None:
        return pool, complement_indices(n, pool)
    cand = np.sort(check_index_array(candidate_idx, n, name="candidate_idx"))
    check_disjoint(pool, cand)
    return pool, cand


def _open_embeddings(emb: Any) -> np.ndarray:
    """Return ``emb`` as a validated 2-D float array; paths to ``.npy`` files are memory-mapped."""
    if isinstance(emb, (str, os.PathLike)):
        path = Path(emb)
        if not path.is_file():
            raise ValidationError(
                f"emb must be an array or the path of a .npy file; {str(path)!r} does not exist or is not a file."
            )
        try:
            emb = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ValidationError(
                f"emb path {str(path)!r} could not be opened as a .npy array ({exc}). Save embeddings with "
                f"np.save(path, emb) (a 2-D float array)."
            ) from exc
        if not isinstance(emb, np.ndarray):
            raise ValidationError(f"emb path {str(path)!r} holds {type(emb).__name__}, not one .npy array.")
    return check_embeddings(emb, name="emb")


def _check_used_rows(emb: np.ndarray, pool: np.ndarray, cand: np.ndarray, *, cosine: bool) -> None:
    """Raise if a used row holds NaN/Inf, overflows when squared, or is all-zero under cosine.

    One blockwise pass of squared row norms over the used rows (a range read when the used rows are
    dense in ``emb``, a gather otherwise), so memmaps are never loaded whole.
    """
    used = np.union1d(pool, cand) if len(pool) else cand
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
            sq = np.einsum("ij,ij->i", block, block)
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
            raise ValidationError(
                f"metric='cosine' needs rows with a non-zero norm; row {row} is all zeros. Drop it from "
                f"candidate_idx/pool_idx or use metric='euclidean'."
            )
