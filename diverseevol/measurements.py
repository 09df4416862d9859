"""Pool measurements: the one home of every figure measured on a selected pool or subset.

What the loop records for P_t each round (:func:`pool_signals`, keyed by :data:`SIGNAL_KEYS`, the
measurement part of the metrics-row schema :data:`diverseevol.run.result.METRIC_KEYS`), what
:func:`diverseevol.subset_report.subset_report` and ``diverseevol compare`` report, all computed by
the functions here:

* **Vendi** of a pool (:func:`pool_vendi`; :func:`diverseevol.vendi_score` underneath);
* **covering radius** (:func:`covering_radius`): the largest distance from a record to cover to
  its nearest subset member, Euclidean or ``1 - cosine similarity`` (:data:`RADIUS_METRICS`), in
  float64, blockwise (never an N x n matrix);
* **NovelSum** (:func:`novelsum`, Yang et al. 2025);
* **norms** (:func:`mean_squared_norm`, and :func:`~diverseevol.norm_bias.norm_ratio` for the
  norm ratio);
* **labels** (:func:`label_counts`, :func:`label_entropy`).

Index space: every index array is absolute row indices into Z (rows of the embeddings).
Imports numpy, the base modules, :mod:`diverseevol.diversity`, :mod:`diverseevol.norm_bias` and the
kernels' metric vocabulary.
"""

from __future__ import annotations

import logging
from collections import Counter
import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._validation import check_embeddings, check_index_array
from .diversity import vendi_score
from .errors import DiverseEvolError, UnknownOptionError, ValidationError
from ._validation import check_scalar
from .kernels.contract import METRICS
from .norm_bias import mean_row_norm

__all__ = [
    "NOVELSUM_MAX_POOL",
    "NOVELSUM_PARAMS",
    "POOL_MEASUREMENT_KEYS",
    "RADIUS_METRICS",
    "SIGNAL_KEYS",
    "covering_radius",
    "label_counts",
    "label_entropy",
    "mean_squared_norm",
    "check_novelsum_params",
    "novelsum",
    "pool_measurements",
    "pool_signals",
    "pool_vendi",
]

logger = logging.getLogger(__name__)

#: Distances of the covering radius: the K-Center kernels' metrics (``"cosine"``: 1 - cosine similarity).
RADIUS_METRICS: tuple[str, ...] = METRICS

#: What :func:`pool_measurements` returns: P's figures in one embedding space, in this order.
POOL_MEASUREMENT_KEYS: tuple[str, ...] = (
    "vendi",
    "covering_radius",
    "pool_sq_norm_mean",
    "all_sq_norm_mean",
    "norm_ratio",
)

#: Measurements of P_t in M_t's (and the reference) embedding space, as in each metrics row; None when
#: not computed. :data:`diverseevol.run.result.SIGNAL_KEYS` is this tuple.
SIGNAL_KEYS: tuple[str, ...] = (
    "vendi",
    "vendi_reference",
    "covering_radius",
    "pool_sq_norm_mean",
    "all_sq_norm_mean",
    "norm_ratio",
    "novelsum",
    "label_entropy",
    "label_counts",
)

#: NovelSum compares every pair of pool records: :func:`pool_signals` skips it (None) for larger pools.
NOVELSUM_MAX_POOL = 5000

_BLOCK_ROWS = 2048
_NORM_BLOCK_ROWS = 65536


# --------------------------------------------------------------------------------------------
# rows
# --------------------------------------------------------------------------------------------
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
    """``emb[idx]`` as float64, shape (len(idx), d), read in increasing row order (memmap-friendly)."""
    order = np.argsort(idx, kind="stable")
    out = np.empty((idx.size, emb.shape[1]), dtype=np.float64)
    out[order] = np.asarray(emb[idx[order]], dtype=np.float64)
    return out


