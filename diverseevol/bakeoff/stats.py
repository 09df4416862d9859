"""Paired differences between recipes: each recipe minus the baseline, paired by seed.

Imports numpy and scipy only.

Multiple comparisons: with m recipes compared against one baseline, each recipe's interval is
given twice, at the nominal level (``low``/``high``) and Bonferroni-adjusted to the family level
(``low_adj``/``high_adj``, the t quantile at ``1 - (1 - confidence) / (2 m)``), so the family of m
intervals covers all m true differences with probability at least ``confidence``. A recipe is
called better than the baseline only when its adjusted interval excludes 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["paired_differences", "t_interval"]


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float | None, float | None]:
    """Mean and two-sided Student-t interval of ``values``.

    Parameters
    ----------
    values : sequence of float, length n
    confidence : float, default 0.95

    Returns
    -------
    (mean, low, high)
        ``low``/``high`` are None when n < 2 (no spread to estimate).
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("t_interval needs at least one value; got none.")
    mean = float(x.mean())
    if x.size < 2:
        return mean, None, None
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def paired_differences(
    rows: Sequence[Mapping[str, Any]],
    *,
    baseline: str,
    metrics: Sequence[str],
    confidence: float = 0.95,
) -> list[dict[str, Any]]:
    """Each recipe minus ``baseline``, paired by seed, per pool size and metric.

    Parameters
    ----------
    rows : sequence of mapping
        Result rows with at least ``sampler``, ``seed``, ``pool_size`` and the metrics.
    baseline : str
        The ``sampler`` value every other recipe is compared with.
    metrics : sequence of str
        Row keys to compare; a row whose value is None (or not finite) is left out of that
        metric's pairs.
    confidence : float, default 0.95

    Returns
    -------
    list of dict
        One per (recipe, pool size, metric) with at least one seed in both: ``sampler``,
        ``baseline``, ``pool_size``, ``metric``, ``mean``, ``low``, ``high`` (nominal interval),
        ``low_adj``, ``high_adj`` (Bonferroni over the recipes compared), ``n`` (seeds paired),
        ``seeds`` and ``n_comparisons``. Intervals are None for n < 2.
    """
    recipes = sorted({str(r["sampler"]) for r in rows} - {baseline})
    m = max(1, len(recipes))
    adjusted = 1.0 - (1.0 - confidence) / m
    index: dict[tuple[str, int, int], Mapping[str, Any]] = {}
    for r in rows:
        index[(str(r["sampler"]), int(r["pool_size"]), int(r["seed"]))] = r
    out: list[dict[str, Any]] = []
    for recipe in recipes:
        sizes = sorted({size for (s, size, _) in index if s == recipe})
        for size in sizes:
            for metric in metrics:
                seeds, diffs = [], []
                for (s, sz, seed), row in sorted(index.items(), key=lambda kv: kv[0]):
                    if s != recipe or sz != size:
                        continue
                    base = index.get((baseline, size, seed))
                    a = _finite(row.get(metric))
                    b = _finite(base.get(metric)) if base is not None else None
                    if a is None or b is None:
                        continue
                    seeds.append(seed)
                    diffs.append(a - b)
                if not diffs:
                    continue
                mean, low, high = t_interval(diffs, confidence)
                _, low_adj, high_adj = t_interval(diffs, adjusted)
                out.append({
                    "sampler": recipe, "baseline": baseline, "pool_size": size, "metric": metric,
                    "mean": mean, "low": low, "high": high, "low_adj": low_adj, "high_adj": high_adj,
                    "n": len(diffs), "seeds": seeds, "n_comparisons": m,
                })
    return out


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None
