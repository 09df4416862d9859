"""The demo's files: results (CSV, JSON), the tables, the plots, and the library's per-run report."""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._files import write_figure, write_json
from .stats import METRICS

__all__ = ["library_report", "plot_summary", "plot_title", "write_outputs"]

logger = logging.getLogger(__name__)


def write_outputs(
    out: Path, settings: Mapping[str, Any], rows: list[dict[str, Any]], references: list[dict[str, Any]],
    paired: list[dict[str, Any]], summary: Mapping[str, Any], table: str,
) -> list[Path]:
    """Write ``results.csv`` (one line per row and reference row, the :data:`~.stats.METRICS` columns),
    ``table.md`` and ``results.json``.

    ``results.json`` has the bake-off's keys (``rows``, ``paired``, ``heldout_idx``: empty, the
    held-out set is the suite's own test questions) and the demo's: ``settings``
    (:meth:`DemoSettings.to_dict`), ``reference_rows`` (full and untrained models), ``summary``
    and ``generation_metric``.
    """
    keys = ["sampler", "seed", "round", "pool_size", *(m.key for m in METRICS)]
    with (out / "results.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows + references)
    (out / "table.md").write_text(table, encoding="utf-8")
    write_json(out / "results.json", {
        "settings": dict(settings), "rows": rows, "paired": paired, "heldout_idx": [],
        "reference_rows": references, "summary": summary,
        "generation_metric": "accuracy: exact match (%) of greedy answers to the suite's test questions, "
                             "mean over task families",
        "multiple_comparisons": "Bonferroni over the recipes compared with the baseline: low_adj/high_adj",
    })
    return [out / "results.csv", out / "table.md", out / "results.json"]


def plot_title(n_seeds: int) -> str:
    """The demo plots' title: how many seeds each point averages, and a band only with two or more."""
    if n_seeds >= 2:
        return f"mean over {n_seeds} seeds; shaded: 95% t-interval over seeds"
    return "one seed (no interval)" if n_seeds == 1 else "no data"


def _reference_marks(ax: Any, refs: Sequence[tuple[str, str, float]], lo: float, hi: float) -> list[str]:
    """Draw each reference model's mean as a horizontal line when it lies within half the range's
    width of the recipes' range ``[lo, hi]``; one farther out (the untrained model's loss) is
    returned as a note for the title instead, so it does not squeeze the recipes' lines."""
    span = max(hi - lo, 1e-9)
    notes = []
    for name, style, value in refs:
        if lo - span / 2 <= value <= hi + span / 2:
            ax.axhline(value, linestyle=style, color="gray", label=f"{name} (mean)")
        else:
            notes.append(f"{name} (mean): {value:.3g}, off this axis")
    return notes


def plot_summary(summary: Mapping[str, Any], samplers: Sequence[str], out_dir: Path, n_tasks: int) -> list[Path]:
    """One PNG per plotted metric of :data:`~.stats.METRICS`: the mean over seeds by pool size.

    The title says over how many seeds; the 95% t-interval is shaded only with two seeds or more.
    The ``full`` and ``untrained`` models are horizontal lines (or a note, when far off the range).
    """
    from .._optional import require

    require("matplotlib", feature="the demo's plots (or pass --no-plots)", extra="plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    entries = summary["by_sampler"]
    n_seeds = min((e["n_seeds"] for e in entries if e["sampler"] in samplers), default=0)
    bounds = {"accuracy": (0.0, 100.0), "rare_accuracy": (0.0, 100.0), "coverage": (0.0, float(n_tasks))}
    for metric in (m for m in METRICS if m.axis is not None):
        key, label, fname = metric.key, metric.axis.format(n_tasks=n_tasks), f"{metric.key}.png"
        fig, ax = plt.subplots(figsize=(8.2, 4.4))
        values: list[float] = []
        for s in samplers:
            pts = [(e["pool_size"], e[key]) for e in entries if e["sampler"] == s and e[key]["mean"] is not None]
            if not pts:
                continue
            pts.sort(key=lambda p: p[0])
            x = [p[0] for p in pts]
            (line,) = ax.plot(x, [p[1]["mean"] for p in pts], marker="o", label=s,
                              linewidth=2.2 if s == "kcenter" else 1.2)
            values += [p[1]["mean"] for p in pts]
            if n_seeds >= 2 and all(p[1]["low"] is not None for p in pts):
                # A t-interval may leave the metric's range (coverage below 0 with 2 seeds): clip it there.
                lo_b, hi_b = bounds.get(key, (-np.inf, np.inf))
                lows = [max(p[1]["low"], lo_b) for p in pts]
                highs = [min(p[1]["high"], hi_b) for p in pts]
                ax.fill_between(x, lows, highs, alpha=0.12, color=line.get_color())
                values += lows + highs
        if not values:
            plt.close(fig)
            continue
        notes: list[str] = []
        if metric.reference_lines:
            refs = [(name, style, e[key]["mean"]) for name, style in (("full", "--"), ("untrained", ":"))
                    for e in entries if e["sampler"] == name and e[key]["mean"] is not None]
            notes = _reference_marks(ax, refs, min(values), max(values))
        ax.set_xlabel("training pool size (records)")
        ax.set_ylabel(label)
        ax.set_title("\n".join([plot_title(n_seeds), *notes]), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)  # beside, not on, the data
        fig.tight_layout()
        path = out_dir / fname
        write_figure(fig, path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def library_report(run_dirs: Mapping[str, Path], out: Path) -> list[Path]:
    """The library's per-run report (tables + plots of every logged metric)."""
    from ..report import write_report

    try:
        result = write_report([str(p) for p in run_dirs.values()], str(out))
    except Exception as exc:  # noqa: BLE001 - the demo's own results are already written
        logger.warning("the per-run report failed (%s: %s); the demo's tables and plots are written", type(exc).__name__, exc)
        return []
    return [Path(f) for f in result.values()]
