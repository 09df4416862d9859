"""Diversity of a set of embeddings: the Vendi score (Friedman & Dieng, 2022).

For n records with embeddings x_1..x_n and a positive semi-definite similarity kernel with
k(x, x) = 1, the Vendi score of order q is the exponential of the Rényi entropy of order q of
the eigenvalues λ_i of K / n (which are non-negative and sum to 1):

    VS_q = exp( log(Σ_i λ_i^q) / (1 - q) ),   VS_1 = exp(-Σ_i λ_i log λ_i),   VS_∞ = 1 / max_i λ_i.

It reads as an "effective number of distinct records": 1 when all records are identical, n
when they are mutually orthogonal. Here K is the cosine-similarity kernel (rows L2-normalised,
K = X Xᵀ); with ``normalize=False`` it is the plain linear kernel, with the eigenvalues divided by
their sum so that a scale change of the data does not change the score.

For a linear kernel, the non-zero eigenvalues of X Xᵀ / n (n × n) equal those of Xᵀ X / n
(d × d). :func:`vendi_score` builds whichever is smaller, in row blocks with float64
accumulation, so a memory-mapped array of a million rows is scored in O(d²) memory, and uses
only the min(n, d) eigenvalues that can be non-zero: the spurious near-zero eigenvalues of the
larger side would otherwise inflate orders q < 1.
"""

from __future__ import annotations

import logging
import math
import numbers
from typing import Any, Literal

import numpy as np

from ._progress import progress_bar
from ._deprecation import moved_names
from ._validation import check_embeddings, check_scalar
from .errors import NonFiniteEmbeddingError, ValidationError

__all__ = [
    "vendi_eigenvalues",
    "vendi_score",
    "vendi_score_from_eigenvalues",
]

logger = logging.getLogger(__name__)

_DEFAULT_BLOCK_ROWS = 16384
_Method = Literal["auto", "covariance", "kernel"]


def _check_q(q: Any) -> float:
    if isinstance(q, str):
        if q.strip().lower() in ("inf", "infinity"):
            return math.inf
        raise ValidationError(f"q must be a number >= 0 or 'inf'; got the string {q!r}.")
    if isinstance(q, bool) or not isinstance(q, numbers.Real):
        raise ValidationError(f"q must be a number >= 0 (e.g. 0.5, 1, 2, float('inf')); got {q!r}.")
    q = float(q)
    if math.isnan(q) or q < 0:
        raise ValidationError(f"q must be >= 0 (the order of the Rényi entropy); got {q}.")
    return q


def _check_block_rows(block_rows: Any) -> int:
    return check_scalar(block_rows, "block_rows", int, min_val=1)


def _raise_zero_row(name: str, row: int) -> None:
    raise ValidationError(
        f"{name} row {row} is all zeros, so its cosine similarity to other rows is undefined. Drop "
        f"zero rows, or pass normalize=False to use the linear kernel."
    )


def _prepare_block(block: np.ndarray, start: int, normalize: bool, name: str) -> np.ndarray:
    """Return the block as float64, L2-normalised per row when asked; check finiteness and zeros."""
    x = np.array(block, dtype=np.float64)  # a copy: the caller's float64 rows are never changed
    finite = np.isfinite(x)
    if not finite.all():
        row = start + int(np.flatnonzero(~finite.all(axis=1))[0])
        raise NonFiniteEmbeddingError(
            f"{name} must be finite; row {row} contains NaN or Inf. Check the embedder (e.g. fp16 "
            f"overflow) or drop that record."
        )
    if normalize:
        peak = _row_peaks(x)
        zero = peak == 0
        if zero.any():
            _raise_zero_row(name, start + int(np.flatnonzero(zero)[0]))
        x /= peak[:, None]  # |x| <= 1 first, so the squared norm of rows like 1e200 cannot overflow
        x /= np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return x