# --------------------------------------------------------------------------------------------
# norms and Vendi
# --------------------------------------------------------------------------------------------
def mean_squared_norm(emb: Any, rows: np.ndarray | None = None) -> float:
    """Mean of ||x_i||² over ``rows`` of ``emb`` (all rows when None), in float64, read in blocks.

    Parameters
    ----------
    emb : array-like of shape (N, d)
        Embeddings; an ``np.memmap`` is read 65,536 rows at a time.
    rows : ndarray of int, shape (m,), optional
        Row indices into ``emb`` (Z's index space).

    Returns
    -------
    float
        NaN when there are no rows.
    """
    total, count = 0.0, 0
    n = emb.shape[0] if rows is None else rows.size
    for start in range(0, n, _NORM_BLOCK_ROWS):
        stop = start + _NORM_BLOCK_ROWS
        block = np.asarray(emb[start:stop] if rows is None else emb[rows[start:stop]], dtype=np.float64)
        total += float(np.einsum("ij,ij->", block, block))
        count += block.shape[0]
    return total / count if count else float("nan")


def pool_vendi(emb: Any, pool_idx: np.ndarray) -> float | None:
    """Vendi score (q = 1, cosine kernel) of the pool's rows of ``emb``; None if it cannot be computed.

    Parameters
    ----------
    emb : array-like of shape (N, d)
        Embeddings of all of Z.
    pool_idx : ndarray of int, shape (|P|,)
        The pool: row indices into ``emb`` (Z's index space); order does not matter.

    Returns
    -------
    float or None
        None for an empty pool, or when :func:`~diverseevol.vendi_score` refuses the rows (a zero
        row, NaN): that reason is logged as a warning instead of stopping a selection run.
    """
    if pool_idx.size == 0:
        return None
    try:
        return float(vendi_score(emb[np.sort(pool_idx)], q=1.0))
    except DiverseEvolError as exc:
        logger.warning("Vendi score of a pool of %d records not computed: %s", pool_idx.size, exc)
        return None


def _pool_norm_ratio(emb: Any, pool_idx: np.ndarray) -> float | None:
    """Mean L2 norm over ``pool_idx`` (rows of Z) / mean L2 norm over all rows; None if undefined."""
    if pool_idx.size == 0 or emb.shape[0] == 0:
        return None
    data = mean_row_norm(emb, np.arange(emb.shape[0], dtype=np.int64))
    return None if data == 0 else mean_row_norm(emb, pool_idx) / data


# --------------------------------------------------------------------------------------------
# covering radius
# --------------------------------------------------------------------------------------------
def covering_radius(
    emb: Any,
    subset_idx: Any,
    *,
    reference_idx: Any = None,
    metric: str = "cosine",
    block_rows: int = _BLOCK_ROWS,
) -> float:
    """Largest distance from a reference record to its nearest subset member.

    ``max over r in R of min over s in S of dist(x_r, x_s)``: the radius at which the subset covers
    every reference record. The one implementation of the covering radius (the loop's per-round
    figure, :func:`~diverseevol.subset_report.subset_report`, ``diverseevol compare``).

    Parameters
    ----------
    emb : array-like of shape (N, d)
        Embeddings of Z; an ``np.memmap`` is read ``block_rows`` reference rows at a time.
    subset_idx : array-like of int, shape (n,)
        S: absolute row indices into Z, not empty.
    reference_idx : array-like of int, shape (r,), optional
        R, the records to cover: absolute row indices into Z; all N rows when None (rows of S
        among them are at distance 0 and change nothing).
    metric : {"cosine", "euclidean"}, default "cosine"
        ``"cosine"``: 1 - cosine similarity (norm-independent, comparable across transforms);
        ``"euclidean"``: the L2 distance, as in :func:`~diverseevol.kcenter_select`.
    block_rows : int, default 2048
        Reference rows per block: memory O(block_rows * n) besides S's rows.

    Returns
    -------
    float
        >= 0, computed in float64 (squared distances clamped at 0 before the square root).

    Raises
    ------
    ValidationError
        For an unknown metric, an empty subset or reference, bad indices, or an all-zero row with
        ``metric="cosine"``.

    Examples
    --------
    >>> import numpy as np
    >>> from diverseevol.measurements import covering_radius
    >>> emb = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    >>> covering_radius(emb, [0], metric="euclidean")   # row 1 is 5 from row 0
    5.0
    """
    if metric not in RADIUS_METRICS:
        raise ValidationError(f"metric must be one of {list(RADIUS_METRICS)}; got {metric!r}.")
    check_scalar(block_rows, "block_rows", int, min_val=1)
    arr, sub = _checked_subset(emb, subset_idx)
    ref = _reference_rows(reference_idx, arr.shape[0])
    s = _rows(arr, sub)
    if metric == "cosine":
        s = _unit(s, "emb[subset_idx]")
    s_sq = np.einsum("ij,ij->i", s, s)
    worst = 0.0
    for start in range(0, ref.size, int(block_rows)):
        x = _rows(arr, ref[start : start + int(block_rows)])
        if metric == "cosine":
            d = np.maximum(1.0 - (_unit(x) @ s.T).max(axis=1), 0.0)
        else:
            d2 = np.einsum("ij,ij->i", x, x)[:, None] - 2.0 * (x @ s.T) + s_sq[None, :]
            d = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
        worst = max(worst, float(d.max()))
    return worst


