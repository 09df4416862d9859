"""Plots of a bake-off: each metric against pool size, one line per recipe.

A band (95% t-interval over seeds) is drawn only where a recipe has at least two seeds at that
pool size; the title says how many seeds each point averages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._files import write_figure
from .._optional import require
from .settings import LOWER_IS_BETTER
from .stats import t_interval

__all__ = ["plot_bakeoff"]


def plot_bakeoff(result: Any, out_dir: Path) -> list[Path]:
    """Write ``<metric>.png`` for every compared metric present in the rows, and ``mean_words.png``."""
    require("matplotlib", feature="bake-off plots", extra="plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.settings
    metrics = [m for m in s.metrics if any(r.get(m) is not None for r in result.rows)] + ["mean_words"]
    written = []
    for metric in metrics:
        fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
        n_seeds = set()
        for recipe in s.samplers:
            mine = [r for r in result.rows if r["sampler"] == recipe and r.get(metric) is not None]
            sizes = sorted({r["pool_size"] for r in mine})
            if not sizes:
                continue
            stats = [t_interval([r[metric] for r in mine if r["pool_size"] == size]) for size in sizes]
            n_seeds.update(len([r for r in mine if r["pool_size"] == size]) for size in sizes)
            means = np.array([m for m, _, _ in stats])
            line, = ax.plot(sizes, means, marker="o", label=recipe)
            banded = [(x, lo, hi) for x, (_, lo, hi) in zip(sizes, stats) if lo is not None]
            if len(banded) >= 2:
                xs, lo, hi = zip(*banded)
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
        seeds_text = f"{min(n_seeds)} seed" + ("s" if min(n_seeds) > 1 else "") if n_seeds else "no data"
        band_text = "; shaded: 95% t-interval over seeds" if n_seeds and min(n_seeds) >= 2 else ""
        better = {True: " (lower is better)", False: " (higher is better)"}.get(LOWER_IS_BETTER.get(metric), "")
        ax.set_title(f"{metric}{better}: mean over {seeds_text}{band_text}", fontsize=10)
        ax.set_xlabel("pool size (records)")
        ax.set_ylabel(metric if metric != "mean_words" else "mean words per pool record")
        ax.legend(fontsize=8)
        written.append(write_figure(fig, out_dir / f"{metric}.png", dpi=110))
        plt.close(fig)
    return written
