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
* ``metric``: one of :data:`~diverseevol.kernels.contract.METRICS` (``"cosine"``: rows
  L2-normalised on the fly).
* ``first_pick``: an absolute index in ``candidate_idx`` when ``pool_idx`` is empty (the first
  center, already drawn from ``random_state``), else ``None``.
* ``options``: only options the backend uses, as declared by its
  :class:`~diverseevol.kernels.contract.BackendSpec`, with checked values. Unknown options were
  refused (:class:`~diverseevol.errors.UnknownOptionError`) and options without effect on it
  reported (:class:`~diverseevol.errors.IgnoredOptionWarning`) before the call; none of them
  changes the result. A backend still refuses what only it can tell is impossible (e.g.
  ``device="cuda"`` without a GPU: :class:`~diverseevol.errors.BackendUnavailableError`).

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
from typing import Any, Literal, Union, overload

import numpy as np

from .._validation import RandomState
from ..errors import ValidationError
from ._inputs import check_problem, check_used_rows, empty_result
from ._rowblocks import draw_first_pick
from .backends import resolve_backend
from .contract import METRICS, applicable_options, check_metric, check_options

__all__ = ["METRICS", "kcenter_select"]

logger = logging.getLogger(__name__)

EmbeddingsLike = Union[np.ndarray, str, "os.PathLike[str]"]


# The overloads only tell type checkers what ``return_radii`` returns; the parameters are the implementation's.
@overload
def kcenter_select(
    emb: EmbeddingsLike, pool_idx: Any, k: int, *, return_radii: Literal[False] = ..., **kwargs: Any
) -> np.ndarray: ...


@overload
def kcenter_select(
    emb: EmbeddingsLike, pool_idx: Any, k: int, *, return_radii: Literal[True], **kwargs: Any
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
        with the backend option ``lazy``). ``"auto"`` decides up front whether each can pay (from
        ``d`` and the share of rows a pick would compute, estimated on the rows farthest from the
        pool) and keeps it while it is measured to pay; ``False`` computes every distance. Never
        changes the result.
    block_rows : int, optional
        Rows per work block (default: a few MiB of rows).
    **backend_options
        Options of the backend, e.g. ``lazy``, ``n_threads``, ``max_copy_bytes``, ``progress`` or
        ``stats`` for ``"numpy"``; ``device`` for ``"faiss"`` and ``"torch"``. Each backend's
        options are declared in :data:`diverseevol.kernels.contract.BACKENDS` (table in
        ``docs/kcenter.md``). An option a backend does not accept raises
        :class:`~diverseevol.errors.UnknownOptionError`; one it accepts without effect (``lazy``
        on torch), or one for another backend than ``"auto"`` chose, warns
        (:class:`~diverseevol.errors.IgnoredOptionWarning`).

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
        ``emb`` not 2-D, empty or not numeric; bad ``metric``, ``prune``, ``block_rows``, option
        value or ``k``; an all-zero row with ``metric="cosine"``.
    UnknownOptionError
        An option the backend does not accept (also a ``TypeError``); the message lists the
        accepted ones and the closest match.
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
    check_metric(metric)
    if not isinstance(return_radii, (bool, np.bool_)):
        raise ValidationError(f"return_radii must be True or False; got {return_radii!r}.")
    options = check_options(backend, {"prune": prune, "block_rows": block_rows, **backend_options})
    problem = check_problem(emb, pool_idx, k, candidate_idx, random_state)
    emb, pool, cand, k = problem.emb, problem.pool, problem.cand, problem.k
    if k == 0:
        return empty_result(bool(return_radii))

    check_used_rows(emb, pool, cand, cosine=metric == "cosine")
    first_pick = draw_first_pick(problem.rng, cand) if len(pool) == 0 else None
    name, farthest_first = resolve_backend(
        backend, n_candidates=len(cand), n_pool=len(pool), d=emb.shape[1], is_memmap=isinstance(emb, np.memmap)
    )
    options = applicable_options(name, options, requested=backend)
    logger.debug(
        "kcenter_select: backend=%s, N=%d, d=%d, |pool|=%d, candidates=%d, k=%d, metric=%s",
        name, emb.shape[0], emb.shape[1], len(pool), len(cand), k, metric,
    )
    picks, radii = farthest_first(emb, pool, cand, k, metric=metric, first_pick=first_pick, **options)
    picks = np.asarray(picks, dtype=np.int64)
    radii = np.asarray(radii, dtype=np.float64)
    if picks.shape != (k,) or radii.shape != (k,):  # pragma: no cover - a broken backend
        raise RuntimeError(
            f"backend {name!r} returned picks of shape {picks.shape} and radii of shape {radii.shape}; "
            f"expected ({k},) for both."
        )
    return (picks, radii) if return_radii else picks
