"""The demo's files: results (CSV, JSON), the tables, the plots, and the library's per-run report."""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._files import write_figure, write_json
from .stats import METRICS

__all__ = ["library_report", "plot_summary", "write_outputs"]

logger = logging.getLogger(__name__)


def write_outputs(
    out: Path, settings: Mapping[str, Any], rows: list[dict[str, Any]], summary: Mapping[str, Any], table: str
) -> list[Path]:
    """Write ``results.csv`` (one line per row, the :data:`~.stats.METRICS` columns), ``table.md`` and
    ``results.json`` (``settings``: :meth:`DemoSettings.to_dict`, the rows and the summary)."""
    keys = ["sampler", "seed", "round", "pool_size", *(m.key for m in METRICS)]
    with (out / "results.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (out / "table.md").write_text(table, encoding="utf-8")
    write_json(out / "results.json", {"settings": dict(settings), "rows": rows, "summary": summary})
    return [out / "results.csv", out / "table.md", out / "results.json"]


def plot_summary(summary: Mapping[str, Any], samplers: Sequence[str], out_dir: Path, n_tasks: int) -> list[Path]:
    """One PNG per plotted metric of :data:`~.stats.METRICS` (mean over seeds by pool size, 95% t-interval shaded)."""
    from .._optional import require

    require("matplotlib", feature="the demo's plots (or pass --no-plots)", extra="plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    entries = summary["by_sampler"]
    for metric in (m for m in METRICS if m.axis is not None):
        key, label, fname = metric.key, metric.axis.format(n_tasks=n_tasks), f"{metric.key}.png"
        fig, ax = plt.subplots(figsize=(5.8, 4.0))
        drawn = False
        for s in samplers:
            pts = [(e["pool_size"], e[key]) for e in entries if e["sampler"] == s and e[key]["mean"] is not None]
            if not pts:
                continue
            pts.sort(key=lambda p: p[0])
            x = [p[0] for p in pts]
            (line,) = ax.plot(x, [p[1]["mean"] for p in pts], marker="o", label=s,
                              linewidth=2.2 if s == "kcenter" else 1.4)
            if all(p[1]["low"] is not None for p in pts):
                ax.fill_between(x, [p[1]["low"] for p in pts], [p[1]["high"] for p in pts], alpha=0.15,
                                color=line.get_color())
            drawn = True
        for name, style in (("full", "--"), ("untrained", ":")):
            for e in entries:
                if e["sampler"] == name and e[key]["mean"] is not None and metric.reference_lines:
                    ax.axhline(e[key]["mean"], linestyle=style, color="gray", label=f"{name} (mean)")
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xlabel("training pool size")
        ax.set_ylabel(label)
        ax.set_title("mean over seeds, shaded: 95% t-interval", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
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
