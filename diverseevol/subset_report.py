"""Diversity report of a selected subset: Vendi, NovelSum, covering radius, norm ratio, labels.

:func:`subset_report` answers "is this subset better than that one?" with numbers that need only
the embeddings (and optional per-record labels, e.g. Dolly's ``category``):

* **Vendi** (cosine kernel, q = 1; :func:`diverseevol.vendi_score`): effective number of
  distinct records.
* **NovelSum** (:func:`novelsum`): the sample-novelty diversity measure of Yang et al. (2025).
* **covering radius**: the largest distance from a reference record to its nearest subset
  member (smaller = every record has a close representative).
* **norm ratio** (:func:`diverseevol.norm_bias.norm_ratio`): mean embedding norm of the subset
  over that of the reference rows; far above 1 means long-norm outliers were favoured.
* **labels**: per-label counts and their Shannon entropy (nats), against the reference's.

Importing this module needs numpy only.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ._validation import check_embeddings, check_index_array
from .diversity import vendi_score
from .errors import ValidationError
from .norm_bias import norm_ratio

__all__ = ["SubsetReport", "covering_radius", "label_entropy", "novelsum", "subset_report"]

_BLOCK_ROWS = 2048
_METRICS = ("cosine", "euclidean")


def _checked_subset(emb: Any, subset_idx: Any) -> tuple[np.ndarray, np.ndarray]:
    """The checked embeddings (N, d) and subset (n,) (absolute row indices into Z, not empty)."""
    arr = check_embeddings(emb)
    return arr, check_index_array(subset_idx, arr.shape[0], name="subset_idx", allow_empty=False)


def _reference_rows(reference_idx: Any, n: int) -> np.ndarray:
    """The records to cover, int64 absolute row indices into Z: all ``n`` when ``reference_idx`` is None."""
    if reference_idx is None:
        return np.arange(n, dtype=np.int64)
    return check_index_array(reference_idx, n, name="reference_idx", allow_empty=False)


def _unit(x: np.ndarray, name: str = "emb") -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    if (norms == 0).any():
        raise ValidationError(f"{name} has an all-zero row; cosine distance is undefined for it.")
    return x / norms[:, None]


def _rows(emb: np.ndarray, idx: np.ndarray) -> np.ndarray:
    order = np.argsort(idx, kind="stable")
    out = np.empty((idx.size, emb.shape[1]), dtype=np.float64)
    out[order] = np.asarray(emb[idx[order]], dtype=np.float64)
    return out


def _density(
    emb: np.ndarray, subset: np.ndarray, reference: np.ndarray, n_neighbors: int, block_rows: int
) -> np.ndarray:
    """σ(x) = 1 / mean cosine distance of x to its ``n_neighbors`` nearest reference rows, itself excluded."""
    ref = reference
    kk = min(n_neighbors, ref.size - 1) if np.isin(subset, ref).any() else min(n_neighbors, ref.size)
    if kk < 1:
        raise ValidationError("NovelSum's density factor needs at least 2 reference rows.")
    sub_u = _unit(_rows(emb, subset))
    mean_dist = np.empty(subset.size, dtype=np.float64)
    # Nearest neighbours by running top-kk over reference blocks; self matches (same row index) skipped.
    best = np.full((subset.size, kk), np.inf)
    for start in range(0, ref.size, block_rows):
        part = ref[start : start + block_rows]
        dist = 1.0 - sub_u @ _unit(_rows(emb, part)).T
        np.maximum(dist, 0.0, out=dist)
        dist[subset[:, None] == part[None, :]] = np.inf
        both = np.concatenate([best, dist], axis=1)
        best = np.partition(both, kk - 1, axis=1)[:, :kk] if both.shape[1] > kk else both
    mean_dist[:] = best.mean(axis=1)
    return 1.0 / np.maximum(mean_dist, 1e-12)


def novelsum(
    emb: Any,
    subset_idx: Any,
    *,
    reference_idx: Any = None,
    alpha: float = 1.0,
    beta: float = 0.5,
    n_neighbors: int = 10,
    block_rows: int = _BLOCK_ROWS,
) -> float:
    """NovelSum diversity of a subset (Yang et al., 2025).

    From "Measuring Data Diversity for Instruction Tuning: A Systematic Analysis and A Reliable
    Metric" (Yang, Nan, Ye, et al., ACL 2025, arXiv:2502.17184). Each record's *novelty* is a
    proximity-weighted sum of its density-aware distances to the other records of the subset,
    and the subset's diversity is the sum of the novelties::

        NovelSum(X) = Σ_{x_i ∈ X} v(x_i)
        v(x_i)      = Σ_{x_j ∈ X, j ≠ i} w(x_i, x_j)^α · σ(x_j)^β · d(x_i, x_j)

    with d the cosine distance, w(x_i, x_j) = 1 / π_i(j) where π_i(j) is the rank of x_j among
    the other subset members by distance to x_i (1 = nearest; equal distances ranked by
    position), so near neighbours weigh most, and σ(x) a density factor: the inverse of the
    mean cosine distance from x to its ``n_neighbors`` nearest records of a reference set
    (itself excluded), so distances from dense regions count more. ``beta=0`` drops the density
    factor (the paper's ablation; no reference set needed).

    Parameters
    ----------
    emb : array-like of shape (N, d)
        Embeddings of Z (``np.memmap`` read in blocks).
    subset_idx : array-like of int, shape (n,)
        Absolute row indices into Z of the subset, n >= 2.
    reference_idx : array-like of int, shape (r,), optional
        Absolute row indices into Z of the reference set for the density factor; all N rows
        when None (the data the subset was drawn from).
    alpha : float, default 1.0
        Power of the proximity weight.
    beta : float, default 0.5
        Power of the density factor.
    n_neighbors : int, default 10
        Neighbours for the density factor.
    block_rows : int, default 2048

    Returns
    -------
    float
        Grows with n: compare subsets of equal size.

    Notes
    -----
    Cost: O(n² log n) for the ranks (an n x n block of distances at a time, ``block_rows`` rows)
    plus O(n · r · d) for the density factor.
    """
    arr, sub = _checked_subset(emb, subset_idx)
    if sub.size < 2:
        raise ValidationError(f"NovelSum needs a subset of at least 2 records; got {sub.size}.")
    for name, value in (("alpha", alpha), ("beta", beta)):
        bad = isinstance(value, bool) or not isinstance(value, numbers.Real)
        if bad or not math.isfinite(value) or value < 0:
            raise ValidationError(f"{name} must be a finite number >= 0; got {value!r}.")
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, numbers.Integral) or n_neighbors < 1:
        raise ValidationError(f"n_neighbors must be a positive int; got {n_neighbors!r}.")
    if beta > 0:
        ref = _reference_rows(reference_idx, arr.shape[0])
        sigma_b = _density(arr, sub, ref, int(n_neighbors), block_rows) ** beta
    else:
        sigma_b = np.ones(sub.size)
    u = _unit(_rows(arr, sub), "emb[subset_idx]")
    n = sub.size
    weights = (1.0 / np.arange(1, n, dtype=np.float64)) ** alpha  # by rank 1..n-1
    total = 0.0
    for start in range(0, n, block_rows):
        block = u[start : start + block_rows]
        dist = np.maximum(1.0 - block @ u.T, 0.0)
        rows = np.arange(len(block))
        dist[rows, start + rows] = np.inf  # self goes last in the ranking and is dropped
        order = np.argsort(dist, axis=1, kind="stable")[:, : n - 1]
        d_sorted = np.take_along_axis(dist, order, axis=1)
        total += float(((d_sorted * sigma_b[order]) @ weights).sum())
    return total


def covering_radius(
    emb: Any,
    subset_idx: Any,
    *,
    reference_idx: Any = None,
    metric: str = "cosine",
    block_rows: int = _BLOCK_ROWS,
) -> float:
    """Largest distance from a reference record to its nearest subset member.

    Parameters
    ----------
    emb : array-like of shape (N, d)
    subset_idx : array-like of int, shape (n,)
        Absolute row indices into Z.
    reference_idx : array-like of int, shape (r,), optional
        Absolute row indices into Z of the records to cover; all N when None.
    metric : {"cosine", "euclidean"}, default "cosine"
        ``"cosine"``: 1 - cosine similarity (norm-independent, comparable across transforms).
    block_rows : int, default 2048

    Returns
    -------
    float
    """
    if metric not in _METRICS:
        raise ValidationError(f"metric must be one of {list(_METRICS)}; got {metric!r}.")
    arr, sub = _checked_subset(emb, subset_idx)
    ref = _reference_rows(reference_idx, arr.shape[0])
    s = _rows(arr, sub)
    if metric == "cosine":
        s = _unit(s, "emb[subset_idx]")
    s_sq = np.einsum("ij,ij->i", s, s)
    worst = 0.0
    for start in range(0, ref.size, block_rows):
        x = _rows(arr, ref[start : start + block_rows])
        if metric == "cosine":
            d = np.maximum(1.0 - (_unit(x) @ s.T).max(axis=1), 0.0)
        else:
            d2 = np.einsum("ij,ij->i", x, x)[:, None] - 2.0 * (x @ s.T) + s_sq[None, :]
            d = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
        worst = max(worst, float(d.max()))
    return worst


def label_entropy(labels: Sequence[Any]) -> float:
    """Shannon entropy (nats) of the label distribution: ln(#labels) when balanced, 0 for one label."""
    counts = np.fromiter(Counter(labels).values(), dtype=np.float64)
    if counts.size == 0:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


@dataclass(frozen=True)
class SubsetReport:
    """The figures of :func:`subset_report`.

    Attributes
    ----------
    n : int
        Subset size.
    vendi : float
        Vendi score, cosine kernel, order q.
    novelsum : float
    covering_radius : float
        In the report's metric.
    norm_ratio : float
        Mean L2 norm of the subset over the reference rows'.
    label_counts : dict of label -> int, optional
        Per-label counts in the subset (None without labels), sorted by label.
    label_entropy : float, optional
        Their entropy in nats.
    reference_label_entropy : float, optional
        Entropy of the reference rows' labels, for scale.
    """

    n: int
    vendi: float
    novelsum: float
    covering_radius: float
    norm_ratio: float
    label_counts: dict[Any, int] | None = None
    label_entropy: float | None = None
    reference_label_entropy: float | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A plain, JSON-friendly dict (labels as strings)."""
        out = asdict(self)
        if self.label_counts is not None:
            out["label_counts"] = {str(k): int(v) for k, v in self.label_counts.items()}
        return out


def subset_report(
    emb: Any,
    subset_idx: Any,
    *,
    reference_idx: Any = None,
    labels: Sequence[Any] | np.ndarray | None = None,
    q: float = 1.0,
    metric: str = "cosine",
    novelsum_params: dict[str, Any] | None = None,
    block_rows: int = _BLOCK_ROWS,
) -> SubsetReport:
    """Diversity report of a subset of Z.

    Parameters
    ----------
    emb : array-like of shape (N, d)
        Embeddings of Z, untransformed (the report must not depend on the selection's transform;
        Vendi, NovelSum and the cosine covering radius ignore norms, the norm ratio measures them).
    subset_idx : array-like of int, shape (n,)
        Absolute row indices into Z of the subset (e.g. the final pool P_T), n >= 2.
    reference_idx : array-like of int, shape (r,), optional
        Absolute row indices into Z of the data the subset represents (covering radius, norm
        ratio, NovelSum's density, the reference label entropy); all N rows when None.
    labels : sequence of shape (N,), optional
        One label per record of Z (Dolly's ``category``); adds per-label counts and entropy.
    q : float, default 1.0
        Vendi order.
    metric : {"cosine", "euclidean"}, default "cosine"
        Covering-radius metric.
    novelsum_params : dict, optional
        Keyword arguments for :func:`novelsum` (``alpha``, ``beta``, ``n_neighbors``).
    block_rows : int, default 2048

    Returns
    -------
    SubsetReport

    Examples
    --------
    >>> import numpy as np
    >>> from diverseevol.subset_report import subset_report
    >>> emb = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    >>> rep = subset_report(emb, np.arange(20), labels=["a", "b"] * 100)
    >>> rep.n, rep.label_counts
    (20, {'a': 10, 'b': 10})
    """
    arr, sub = _checked_subset(emb, subset_idx)
    ref = _reference_rows(reference_idx, arr.shape[0])
    ns_params = dict(novelsum_params or {})
    counts = entropy = ref_entropy = None
    if labels is not None:
        if len(labels) != arr.shape[0]:
            raise ValidationError(
                f"labels must have one entry per record of Z ({arr.shape[0]}); got {len(labels)}."
            )
        lab = np.asarray(labels, dtype=object)
        picked = lab[sub].tolist()
        counts = dict(sorted(Counter(picked).items(), key=lambda kv: str(kv[0])))
        entropy = label_entropy(picked)
        ref_entropy = label_entropy(lab[ref].tolist())
    return SubsetReport(
        n=int(sub.size),
        vendi=float(vendi_score(_rows(arr, sub), q=q)),
        novelsum=novelsum(arr, sub, reference_idx=ref, block_rows=block_rows, **ns_params),
        covering_radius=covering_radius(arr, sub, reference_idx=ref, metric=metric, block_rows=block_rows),
        norm_ratio=norm_ratio(arr, ref, sub),
        label_counts=counts,
        label_entropy=entropy,
        reference_label_entropy=ref_entropy,
        params={"q": q, "metric": metric, **ns_params},
    )