# --------------------------------------------------------------------------------------------
# NovelSum
# --------------------------------------------------------------------------------------------
def _density(
    emb: np.ndarray, subset: np.ndarray, reference: np.ndarray, n_neighbors: int, block_rows: int
) -> np.ndarray:
    """σ(x) = 1 / mean cosine distance of x to its ``n_neighbors`` nearest reference rows, itself excluded."""
    ref = reference
    kk = min(n_neighbors, ref.size - 1) if np.isin(subset, ref).any() else min(n_neighbors, ref.size)
    if kk < 1:
        raise ValidationError("NovelSum's density factor needs at least 2 reference rows.")
    sub_u = _unit(_rows(emb, subset))
    # Nearest neighbours by running top-kk over reference blocks; self matches (same row index) skipped.
    best = np.full((subset.size, kk), np.inf)
    for start in range(0, ref.size, block_rows):
        part = ref[start : start + block_rows]
        dist = 1.0 - sub_u @ _unit(_rows(emb, part)).T
        np.maximum(dist, 0.0, out=dist)
        dist[subset[:, None] == part[None, :]] = np.inf
        both = np.concatenate([best, dist], axis=1)
        best = np.partition(both, kk - 1, axis=1)[:, :kk] if both.shape[1] > kk else both
    return 1.0 / np.maximum(best.mean(axis=1), 1e-12)


#: The keyword arguments of :func:`novelsum` that ``novelsum_params`` may set.
NOVELSUM_PARAMS: tuple[str, ...] = ("alpha", "beta", "n_neighbors")


def _check_novelsum_values(alpha: Any, beta: Any, n_neighbors: Any, where: str = "") -> None:
    for name, value in (("alpha", alpha), ("beta", beta)):
        check_scalar(value, f"{where}{name}", float, min_val=0)
    check_scalar(n_neighbors, f"{where}n_neighbors", int, min_val=1)


