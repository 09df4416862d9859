"""Helpers shared by the built-in samplers: candidate handling, score arrays, repr.

``require_signals`` lives in :mod:`.base` beside :class:`Requirements` and is re-exported here.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from ..errors import ValidationError
from .base import SelectionContext, require_signals

__all__ = ["ParamsReprMixin", "require_signals", "score_array", "sorted_candidates"]


def sorted_candidates(ctx: SelectionContext) -> np.ndarray:
    """Return the candidates as a sorted int64 array (absolute row indices into Z).

    Sorting first makes every built-in sampler depend on the candidate *set* only, and lets a
    stable sort break ties toward the lowest index.
    """
    return np.sort(np.asarray(ctx.candidate_idx, dtype=np.int64), kind="stable")


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
