"""Batches of length-sorted records under a token budget, with little padding.

One job: given the token lengths of records sorted longest first, cut them into consecutive
batches whose padded size (rows x the batch's longest record) stays within a token budget, and
whose padding stays small. numpy only.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_scalar

__all__ = ["plan_batches", "padded_tokens"]


def plan_batches(
    lengths: np.ndarray, *, max_tokens: int, max_padding: float = 0.02, min_tokens: int | None = None
) -> list[slice]:
    """Cut records sorted by length (longest first) into batches.

    A batch starts at the longest record not yet placed (its width ``w``) and takes the next
    records while ``rows * w <= max_tokens`` and either the batch's padded tokens stay within
    ``max_padding`` of its real tokens or the batch is still no larger than ``min_tokens``
    (small batches waste more time in per-batch overhead than in padding). Every batch holds at
    least one record.

    Parameters
    ----------
    lengths : numpy.ndarray of int, shape (M,)
        Token counts, non-increasing (``lengths[i] >= lengths[i + 1]``).
    max_tokens : int
        Budget of padded tokens (rows x width) per batch; >= 1.
    max_padding : float, default 0.02
        Largest tolerated padded / real tokens of a batch above ``min_tokens``.
    min_tokens : int, optional
        Padded size up to which a batch grows whatever its padding; default ``max_tokens // 8``
        (SmolLM2-135M's linear layers ran no slower at 1,024-4,096 rows than at 16,384 on a 2-core
        CPU, while half the budget left 6.7% padding on 256 Dolly records against 2.7% at an eighth).

    Returns
    -------
    list of slice
        Consecutive slices into ``lengths`` (positions 0 .. M-1), covering it in order.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    check_scalar(max_tokens, "max_tokens", int, min_val=1)
    if lengths.size > 1 and np.any(np.diff(lengths) > 0):
        raise ValueError("lengths must be sorted longest first (non-increasing).")
    floor = max_tokens // 8 if min_tokens is None else int(min_tokens)
    out: list[slice] = []
    i, m = 0, lengths.size
    while i < m:
        width = max(int(lengths[i]), 1)
        cap = max(1, min(m - i, max_tokens // width))
        seg = lengths[i : i + cap]
        real = np.cumsum(seg)
        pad = np.cumsum(width - seg)
        rows = np.arange(1, cap + 1)
        # pad / real is non-decreasing along a sorted batch, so the allowed row counts form a prefix
        ok = (pad <= max_padding * real) | (rows * width <= floor)
        take = max(1, int(np.argmin(ok)) if not ok.all() else cap)
        out.append(slice(i, i + take))
        i += take
    return out


def padded_tokens(lengths: np.ndarray, batches: list[slice]) -> int:
    """Total rows x width over ``batches`` of the sorted ``lengths`` (what the model computes)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return int(sum(int(lengths[b].max()) * (b.stop - b.start) for b in batches if b.stop > b.start))
