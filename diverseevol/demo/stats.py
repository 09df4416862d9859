"""The demo's statistics: mean and t-interval over seeds, K-Center minus random paired by seed, the tables.

:data:`METRICS` is the one list of what the demo measures per (sampler, seed, pool size): the
summary, the tables, the CSV columns and the plots all read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..bakeoff.results import paired_cell

__all__ = ["METRICS", "PAIRED", "DemoMetric", "paired_table", "summarize", "summary_stats", "t_interval"]


@dataclass(frozen=True)
class DemoMetric:
    """One measurement of a demo row.

    Attributes
    ----------
    key : str
        Its key in :attr:`~diverseevol.demo.run.DemoResult.rows` (and the CSV column).
    title : str
        Heading of its table (``{n_tasks}`` is filled in).
    digits : int
        Decimals in the tables.
    axis : str or None
        y-axis label of its plot ``<key>.png`` (``{n_tasks}`` filled in); None: not plotted.
    reference_lines : bool
        Whether the plot draws the ``full`` and ``untrained`` models as horizontal lines.
    """

    key: str
    title: str
    digits: int
    axis: str | None = None
    reference_lines: bool = False


#: What the demo measures, in table order.
METRICS: tuple[DemoMetric, ...] = (
    DemoMetric("accuracy", "Test exact-match accuracy (%)", 1, "test exact-match accuracy (%)", True),
    DemoMetric(
        "heldout_loss",
        "Held-out reference loss (nats per answer token, macro over families; lower is better)",
        3,
        "held-out reference loss (nats/token)",
        True,
    ),
    DemoMetric("rare_accuracy", "Accuracy on the rarer half of the task families (%)", 1),
    DemoMetric(
        "coverage", "Task coverage (families in the pool, of {n_tasks})", 1, "task families in the pool (of {n_tasks})"
    ),
    DemoMetric(
        "vendi",
        "Base-model Vendi of the pool (the base model's centred embeddings of Z, one space for every recipe)",
        2,
        "base-model Vendi of the pool",
    ),
)

#: The metrics compared between K-Center and random, paired by seed.
PAIRED: tuple[str, str] = ("accuracy", "heldout_loss")


def t_interval(values: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """Mean and two-sided Student-t confidence interval of the mean.

    Parameters
    ----------
    values : sequence of float, length n
    confidence : float, default 0.95

    Returns
    -------
    dict
        ``mean``, ``low``, ``high`` (None when n < 2) and ``n``.
    """
    from ..bakeoff.stats import t_interval as mean_and_interval

    x = [float(v) for v in values if v is not None]
    if not x:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean, low, high = mean_and_interval(x, confidence)
    return {"mean": mean, "low": low, "high": high, "n": len(x)}


def summary_stats(rows: Sequence[Mapping[str, Any]], samplers: Sequence[str]) -> dict[str, Any]:
    """Per sampler and pool size: mean and 95% t-interval over seeds; K-Center minus random paired by seed.

    Parameters
    ----------
    rows : sequence of dict
        :attr:`DemoResult.rows`.
    samplers : sequence of str
        The samplers compared (``full`` and ``untrained`` rows are summarised too).

    Returns
    -------
    dict
        ``by_sampler``: list of ``{sampler, pool_size, n_seeds, <metric>: t_interval}``;
        ``kcenter_minus_random``: list of ``{pool_size, n_seeds, accuracy, heldout_loss}``
        (t-intervals of the per-seed differences), plus ``"selected"`` (pool sizes after
        round 0, each seed's differences averaged over them) when both samplers ran.
    """
    names = [*samplers, "full", "untrained"]
    by_sampler = []
    for name in names:
        for n in sorted({int(r["pool_size"]) for r in rows if r["sampler"] == name}):
            mine = [r for r in rows if r["sampler"] == name and int(r["pool_size"]) == n]
            entry: dict[str, Any] = {"sampler": name, "pool_size": n, "n_seeds": len(mine)}
            for metric in METRICS:
                entry[metric.key] = t_interval([r.get(metric.key) for r in mine])
            by_sampler.append(entry)
    diffs: list[dict[str, Any]] = []
    if {"kcenter", "random"} <= set(samplers):
        def table(name: str) -> dict[tuple[int, int], Mapping[str, Any]]:
            return {(int(r["seed"]), int(r["pool_size"])): r for r in rows if r["sampler"] == name}

        kc, rnd = table("kcenter"), table("random")
        sizes = sorted({n for _, n in kc})
        per_seed: dict[int, dict[str, list[float]]] = {}
        for n in sizes:
            pairs = [(kc[key], rnd[key]) for key in kc if key[1] == n and key in rnd]
            entry = {"pool_size": n, "n_seeds": len(pairs)}
            for key in PAIRED:
                d = [a[key] - b[key] for a, b in pairs if a.get(key) is not None and b.get(key) is not None]
                entry[key] = t_interval(d)
            diffs.append(entry)
            if n != sizes[0]:
                for a, b in pairs:
                    store = per_seed.setdefault(int(a["seed"]), {key: [] for key in PAIRED})
                    for key in store:
                        if a.get(key) is not None and b.get(key) is not None:
                            store[key].append(a[key] - b[key])
        if per_seed:
            diffs.append({
                "pool_size": "selected",
                "n_seeds": len(per_seed),
                **{key: t_interval([float(np.mean(v[key])) for v in per_seed.values() if v[key]])
                   for key in PAIRED},
            })
    return {"confidence": 0.95, "by_sampler": by_sampler, "kcenter_minus_random": diffs}


def _cell(stat: Mapping[str, Any] | None, digits: int) -> str:
    if not stat or stat.get("mean") is None:
        return "-"
    text = f"{stat['mean']:.{digits}f}"
    if stat.get("low") is not None:
        text += f" [{stat['low']:.{digits}f}, {stat['high']:.{digits}f}]"
    return text


def _verdict(d: Mapping[str, Any], what: str) -> str:
    """One plain sentence on a K-Center minus random difference (accuracy: higher is better; loss: lower)."""
    acc, loss = d.get("accuracy") or {}, d.get("heldout_loss") or {}
    parts = []
    for stat, metric, better in ((loss, "held-out loss", -1), (acc, "accuracy", 1)):
        if stat.get("mean") is None:
            continue
        m = stat["mean"]
        if stat.get("low") is None:
            word = "ahead of" if m * better > 0 else "not ahead of"
            parts.append(f"on {metric} K-Center is {word} random ({m:+.3g}, one seed: no interval)")
        elif stat["low"] * better > 0 and stat["high"] * better > 0:
            parts.append(f"on {metric} K-Center is ahead of random ({_cell(stat, 3)}, the interval excludes 0)")
        elif stat["low"] * better < 0 and stat["high"] * better < 0:
            parts.append(f"on {metric} K-Center is BEHIND random ({_cell(stat, 3)}, the interval excludes 0)")
        else:
            parts.append(f"on {metric} K-Center is not distinguishable from random ({_cell(stat, 3)}, "
                         f"the interval includes 0)")
    return f"{what}: " + "; ".join(parts) + "." if parts else ""


def _paired_verdict(loss: Mapping[str, Any] | None, acc: Mapping[str, Any] | None) -> str:
    """Ahead / behind / not distinguishable, from the Bonferroni-adjusted intervals (loss: lower is better)."""
    words = []
    for p, sign, what in ((loss, -1, "loss"), (acc, 1, "accuracy")):
        if p is None or p.get("low_adj") is None:
            continue
        if p["low_adj"] * sign > 0 and p["high_adj"] * sign > 0:
            words.append(f"ahead on {what}")
        elif p["low_adj"] * sign < 0 and p["high_adj"] * sign < 0:
            words.append(f"behind on {what}")
    if not words:
        return "no interval (one seed)" if all(p is None or p.get("low_adj") is None for p in (loss, acc)) \
            else "not distinguishable"
    return ", ".join(words)


def paired_table(paired: Sequence[Mapping[str, Any]], samplers: Sequence[str], baseline: str) -> list[str]:
    """Markdown lines: each recipe minus ``baseline`` at the final pool, paired by seed.

    Parameters
    ----------
    paired : sequence of dict
        :func:`diverseevol.bakeoff.paired_differences` rows (``sampler``, ``pool_size``, ``metric``,
        ``mean``, ``low_adj``, ``high_adj``, ``n``, ``n_comparisons``).
    samplers : sequence of str
        Row order.
    baseline : str
    """
    if not paired:
        return []
    final = max(int(p["pool_size"]) for p in paired)
    at = {(p["sampler"], p["metric"]): p for p in paired if int(p["pool_size"]) == final}
    m = max(int(p["n_comparisons"]) for p in paired)
    lines = [f"**Each recipe minus {baseline} at the final pool ({final} records), paired by seed** (mean "
             f"[Bonferroni-adjusted 95% interval over {m} comparisons]; accuracy: > 0 is better, loss: < 0 is better)",
             "", "| recipe | seeds | accuracy difference (points) | held-out loss difference | verdict |",
             "|---|---:|---:|---:|---|"]
    for s in samplers:
        acc, loss = at.get((s, "accuracy")), at.get((s, "heldout_loss"))
        if acc is None and loss is None:
            continue
        n = (acc or loss or {}).get("n", 0)
        lines.append(f"| {s} | {n} | {paired_cell(acc, 2)} | {paired_cell(loss, 3)} | {_paired_verdict(loss, acc)} |")
    return lines + [""]


def summarize(rows: Sequence[Mapping[str, Any]], samplers: Sequence[str], n_tasks: int,
              summary: Mapping[str, Any] | None = None, *, paired: Sequence[Mapping[str, Any]] = (),
              baseline: str = "random") -> str:
    """Markdown tables: each metric by pool size (rows) and sampler (columns), mean [95% CI] over seeds.

    Parameters
    ----------
    rows : sequence of dict
        :attr:`DemoResult.rows`.
    samplers : sequence of str
        Column order.
    n_tasks : int
        Number of task families (for the coverage header).
    summary : dict, optional
        :func:`summary_stats` of the rows (computed when not given).
    paired : sequence of dict, optional
        Each recipe minus ``baseline`` paired by seed (:func:`diverseevol.bakeoff.paired_differences`):
        adds the final pool's table of differences.
    baseline : str, default "random"
    """
    summary = summary or summary_stats(rows, samplers)
    seeds = sorted({int(r["seed"]) for r in rows})
    stat = {(e["sampler"], e["pool_size"]): e for e in summary["by_sampler"]}
    sizes = sorted({int(r["pool_size"]) for r in rows if r["sampler"] in samplers})
    ci = "mean [95% t-interval]" if len(seeds) > 1 else "one seed, no interval"
    parts = [f"Seeds {', '.join(map(str, seeds))}; each cell is the {ci} over seeds.\n"]
    for metric in METRICS:
        key, title, digits = metric.key, metric.title.format(n_tasks=n_tasks), metric.digits
        if all(r.get(key) is None for r in rows):
            continue
        parts.append(f"**{title}**\n")
        parts.append("| pool size | " + " | ".join(samplers) + " |")
        parts.append("|---:|" + "---:|" * len(samplers))
        for n in sizes:
            parts.append(f"| {n} | " + " | ".join(_cell(stat.get((s, n), {}).get(key), digits) for s in samplers) + " |")
        for name in ("full", "untrained"):
            for (s, n), e in stat.items():
                if s == name:
                    parts.append(f"| {name} ({n}) | " + _cell(e.get(key), digits) + " |" + " |" * (len(samplers) - 1))
        parts.append("")
    parts.extend(paired_table(paired, samplers, baseline))
    diffs = summary.get("kcenter_minus_random") or []
    if diffs:
        parts.append("**K-Center minus random, paired by seed** (accuracy: > 0 favours K-Center; "
                     "loss: < 0 favours K-Center)\n")
        parts.append("| pool size | seeds | accuracy difference (points) | held-out loss difference |")
        parts.append("|---:|---:|---:|---:|")
        for d in diffs:
            parts.append(f"| {d['pool_size']} | {d['n_seeds']} | {_cell(d['accuracy'], 2)} | "
                         f"{_cell(d['heldout_loss'], 3)} |")
        parts.append("")
        final = [d for d in diffs if d["pool_size"] != "selected"][-1]
        parts.append(_verdict(final, f"At the final pool ({final['pool_size']} records)"))
        sel = [d for d in diffs if d["pool_size"] == "selected"]
        if sel:
            parts.append(_verdict(sel[0], "Averaged over the pools after round 0"))
        parts.append("")
    return "\n".join(parts) + "\n"