def check_novelsum_params(params: Any, *, name: str = "novelsum_params") -> dict[str, Any]:
    """Check the NovelSum settings a report or comparison passes on to :func:`novelsum`.

    Parameters
    ----------
    params : Mapping or None
        Some of ``alpha``, ``beta``, ``n_neighbors`` (:data:`NOVELSUM_PARAMS`); None for none.
    name : str, default "novelsum_params"
        The argument's name, for messages.

    Returns
    -------
    dict
        A copy of ``params``.

    Raises
    ------
    UnknownOptionError
        A key that is not one of :data:`NOVELSUM_PARAMS` (a ``TypeError``), with the closest
        accepted key when there is one.
    ValidationError
        ``params`` is no mapping of names, or a value is out of range.
    """
    if params is None:
        return {}
    if not isinstance(params, Mapping) or not all(isinstance(key, str) for key in params):
        raise ValidationError(
            f"{name} must be a mapping of {list(NOVELSUM_PARAMS)} to values, e.g. {{'alpha': 1.0}}; "
            f"got {params!r}."
        )
    unknown = [key for key in params if key not in NOVELSUM_PARAMS]
    if unknown:
        hints = "".join(
            f" Did you mean {close[0]!r} instead of {key!r}?"
            for key in unknown
            if (close := difflib.get_close_matches(key, NOVELSUM_PARAMS, n=1, cutoff=0.6))
        )
        raise UnknownOptionError(
            f"{name}: unknown key(s) {unknown}; NovelSum accepts {list(NOVELSUM_PARAMS)}.{hints} "
            f"Fix the spelling, or leave the key out for its default."
        )
    checked = dict(params)
    defaults = {"alpha": 1.0, "beta": 0.5, "n_neighbors": 10}
    _check_novelsum_values(**{**defaults, **checked}, where=f"{name}: ")
    return checked


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
    _check_novelsum_values(alpha, beta, n_neighbors)
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


# --------------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------------
def label_entropy(labels: Sequence[Any]) -> float:
    """Shannon entropy (nats) of the label distribution: ln(#labels) when balanced, 0 for one label."""
    counts = np.fromiter(Counter(labels).values(), dtype=np.float64)
    if counts.size == 0:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def label_counts(labels: Sequence[Any]) -> dict[Any, int]:
    """Records per label, sorted by label (by their text when labels of different types do not sort).

    Examples
    --------
    >>> from diverseevol.measurements import label_counts
    >>> label_counts(["b", "a", "b"])
    {'a': 1, 'b': 2}
    """
    counts = Counter(labels)
    try:
        keys = sorted(counts)
    except TypeError:
        keys = sorted(counts, key=str)
    return {key: int(counts[key]) for key in keys}


# --------------------------------------------------------------------------------------------
# a pool, as the loop measures it
# --------------------------------------------------------------------------------------------
def pool_measurements(
    emb: Any,
    pool_idx: np.ndarray,
    candidate_idx: np.ndarray,
    metric: str = "euclidean",
    *,
    covering_radius: float | None = None,
) -> dict[str, float | None]:
    """Measure a pool in one embedding space: its Vendi score, covering radius and squared norms.

    Parameters
    ----------
    emb : array-like of shape (N, d)
        Embeddings of all of Z (e.g. M_t's); an ``np.memmap`` is read in blocks.
    pool_idx : ndarray of int, shape (|P|,)
        The pool P: row indices into ``emb`` (Z's index space).
    candidate_idx : ndarray of int, shape (|Q|,)
        The records outside the pool that it should cover (usually Z \\ P), Z's index space.
    metric : {"euclidean", "cosine"}, default "euclidean"
        Distance of the covering radius (:func:`covering_radius`).
    covering_radius : float, optional
        The covering radius when the caller already knows it (the radius of a K-Center
        sampler's first pick); it is then not recomputed.

    Returns
    -------
    dict
        The keys of :data:`POOL_MEASUREMENT_KEYS`: ``"vendi"``: :func:`pool_vendi` of P (None for
        an empty pool); ``"covering_radius"``: max over q in Q of min over p in P of dist(q, p)
        (None when P or Q is empty); ``"pool_sq_norm_mean"``: mean of ||x_p||² over P;
        ``"all_sq_norm_mean"``: mean of ||x_i||² over all N rows; ``"norm_ratio"``: mean L2
        norm ||x_p|| over P divided by the mean L2 norm over all N rows (1 for a random pool;
        far above 1 when a selection favoured long-norm outliers, see
        :mod:`diverseevol.norm_bias`; None for an empty pool or all-zero data).

    Examples
    --------
    >>> import numpy as np
    >>> from diverseevol.measurements import pool_measurements
    >>> emb = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    >>> m = pool_measurements(emb, np.array([0, 1]), np.array([2]))
    >>> round(m["vendi"], 6), m["covering_radius"], m["pool_sq_norm_mean"], m["all_sq_norm_mean"]
    (2.0, 2.0, 2.5, 4.666666666666667)
    >>> m["norm_ratio"]  # (1 + 2) / 2 over (1 + 2 + 3) / 3
    0.75
    """
    pool_idx = np.asarray(pool_idx, dtype=np.int64)
    candidate_idx = np.asarray(candidate_idx, dtype=np.int64)
    radius = covering_radius
    if radius is None and candidate_idx.size and pool_idx.size:
        radius = _covering_radius(emb, pool_idx, reference_idx=candidate_idx, metric=metric)
    return {
        "vendi": pool_vendi(emb, pool_idx),
        "covering_radius": None if radius is None else float(radius),
        "pool_sq_norm_mean": mean_squared_norm(emb, np.sort(pool_idx)),
        "all_sq_norm_mean": mean_squared_norm(emb),
        "norm_ratio": _pool_norm_ratio(emb, pool_idx),
    }


