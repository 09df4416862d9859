"""Norm-bias check: do the picks have a much larger mean embedding norm than the candidates?

Greedy K-Center maximises the distance to the nearest selected point. On raw, unnormalised
embeddings (e.g. mean-pooled hidden states) the farthest points are often the ones with the
longest vectors, so the picks over-represent long-norm outliers and starve whole categories.
:func:`norm_bias` measures this with one number, the ratio of the picks' mean L2 norm to the
candidates' mean L2 norm, and :func:`warn_if_norm_biased` warns once when it is above
:data:`NORM_BIAS_THRESHOLD`.

The threshold comes from measurements on Dolly-15k embedded with all-MiniLM-L6-v2 (raw
mean-pooled, 384-d; 100 random + 1,000 picks, three seeds; ``docs/selection_quality.md``):
random picks give 1.00, every robust setting (K-Center on L2-normalised or whitened-then-
normalised vectors, k-means, facility location) stays at or below ~1.1, and the paper's recipe
(Euclidean K-Center on the raw vectors) gives ~1.8. A threshold of 1.25 sits between the two
regimes with a wide margin on both sides and matches the acceptance band 0.8-1.25 of issue 14.

Importing this module needs numpy only.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import check_embeddings, check_index_array
from .errors import NonFiniteEmbeddingError, NormBiasWarning, ValidationError

__all__ = [
    "NORM_BIAS_THRESHOLD",
    "NormBias",
    "mean_row_norm",
    "norm_bias",
    "norm_ratio",
    "reset_norm_bias_warnings",
    "warn_if_norm_biased",
]

#: Ratio (mean norm of picks / mean norm of candidates) above which picks count as norm-biased.
NORM_BIAS_THRESHOLD = 1.25

_BLOCK_ROWS = 16384
_warned: set[str] = set()
_lock = threading.Lock()


def mean_row_norm(emb: Any, rows: Any, *, block_rows: int = _BLOCK_ROWS) -> float:
    """Mean L2 norm of ``emb[rows]``, read in blocks (float64 accumulation).

    Parameters
    ----------
    emb : array-like of shape (N, d)
        ``np.memmap`` is read block by block.
    rows : array-like of int, shape (m,)
        Absolute row indices into ``emb`` (Z's index space); must not be empty.

    Returns
    -------
    float
    """
    arr = check_embeddings(emb)
    idx = check_index_array(rows, arr.shape[0], name="rows", allow_empty=False)
    total = 0.0
    for start in range(0, idx.size, block_rows):
        part = np.sort(idx[start : start + block_rows])
        x = np.asarray(arr[part], dtype=np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", x, x))
        if not np.isfinite(norms).all():
            bad = int(part[np.flatnonzero(~np.isfinite(norms))[0]])
            raise NonFiniteEmbeddingError(f"emb must be finite; row {bad} contains NaN or Inf.")
        total += float(norms.sum())
    return total / idx.size


@dataclass(frozen=True)
class NormBias:
    """The norm figures of one selection.

    Attributes
    ----------
    ratio : float
        ``picks_mean_norm / candidates_mean_norm``; 1.0 for a random selection.
    picks_mean_norm : float
        Mean L2 norm of the picked rows.
    candidates_mean_norm : float
        Mean L2 norm of the candidate rows (the set the picks were drawn from).
    n_picks, n_candidates : int
    threshold : float
        The threshold the ``biased`` flag uses.
    """

    ratio: float
    picks_mean_norm: float
    candidates_mean_norm: float
    n_picks: int
    n_candidates: int
    threshold: float = NORM_BIAS_THRESHOLD

    @property
    def biased(self) -> bool:
        """Whether ``ratio`` is above ``threshold``."""
        return self.ratio > self.threshold

    def message(self, where: str = "The selection") -> str:
        """The warning text: figures and the fix."""
        return (
            f"{where} picked records whose mean embedding norm is {self.ratio:.2f}x the candidates' "
            f"({self.picks_mean_norm:.4g} over {self.n_picks} picks vs {self.candidates_mean_norm:.4g} over "
            f"{self.n_candidates} candidates; threshold {self.threshold:.2f}). Euclidean K-Center on raw "
            f"embeddings is drawn to long-norm outliers and can starve whole categories. Use "
            f'transform="normalize" or transform="whiten", or metric="cosine" '
            f"(see docs/selection_quality.md)."
        )


def norm_bias(
    emb: Any,
    candidate_idx: Any,
    picked_idx: Any,
    *,
    threshold: float = NORM_BIAS_THRESHOLD,
    block_rows: int = _BLOCK_ROWS,
) -> NormBias:
    """Compare the mean L2 norm of the picks with that of the candidates.

    Parameters
    ----------
    emb : array-like of shape (N, d)
        The embeddings the selection saw (untransformed, to detect the bias of raw vectors).
    candidate_idx : array-like of int, shape (m,)
        Absolute row indices into Z of the candidates the picks were drawn from.
    picked_idx : array-like of int, shape (k,)
        Absolute row indices into Z of the picks; must not be empty.
    threshold : float, default NORM_BIAS_THRESHOLD
    block_rows : int, default 16384

    Returns
    -------
    NormBias
    """
    if not (isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and threshold > 0):
        raise ValidationError(f"threshold must be a positive number; got {threshold!r}.")
    picks_norm = mean_row_norm(emb, picked_idx, block_rows=block_rows)
    cand_norm = mean_row_norm(emb, candidate_idx, block_rows=block_rows)
    if cand_norm == 0:
        raise ValidationError("The candidates' embeddings are all zero; a norm ratio is undefined.")
    return NormBias(
        ratio=picks_norm / cand_norm,
        picks_mean_norm=picks_norm,
        candidates_mean_norm=cand_norm,
        n_picks=int(np.asarray(picked_idx).size),
        n_candidates=int(np.asarray(candidate_idx).size),
        threshold=float(threshold),
    )


def norm_ratio(emb: Any, candidate_idx: Any, picked_idx: Any, *, block_rows: int = _BLOCK_ROWS) -> float:
    """Mean L2 norm of ``emb[picked_idx]`` over mean L2 norm of ``emb[candidate_idx]``.

    Index spaces: both are absolute row indices into ``emb``. See :func:`norm_bias`.

    Examples
    --------
    >>> import numpy as np
    >>> from diverseevol.norm_bias import norm_ratio
    >>> emb = np.array([[1.0, 0.0], [0.0, 3.0], [2.0, 0.0]])
    >>> norm_ratio(emb, [0, 1, 2], [1])
    1.5
    """
    return norm_bias(emb, candidate_idx, picked_idx, block_rows=block_rows).ratio


def warn_if_norm_biased(
    bias: NormBias, *, where: str = "K-Center", key: str | None = None, stacklevel: int = 2
) -> bool:
    """Issue one :class:`~diverseevol.errors.NormBiasWarning` per ``key`` when ``bias.biased``.

    Parameters
    ----------
    bias : NormBias
    where : str, default "K-Center"
        Names the selection in the message.
    key : str, optional
        Warn at most once per key per process (default: ``where``). A loop passes its run
        directory or sampler name so that ten biased rounds give one warning, not ten.
        :func:`reset_norm_bias_warnings` forgets the keys.
    stacklevel : int, default 2
        Passed to :func:`warnings.warn`.

    Returns
    -------
    bool
        True when a warning was issued now.
    """
    if not bias.biased:
        return False
    key = where if key is None else key
    with _lock:
        if key in _warned:
            return False
        _warned.add(key)
    warnings.warn(bias.message(where), NormBiasWarning, stacklevel=stacklevel + 1)
    return True


def reset_norm_bias_warnings() -> None:
    """Forget which keys have warned (for tests and notebooks)."""
    with _lock:
        _warned.clear()
