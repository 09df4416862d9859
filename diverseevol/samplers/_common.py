"""Helpers shared by the built-in samplers: argument checks, candidate handling, embedded rows,
score arrays, repr.

``require_signals`` lives in :mod:`.base` beside :class:`Requirements` and is re-exported here.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from .._validation import check_k
from ..errors import ValidationError
from .base import SelectionContext, require_signals

__all__ = [
    "KNN_BACKENDS",
    "ParamsReprMixin",
    "check_knn_backend",
    "check_transform_spec",
    "checked_candidates",
    "embedded_rows",
    "pool_then_candidates",
    "require_signals",
    "score_array",
    "sorted_candidates",
]

#: The ``backend`` values of the samplers that search neighbours or clusters (k-NN graph, k-means).
KNN_BACKENDS = ("auto", "numpy", "faiss")


def check_knn_backend(backend: Any) -> None:
    """Raise :class:`ValidationError` unless ``backend`` is one of :data:`KNN_BACKENDS`."""
    if backend not in KNN_BACKENDS:
        raise ValidationError(f"backend must be one of {list(KNN_BACKENDS)}; got {backend!r}.")


def check_transform_spec(transform: Any) -> None:
    """Validate an embedding-transform spec now; samplers build a fresh transform per ``select``."""
    from ..transforms import make_transform

    make_transform(transform)


def sorted_candidates(ctx: SelectionContext) -> np.ndarray:
    """Return the candidates as a sorted int64 array (absolute row indices into Z).

    Sorting first makes every built-in sampler depend on the candidate *set* only, and lets a
    stable sort break ties toward the lowest index.
    """
    return np.sort(np.asarray(ctx.candidate_idx, dtype=np.int64), kind="stable")


def checked_candidates(sampler: Any, ctx: SelectionContext, k: Any) -> tuple[np.ndarray, int]:
    """The opening of a ``select``: check ``ctx`` carries what ``sampler`` requires, sort, check ``k``.

    Returns
    -------
    cand : ndarray of int64, shape (m,)
        :func:`sorted_candidates` (absolute row indices into Z).
    k : int
        ``0 <= k <= m``.
    """
    require_signals(sampler, ctx)
    cand = sorted_candidates(ctx)
    return cand, check_k(k, cand.size)


def pool_then_candidates(ctx: SelectionContext, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted pool and the rows ``pool`` then ``cand`` (a position index over both).

    Returns
    -------
    pool : ndarray of int64, shape (p,)
        Sorted absolute row indices into Z of the training pool.
    rows : ndarray of int64, shape (p + m,)
        Absolute row indices into Z: position ``i < p`` is ``pool[i]``, position ``p + j`` is ``cand[j]``.
    """
    pool = np.sort(np.asarray(ctx.pool_idx, dtype=np.int64))
    return pool, np.concatenate([pool, cand])


def embedded_rows(ctx: SelectionContext, rows: np.ndarray, fit_rows: np.ndarray, transform: Any) -> np.ndarray:
    """``ctx.embeddings[rows]`` as float32, transformed when ``transform`` is given.

    Parameters
    ----------
    ctx : SelectionContext
        Its ``embeddings`` (N, d) are read; its ``rng`` seeds a random transform.
    rows : ndarray of int64, shape (r,)
        Absolute row indices into Z to return.
    fit_rows : ndarray of int64, shape (m,)
        Absolute row indices into Z the transform is fitted on (the candidates).
    transform : spec accepted by :func:`~diverseevol.transforms.make_transform`, or None

    Returns
    -------
    ndarray of float32, shape (r, d')
        Row ``i`` is (the transform of) ``ctx.embeddings[rows[i]]``.
    """
    from ..transforms import make_transform

    built = make_transform(transform, random_state=ctx.rng)
    if built is None:
        return np.asarray(ctx.embeddings[rows], dtype=np.float32)
    built.fit(ctx.embeddings, fit_rows)
    return built.transform(ctx.embeddings, rows)


def score_array(ctx: SelectionContext, signal: str, candidates: np.ndarray) -> np.ndarray:
    """Return ``ctx.scores[signal]`` at ``candidates`` as float64, checking shape and finiteness.

    Parameters
    ----------
    ctx : SelectionContext
    signal : str
        Key in ``ctx.scores``, e.g. ``"margin"``.
    candidates : ndarray of int64, shape (m,)
        Absolute row indices into Z.

    Returns
    -------
    ndarray of float64, shape (m,)
    """
    values = np.asarray(ctx.scores[signal])
    if values.ndim != 1:
        raise ValidationError(
            f"scores[{signal!r}] must be a 1-D array of shape (N,), one value per record of Z; got "
            f"shape {values.shape}."
        )
    if not (np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)):
        raise ValidationError(f"scores[{signal!r}] must hold real numbers; got dtype {values.dtype}.")
    if candidates.size and int(candidates.max()) >= values.shape[0]:
        raise ValidationError(
            f"scores[{signal!r}] has {values.shape[0]} values but candidate index "
            f"{int(candidates.max())} needs at least {int(candidates.max()) + 1}; scores are indexed "
            f"by absolute row of Z and must cover every record."
        )
    picked = values[candidates].astype(np.float64)
    bad = ~np.isfinite(picked)
    if bad.any():
        rows = candidates[bad]
        raise ValidationError(
            f"scores[{signal!r}] must be finite on the candidates; {int(bad.sum())} are NaN or Inf "
            f"(e.g. rows {rows[:5].tolist()}). A record with no response tokens has no score: drop "
            f"it from candidate_idx or give it a finite value."
        )
    return picked


class ParamsReprMixin:
    """``get_params()`` and a constructor-style ``repr`` from the ``__init__`` signature."""

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters of this sampler (for configs and run records)."""
        params: dict[str, Any] = {}
        for p in inspect.signature(type(self).__init__).parameters.values():
            if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            params[p.name] = getattr(self, p.name)
        return params

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
