"""Diversity report of a selected subset: Vendi, NovelSum, covering radius, norm ratio, labels.

:func:`subset_report` answers "is this subset better than that one?" with numbers that need only
the embeddings (and optional per-record labels, e.g. Dolly's ``category``):

* **Vendi** (cosine kernel, q = 1; :func:`diverseevol.vendi_score`): effective number of
  distinct records.
* **NovelSum** (:func:`~diverseevol.measurements.novelsum`): the sample-novelty diversity measure
  of Yang et al. (2025).
* **covering radius** (:func:`~diverseevol.measurements.covering_radius`): the largest distance
  from a reference record to its nearest subset member (smaller = every record has a close
  representative).
* **norm ratio** (:func:`diverseevol.norm_bias.norm_ratio`): mean embedding norm of the subset
  over that of the reference rows; far above 1 means long-norm outliers were favoured.
* **labels**: per-label counts and their Shannon entropy (nats), against the reference's.

Every figure is computed by :mod:`diverseevol.measurements`, the one home of pool measurements
(``covering_radius``, ``novelsum`` and ``label_entropy`` are re-exported here). Importing this
module needs numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ._validation import check_embeddings, check_index_array
from .diversity import vendi_score
from .errors import ValidationError
from .measurements import (
    RADIUS_METRICS,
    check_novelsum_params,
    covering_radius,
    label_counts,
    label_entropy,
    novelsum,
)
from .norm_bias import norm_ratio

__all__ = ["SubsetReport", "covering_radius", "label_entropy", "novelsum", "subset_report"]

_BLOCK_ROWS = 2048


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
        Keyword arguments for :func:`~diverseevol.measurements.novelsum` (``alpha``, ``beta``,
        ``n_neighbors``).
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
    arr = check_embeddings(emb)
    n = arr.shape[0]
    sub = check_index_array(subset_idx, n, name="subset_idx", allow_empty=False)
    ref = np.arange(n, dtype=np.int64) if reference_idx is None else check_index_array(
        reference_idx, n, name="reference_idx", allow_empty=False
    )
    if metric not in RADIUS_METRICS:
        raise ValidationError(f"metric must be one of {list(RADIUS_METRICS)}; got {metric!r}.")
    ns_params = check_novelsum_params(novelsum_params)
    counts = entropy = ref_entropy = None
    if labels is not None:
        if len(labels) != arr.shape[0]:
            raise ValidationError(
                f"labels must have one entry per record of Z ({arr.shape[0]}); got {len(labels)}."
            )
        lab = np.asarray(labels, dtype=object)
        picked = lab[sub].tolist()
        counts = label_counts(picked)
        entropy = label_entropy(picked)
        ref_entropy = label_entropy(lab[ref].tolist())
    return SubsetReport(
        n=int(sub.size),
        vendi=float(vendi_score(arr[np.sort(sub)], q=q)),
        novelsum=novelsum(arr, sub, reference_idx=ref, block_rows=block_rows, **ns_params),
        covering_radius=covering_radius(arr, sub, reference_idx=ref, metric=metric, block_rows=block_rows),
        norm_ratio=norm_ratio(arr, ref, sub),
        label_counts=counts,
        label_entropy=entropy,
        reference_label_entropy=ref_entropy,
        params={"q": q, "metric": metric, **ns_params},
    )
