"""Helpers of the samplers that split the budget over groups (labels, clusters, length bins).

Reading ``ctx.labels`` / ``ctx.lengths`` at the candidates, max-min fair shares, weighted draws
without replacement, and the round-robin pick order.

Index spaces: ``cand`` arrays hold absolute row indices into Z; *positions* index into ``cand``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ValidationError
from .base import SelectionContext

__all__ = ["fair_shares", "group_values", "round_robin", "weighted_draw"]


def group_values(ctx: SelectionContext, signal: str, cand: np.ndarray) -> np.ndarray:
    """``ctx.labels`` or ``ctx.lengths`` at the candidates.

    Parameters
    ----------
    ctx : SelectionContext
        Must carry the signal (callers check with ``require_signals`` first).
    signal : {"labels", "lengths"}
    cand : ndarray of int64, shape (m,)
        Absolute row indices into Z.

    Returns
    -------
    ndarray, shape (m,)
        Item ``j`` belongs to record ``cand[j]``.

    Raises
    ------
    ValidationError
        If the signal has fewer entries than a candidate index needs.
    """
    values = getattr(ctx, signal)
    if cand.size and int(cand.max()) >= values.shape[0]:
        raise ValidationError(
            f"ctx.{signal} has {values.shape[0]} entries but candidate index {int(cand.max())} needs at "
            f"least {int(cand.max()) + 1}; it is indexed by absolute row of Z and must cover every record."
        )
    return values[cand]


def fair_shares(sizes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Split ``k`` picks equally over groups, capped by their sizes (max-min fair, "water-filling").

    Every group gets the same share ``floor(B / g)`` of what is left, except groups smaller than
    that share, which get all their members; their surplus is shared among the others, repeatedly.
    The ``B mod g`` picks left at the end go to distinct groups chosen uniformly at random (from
    ``rng``) among those that still have room. The result maximises the smallest share, then the
    next smallest, and so on.

    Parameters
    ----------
    sizes : ndarray of int, shape (g,)
        Members per group, ``sum(sizes) >= k``.
    k : int
    rng : numpy.random.Generator
        Used only when the remainder is not zero.

    Returns
    -------
    ndarray of int64, shape (g,)
        Picks per group, summing to ``k``, each ``<= sizes[i]``; shares differ by at most one among
        the groups not taken whole.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    quota = np.zeros(sizes.shape, dtype=np.int64)
    open_ = np.ones(sizes.shape, dtype=bool)
    left = int(k)
    while left and open_.any():
        share = left // int(open_.sum())
        small = open_ & (sizes <= share)
        if not small.any():
            quota[open_] = share
            left -= share * int(open_.sum())
            break
        quota[small] = sizes[small]
        left -= int(sizes[small].sum())
        open_ &= ~small
    if left:  # fewer than one pick per open group is left; every open group has room for one more
        extra = rng.choice(np.flatnonzero(open_), size=left, replace=False)
        quota[extra] += 1
    return quota


def weighted_draw(
    members: np.ndarray, size: int, log_weights: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    """Draw ``size`` members without replacement, with probability proportional to ``exp(log_weights)``.

    Successive sampling: each draw takes a remaining member with probability proportional to its
    weight. Implemented as the Gumbel-top-k race (perturb ``log_weights`` with Gumbel noise from
    ``rng``, keep the ``size`` largest), which has exactly that distribution and order, and never
    exponentiates, so any real ``log_weights`` work. ``None``: uniform.

    Parameters
    ----------
    members : ndarray of int64, shape (c,)
        What to draw from (positions or indices; returned as given).
    size : int
        ``0 <= size <= c``.
    log_weights : ndarray of float64, shape (c,), or None
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int64, shape (size,)
        The drawn members, in draw order.
    """
    if size == 0:
        return members[:0]
    keys = rng.gumbel(size=members.size)
    if log_weights is not None:
        keys = keys + log_weights
    order = np.argsort(-keys, kind="stable")[:size]
    return members[order]


def round_robin(ranked: list[np.ndarray], group_order: np.ndarray) -> np.ndarray:
    """Interleave per-group picks: the first pick of every group (in ``group_order``), then the second...

    Parameters
    ----------
    ranked : list of ndarray of int64
        ``ranked[g]`` are group ``g``'s picks in their own order.
    group_order : ndarray of int, shape (g,)
        The order of the groups within one pass.

    Returns
    -------
    ndarray of int64, shape (sum of lengths,)
        Any prefix of it is spread over the groups as evenly as their picks allow.
    """
    depth = [np.arange(len(ranked[g])) for g in group_order]
    pass_rank = [np.full(len(ranked[g]), i) for i, g in enumerate(group_order)]
    if not depth:
        return np.empty(0, dtype=np.int64)
    flat = np.concatenate([ranked[g] for g in group_order]).astype(np.int64, copy=False)
    order = np.lexsort((np.concatenate(pass_rank), np.concatenate(depth)))
    return flat[order]