class _Scaled:
    """A read-only view of an (n, d) array divided by a constant, sliced by rows as the matrix builders do."""

    def __init__(self, emb: Any, scale: float) -> None:
        self.emb, self.scale, self.shape = emb, scale, emb.shape

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getitem__(self, rows: Any) -> np.ndarray:
        return np.asarray(self.emb[rows], dtype=np.float64) / self.scale


def _row_peaks(x: np.ndarray) -> np.ndarray:
    """Largest absolute value of each row, shape (rows,): a scale that keeps squared norms finite."""
    return np.abs(x).max(axis=1) if x.shape[1] else np.zeros(x.shape[0])


def _covariance_side(emb: np.ndarray, normalize: bool, block_rows: int, disable: bool | None, name: str) -> np.ndarray:
    """Xᵀ X / n (d × d), accumulated over row blocks in float64."""
    n, d = emb.shape
    acc = np.zeros((d, d), dtype=np.float64)
    starts = range(0, n, block_rows)
    for start in progress_bar(starts, disable=disable, desc="vendi (d x d)", total=len(starts)):
        x = _prepare_block(emb[start : start + block_rows], start, normalize, name)
        acc += x.T @ x
    acc /= n
    return acc


def _kernel_side(emb: np.ndarray, normalize: bool, block_rows: int, disable: bool | None, name: str) -> np.ndarray:
    """X Xᵀ / n (n × n), accumulated over column blocks in float64 (about block_rows * d values at once)."""
    n, d = emb.shape
    if normalize:
        # Row i is divided by peak_i, then by the norm of the scaled row: no overflow for huge rows.
        peak = np.empty(n, dtype=np.float64)
        norm = np.empty(n, dtype=np.float64)
        for start in range(0, n, block_rows):
            x = _prepare_block(emb[start : start + block_rows], start, False, name)
            p = _row_peaks(x)
            stop = start + len(x)
            peak[start:stop] = p
            zero = np.flatnonzero(p == 0)
            if zero.size:
                _raise_zero_row(name, start + int(zero[0]))
            x /= p[:, None]
            norm[start:stop] = np.sqrt(np.einsum("ij,ij->i", x, x))
    cols = max(1, (block_rows * d) // max(n, 1))
    acc = np.zeros((n, n), dtype=np.float64)
    starts = range(0, d, cols)
    for start in progress_bar(starts, disable=disable, desc="vendi (n x n)", total=len(starts)):
        x = np.array(emb[:, start : start + cols], dtype=np.float64)  # a copy, scaled in place below
        if not np.isfinite(x).all():
            row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
            raise NonFiniteEmbeddingError(f"{name} must be finite; row {row} contains NaN or Inf.")
        if normalize:
            x /= peak[:, None]
            x /= norm[:, None]
        acc += x @ x.T
    acc /= n
    return acc


def vendi_eigenvalues(
    emb: Any,
    *,
    normalize: bool = True,
    block_rows: int = _DEFAULT_BLOCK_ROWS,
    method: _Method = "auto",
    eig_tol: float | None = None,
    progress: bool | None = None,
) -> np.ndarray:
    """Return the eigenvalues of the normalised kernel matrix, the spectrum the Vendi score uses.

    Parameters
    ----------
    emb : array-like of shape (n, d)
        One embedding per record; ``np.memmap`` is read block by block and never loaded whole.
    normalize : bool, default True
        True: cosine kernel (rows L2-normalised; an all-zero row is an error). False: linear
        kernel on the raw rows.
    block_rows : int, default 16384
        Rows read and converted to float64 at once (about ``block_rows * d`` values in memory).
    method : {"auto", "covariance", "kernel"}, default "auto"
        ``"covariance"`` builds Xᵀ X / n (d × d), ``"kernel"`` builds X Xᵀ / n (n × n); ``"auto"``
        takes the smaller. Both give the same non-zero eigenvalues.
    eig_tol : float, optional
        Eigenvalues below ``eig_tol`` (relative to the largest) are set to 0. Default:
        ``max(n, d) * eps(float64)``, the rounding level of the accumulated matrix.
    progress : bool, optional
        Show a progress bar over the blocks; by default only when there are many blocks.

    Returns
    -------
    ndarray of float64, shape (min(n, d),)
        Non-negative, sorted in decreasing order, summing to 1.

    Raises
    ------
    ValidationError
        If ``emb`` is not a 2-D non-empty numeric array, has a zero row with ``normalize=True``,
        or is all zeros; if an argument is out of range.
    NonFiniteEmbeddingError
        If ``emb`` holds NaN or Inf.
    """
    emb = check_embeddings(emb, name="emb")
    block_rows = _check_block_rows(block_rows)
    if method not in ("auto", "covariance", "kernel"):
        raise ValidationError(f"method must be 'auto', 'covariance' or 'kernel'; got {method!r}.")
    if eig_tol is not None and (not isinstance(eig_tol, numbers.Real) or not 0 <= eig_tol < 1):
        raise ValidationError(f"eig_tol must be a float in [0, 1) or None; got {eig_tol!r}.")
    n, d = emb.shape
    side = method if method != "auto" else ("covariance" if n > d else "kernel")
    n_blocks = -(-n // block_rows) if side == "covariance" else -(-d // max(1, (block_rows * d) // n))
    disable = (not progress) if progress is not None else (True if n_blocks < 16 else None)
    build = _covariance_side if side == "covariance" else _kernel_side
    with np.errstate(over="ignore", invalid="ignore"):
        matrix = build(emb, bool(normalize), block_rows, disable, "emb")
    if not normalize and not np.isfinite(matrix).all():
        # Entries like 1e200 overflow X^T X. The eigenvalues are divided by their sum below, so dividing X by
        # one global constant changes nothing but keeps every product finite.
        scale = max(float(np.abs(emb[start : start + block_rows]).max()) for start in range(0, n, block_rows))
        matrix = build(_Scaled(emb, scale), False, block_rows, disable, "emb")
    logger.debug("vendi: %s side, matrix %s, %d blocks", side, matrix.shape, n_blocks)
    w = np.linalg.eigvalsh(matrix)[::-1][: min(n, d)]
    top = float(w[0]) if w.size else 0.0
    if top <= 0:
        raise ValidationError(
            f"emb has no non-zero direction (every row is zero), so its Vendi score is undefined; "
            f"got shape {emb.shape}."
        )
    tol = (max(n, d) * np.finfo(np.float64).eps if eig_tol is None else float(eig_tol)) * top
    w = np.where(w > tol, w, 0.0)
    return w / w.sum()


def vendi_score_from_eigenvalues(eigenvalues: Any, q: float | str = 1.0) -> float:
    """Vendi score of order ``q`` from a spectrum (non-negative weights summing to 1).

    Parameters
    ----------
    eigenvalues : array-like of float, shape (m,)
        E.g. the output of :func:`vendi_eigenvalues`; renormalised to sum to 1, zeros ignored.
    q : float or "inf", default 1.0
        Order, any value >= 0: 0 counts the non-zero eigenvalues, 1 is the Shannon case, ``inf``
        gives 1 / max eigenvalue.

    Returns
    -------
    float
        Between 1 and the number of non-zero eigenvalues.
    """
    q = _check_q(q)
    p = np.asarray(eigenvalues, dtype=np.float64).ravel()
    if p.size == 0 or not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
        raise ValidationError(
            "eigenvalues must be a non-empty array of finite, non-negative values with a positive sum."
        )
    p = p[p > 0] / p.sum()
    if q == 0:
        return float(p.size)
    if q == 1:
        return float(np.exp(-np.sum(p * np.log(p))))
    if math.isinf(q):
        return float(1.0 / p.max())
    return _renyi_vendi(p, q)


def _renyi_vendi(p: np.ndarray, q: float) -> float:
    """exp(log(Σ p_i^q) / (1 - q)) in log space, finite for every finite q > 0, q != 1.

    p_i^q underflows to 0 for large q (0.2 ** 1000), which made the plain formula return inf.
    With m = max_i log p_i, log Σ p_i^q = q m + log Σ exp(q (log p_i - m)), where every term of the
    last sum lies in [0, 1] and one equals 1. The result is exp(m q / (1 - q) + log(sum) / (1 - q)),
    which tends to exp(-m) = 1 / p_max as q grows.
    """
    log_p = np.log(p)
    top = float(log_p.max())
    log_sum = float(np.log(np.sum(np.exp(q * (log_p - top)))))
    return float(np.exp(top * (q / (1.0 - q)) + log_sum / (1.0 - q)))


def vendi_score(
    emb: Any,
    q: float | str = 1.0,
    *,
    normalize: bool = True,
    block_rows: int = _DEFAULT_BLOCK_ROWS,
    method: _Method = "auto",
    eig_tol: float | None = None,
    progress: bool | None = None,
) -> float:
    """Vendi score of a set of embeddings: the effective number of distinct records.

    Parameters
    ----------
    emb : array-like of shape (n, d)
        One embedding per record (e.g. ``Z_emb[pool_idx]``); ``np.memmap`` is read in blocks.
    q : float or "inf", default 1.0
        Order of the Rényi entropy, any value >= 0. ``0``: number of non-zero eigenvalues (the
        rank); ``0.5``: weights rare directions up; ``1``: the Shannon case of the paper;
        ``2``: inverse participation ratio; ``inf``: 1 / largest eigenvalue. Computed in log
        space, so large orders (``q=1000``) stay finite and tend to the ``inf`` value.
    normalize : bool, default True
        True: cosine-similarity kernel, rows L2-normalised (a zero row raises). False: linear
        kernel ``x·y`` on the raw rows; since ``k(x, x)`` is then not 1, the eigenvalues of K / n
        are divided by their sum (the mean squared norm), which makes the score independent of
        the data's scale. This differs from ``vendi_score.vendi.score_dual(X, normalize=False)``,
        which uses the unnormalised eigenvalues, unless every row has unit norm.
    block_rows : int, default 16384
        Rows converted to float64 at once; memory stays O(block_rows * d + min(n, d)²).
    method : {"auto", "covariance", "kernel"}, default "auto"
        Which Gram matrix to build: Xᵀ X / n (d × d), X Xᵀ / n (n × n), or the smaller one.
    eig_tol : float, optional
        Relative threshold below which eigenvalues count as 0; see :func:`vendi_eigenvalues`.
    progress : bool, optional
        Show a progress bar over the blocks; by default only for large inputs.

    Returns
    -------
    float
        In ``[1, min(n, d)]``.

    Raises
    ------
    ValidationError
        Bad ``q`` (negative, NaN, not a number), bad shapes, a zero row with ``normalize=True``.
    NonFiniteEmbeddingError
        NaN or Inf in ``emb``.

    Notes
    -----
    Cost: one pass over ``emb`` and O(n d min(n, d)) flops in float64, then an eigendecomposition
    of a min(n, d)-sized symmetric matrix. For 1,100 records of dimension 4,096 this takes the
    1,100 × 1,100 side; for all 52k records it takes the 4,096 × 4,096 side.

    Examples
    --------
    >>> import numpy as np
    >>> from diverseevol import vendi_score
    >>> round(vendi_score(np.eye(5)), 6)               # 5 orthogonal records
    5.0
    >>> round(vendi_score(np.ones((5, 3)), q=2), 6)    # 5 identical records
    1.0
    """
    q = _check_q(q)
    w = vendi_eigenvalues(
        emb, normalize=normalize, block_rows=block_rows, method=method, eig_tol=eig_tol, progress=progress
    )
    return vendi_score_from_eigenvalues(w, q)


# --------------------------------------------------------------------------------------------
# old import paths: the pool measurements moved to diverseevol.measurements
# --------------------------------------------------------------------------------------------
_MOVED = ("mean_squared_norm", "pool_measurements", "pool_vendi")


#: ``diversity.pool_measurements`` / ``pool_vendi`` / ``mean_squared_norm``: moved, with a DeprecationWarning.
__getattr__ = moved_names(__name__, "diverseevol.measurements", _MOVED, "the one home of pool measurements")