_covering_radius = covering_radius  # pool_measurements' keyword of the same name hides the function


def pool_signals(
    emb: Any,
    pool_idx: np.ndarray,
    candidate_idx: np.ndarray,
    *,
    metric: str = "euclidean",
    covering_radius: float | None = None,
    reference_embeddings: Any = None,
    labels: Sequence[Any] | None = None,
    novelsum_max_pool: int = NOVELSUM_MAX_POOL,
) -> dict[str, Any]:
    """Every measurement of P_t the loop records: a dict keyed by :data:`SIGNAL_KEYS`.

    Parameters
    ----------
    emb : array-like of shape (N, d) or None
        M_t's embeddings of Z; None when the round has none (its figures stay None).
    pool_idx : ndarray of int, shape (|P|,)
        P_t, absolute row indices into Z.
    candidate_idx : ndarray of int, shape (|Q|,)
        Z \\ P_t, absolute row indices into Z (the records the covering radius covers).
    metric : {"euclidean", "cosine"}, default "euclidean"
        Covering-radius distance.
    covering_radius : float, optional
        Already known (a K-Center sampler's first radius): not recomputed.
    reference_embeddings : array-like of shape (N, d_ref), optional
        A fixed embedding space for ``vendi_reference``.
    labels : sequence of length N, optional
        One label per record: ``label_entropy`` and ``label_counts`` of P_t.
    novelsum_max_pool : int, default NOVELSUM_MAX_POOL
        NovelSum compares every pair: computed only for 2 <= |P_t| <= this.

    Returns
    -------
    dict
        Every key of :data:`SIGNAL_KEYS`, in order; None for what was not measured.
    """
    pool_idx = np.asarray(pool_idx, dtype=np.int64)
    signals: dict[str, Any] = dict.fromkeys(SIGNAL_KEYS)
    if emb is not None:
        signals.update(pool_measurements(emb, pool_idx, candidate_idx, metric, covering_radius=covering_radius))
    if reference_embeddings is not None:
        signals["vendi_reference"] = pool_vendi(reference_embeddings, pool_idx)
    if emb is not None and 2 <= pool_idx.size <= novelsum_max_pool:
        signals["novelsum"] = novelsum(emb, pool_idx)
    if labels is not None:
        pool_labels = [labels[i] for i in pool_idx]
        signals["label_entropy"] = label_entropy(pool_labels)
        signals["label_counts"] = label_counts(pool_labels)
    return signals
