"""Shifted squared distances for data with a large common mean: the rule and the per-center constant.

The exact kernels compute squared Euclidean distances as ``|x|^2 + |c|^2 - 2 x.c``. In float32 its
rounding error scales with the norms, not with the distances: on data whose rows share a large common
mean (real LLM embeddings do), near-ties are ordered differently from float64 early on. Distances do
not change under a shift by a fixed row ``s``; with ``w = c - s``, ``q_y = |y - s|^2``::

    |x - c|^2 = q_x + (2 c.w - q_c) - 2 x.w

costs the same per pick (one product of every raw row with one vector, ``w``), and its dot products
involve ``|x| |c - s|`` instead of ``|x| |c|``: ``|c - s|`` is of the order of the spread, not of the
mean. The constant is ``2 c.w - q_c`` (not the equal ``q_c + 2 s.w``) so that a row and its exact
duplicate are at distance exactly 0: ``c.w`` and ``q_c`` come from the same per-row rules as every
row's ``x.w`` and ``q_x``.

``s`` is the first center known to every backend at the start: the lowest-index pool row, or the
first pick when the pool is empty. The shift engages (euclidean only) when, on a fixed sample of the
used rows (pool and candidates), the squared norm of the mean exceeds ``SHIFT_RATIO`` times the mean
squared distance to the mean. Without a common offset, a shift by a data row is slightly worse than
none (``benchmarks/kcenter_exactness.py``). The sample is the rows whose absolute index hashes below a
threshold (about ``SAMPLE_ROWS`` rows), so a sharded run draws the same sample from its shards and
agrees with a single-process run. The decision never changes which arithmetic the backends share: all
of them (numpy, faiss, torch, distributed) call :func:`choose_shift` or its sharded parts.
"""

from __future__ import annotations

import math

import numpy as np

from ._rowblocks import sq_norms

__all__ = ["SAMPLE_ROWS", "SHIFT_RATIO", "choose_shift", "engages", "in_sample", "moments", "shift_row"]

#: Engage the shift when ``|mean|^2 > SHIFT_RATIO * mean |x - mean|^2`` on the sample. Measured on
#: clustered data with a shared offset (20,000 x 256 and x 1,024, float32): from an offset of 1x the
#: spread (ratio 1) the plain formula leaves the float64 order within the first few hundred picks and
#: the shifted one does not; at 0.5x neither does.
SHIFT_RATIO = 1.0
#: About this many used rows form the rule's sample (all of them when there are fewer).
SAMPLE_ROWS = 2048
_HASH = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: a fixed pseudo-random mix of the row index
_HASH_BITS = 24
_READ_ROWS = 64  # rows per block of the moments: a gathered block stays in cache


def in_sample(abs_idx: np.ndarray, n_used: int) -> np.ndarray:
    """Which absolute row indices belong to the rule's sample when ``n_used`` rows are used in all."""
    abs_idx = np.asarray(abs_idx, dtype=np.int64)
    if n_used <= SAMPLE_ROWS:
        return np.ones(len(abs_idx), dtype=bool)
    cut = math.ceil((1 << _HASH_BITS) * SAMPLE_ROWS / n_used)
    h = (abs_idx.astype(np.uint64) * _HASH) >> np.uint64(64 - _HASH_BITS)
    return h < np.uint64(cut)


def moments(emb: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``[sum of rows (d values), sum of squared norms, count]`` of ``emb[rows]``, in float64 (rows sorted).

    Each block of ``_READ_ROWS`` rows is summed in the work dtype (float32, or float64 for float64 data) and
    the block sums are added in float64: the rule compares two moments, so a relative rounding of about
    ``_READ_ROWS`` float32 epsilons (1e-5) can only move data whose ratio is within that of ``SHIFT_RATIO``.
    Summing in float64 directly cast every element first: 3.5x slower (5,200 x 4,096, a 2,048-row sample,
    25.5 against 7.2 ms).
    """
    d = int(emb.shape[1])
    work = np.float64 if emb.dtype == np.float64 else np.float32
    out = np.zeros(d + 2, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # huge finite rows: the rule then does not engage
        for a in range(0, len(rows), _READ_ROWS):
            X = np.asarray(emb[rows[a : a + _READ_ROWS]], dtype=work)
            out[:d] += np.add.reduce(X, axis=0)
            out[d] += float(sq_norms(X).sum(dtype=np.float64))
    out[d + 1] = len(rows)
    return out


def engages(m: np.ndarray) -> bool:
    """The rule on summed :func:`moments`: the mean's squared norm against the mean squared distance to it."""
    n = float(m[-1])
    if n < 2:
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        mu = m[:-2] / n
        mu2 = float(mu @ mu)
        var = max(float(m[-2]) / n - mu2, 0.0)
    return bool(np.isfinite(mu2) and np.isfinite(var) and mu2 > SHIFT_RATIO * var)


def shift_row(pool_idx: np.ndarray, first_pick: int | None) -> int:
    """The shift row ``s``: the lowest-index pool row, else the first pick."""
    if len(pool_idx):
        return int(np.min(pool_idx))
    assert first_pick is not None
    return int(first_pick)


def choose_shift(
    emb: np.ndarray, pool_idx: np.ndarray, candidate_idx: np.ndarray, metric: str, first_pick: int | None
) -> int | None:
    """The shift row for a single-process run, or None when the rule does not engage (or for cosine)."""
    if metric != "euclidean" or (not len(pool_idx) and first_pick is None):
        return None
    n_used = len(pool_idx) + len(candidate_idx)
    rows = np.concatenate([pool_idx[in_sample(pool_idx, n_used)], candidate_idx[in_sample(candidate_idx, n_used)]])
    if not engages(moments(emb, np.sort(rows))):
        return None
    return shift_row(pool_idx, first_pick)
