"""Tables and plots of evolution runs: the paper's Table 1, Figure 2 (metric vs pool size) and Figure 3 (Vendi).

Input: run directories (read with :meth:`diverseevol.EvolutionResult.load`), loaded
:class:`~diverseevol.EvolutionResult` objects, or plain metric rows wrapped in
:class:`RunMetrics`. Runs are grouped by a label (the sampler name, plus ``" (one-time)"`` for
one-time runs); several runs under one label (seeds) are averaged.

Metric rows are dicts with at least ``"round"`` and ``"pool_size"``. Pairwise-judge benchmarks
are recognised by their ``"<bench>/rs"`` and ``"<bench>/wtr"`` keys; every other numeric key
outside the loop's own bookkeeping (e.g. ``"accuracy"``, ``"accuracy/<group>"``) is a judge
metric, taken as higher-is-better.

Tables need nothing beyond the standard library; plots need matplotlib (extra ``plot``) and use
the non-interactive Agg backend.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_write, write_figure
from ._optional import is_available, require
from .errors import ValidationError
from .judge.metrics import summarize_rounds
from .judge.report import METRIC_NAMES as PAIRWISE_METRICS
from .run.result import METRIC_KEYS
from .run.settings import ONE_TIME

__all__ = [
    "RunMetrics",
    "headline_metrics",
    "judge_metrics",
    "load_runs",
    "metric_table",
    "pairwise_benchmarks",
    "plot_metrics_vs_pool",
    "round_table",
    "round_table_markdown",
    "summary_table",
    "table_markdown",
    "write_csv",
    "write_report",
]

logger = logging.getLogger(__name__)

#: Keys of a metrics row that are bookkeeping, not judge metrics (the loop's own keys).
_LOOP_KEYS = frozenset(METRIC_KEYS)


@dataclass
class RunMetrics:
    """The metric rows of one run and the label it is grouped under.

    Attributes
    ----------
    label : str
        Group label (the sampler, e.g. ``"kcenter"``); runs with one label are averaged.
    rows : list of dict
        One row per round: ``"round"``, ``"pool_size"`` and any metrics.
    name : str
        The run's own name (its directory name), for per-run rows.
    config : dict
        The run's configuration, if known.
    """

    label: str
    rows: list[dict[str, Any]]
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.name = self.name or self.label
        for i, row in enumerate(self.rows):
            if "pool_size" not in row or "round" not in row:
                raise ValidationError(
                    f"run {self.name!r}: metrics row {i} lacks 'round' or 'pool_size' (keys: {sorted(row)})"
                )
        self.rows = sorted(self.rows, key=lambda r: (int(r["round"]), int(r["pool_size"])))

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], sampler: str, name: str | None = None) -> RunMetrics:
        """Wrap plain metric rows of a run made with ``sampler``."""
        return cls(label=sampler, rows=[dict(r) for r in rows], name=name or sampler)

    @classmethod
    def from_result(cls, result: Any, label: str | None = None) -> RunMetrics:
        """Wrap an :class:`~diverseevol.EvolutionResult` (``.config``, ``.metrics``, ``.run_dir``)."""
        config = dict(getattr(result, "config", {}) or {})
        run_dir = getattr(result, "run_dir", None)
        name = Path(run_dir).name if run_dir else str(config.get("sampler", "run"))
        return cls(label=label or _label(config), rows=[dict(r) for r in result.metrics], name=name, config=config)

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """``(pool_sizes, values)`` over the rounds that have ``key`` (None/missing -> skipped)."""
        xs, ys = [], []
        for row in self.rows:
            v = _num(row.get(key))
            if v is not None and math.isfinite(v):
                xs.append(int(row["pool_size"]))
                ys.append(v)
        return np.asarray(xs, dtype=np.int64), np.asarray(ys, dtype=np.float64)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _label(config: Mapping[str, Any]) -> str:
    sampler = config.get("sampler", "run")
    if isinstance(sampler, Mapping):
        sampler = sampler.get("name", "run")
    label = str(sampler)
    if config.get("mode") == ONE_TIME:
        label += " (one-time)"
    return label


def load_runs(runs: Sequence[Any], labels: Sequence[str] | None = None) -> list[RunMetrics]:
    """Normalise run directories, results or :class:`RunMetrics` into a list of :class:`RunMetrics`.

    Parameters
    ----------
    runs : sequence
        Each a run directory (str or Path, read with ``EvolutionResult.load``), an object with
        ``.config`` and ``.metrics`` (an ``EvolutionResult``), or a :class:`RunMetrics`.
    labels : sequence of str, optional
        Override the group label of each run (default: its sampler).
    """
    if labels is not None and len(labels) != len(runs):
        raise ValidationError(f"got {len(labels)} labels for {len(runs)} runs; give one label per run")
    out: list[RunMetrics] = []
    for i, run in enumerate(runs):
        label = None if labels is None else labels[i]
        if isinstance(run, RunMetrics):
            out.append(RunMetrics(label or run.label, run.rows, run.name, run.config))
        elif isinstance(run, (str, os.PathLike)):
            from .run.result import EvolutionResult

            out.append(RunMetrics.from_result(EvolutionResult.load(run), label))
        elif hasattr(run, "metrics") and hasattr(run, "config"):
            out.append(RunMetrics.from_result(run, label))
        else:
            raise ValidationError(
                f"run {i} is a {type(run).__name__}; expected a run directory, an EvolutionResult or a RunMetrics"
            )
    if not out:
        raise ValidationError("no runs given")
    return out


def _keys(runs: Sequence[RunMetrics]) -> list[str]:
    seen: dict[str, None] = {}
    for run in runs:
        for row in run.rows:
            for k, v in row.items():
                if _num(v) is not None or v is None:
                    seen.setdefault(k, None)
    return list(seen)


def pairwise_benchmarks(runs: Sequence[RunMetrics]) -> list[str]:
    """Benchmarks with both ``"<bench>/rs"`` and ``"<bench>/wtr"`` keys, in first-seen order."""
    keys = _keys(runs)
    return [k[:-3] for k in keys if k.endswith("/rs") and f"{k[:-3]}/wtr" in keys]


def judge_metrics(runs: Sequence[RunMetrics]) -> list[str]:
    """Numeric judge metrics other than the pairwise benchmarks' (e.g. ``"accuracy"``)."""
    benches = set(pairwise_benchmarks(runs))
    out = []
    for k in _keys(runs):
        if k in _LOOP_KEYS or k.startswith("time_"):
            continue
        if any(k == f"{b}/{name}" for b in benches for name in PAIRWISE_METRICS):
            continue
        out.append(k)
    return out


def _groups(runs: Sequence[RunMetrics]) -> dict[str, list[RunMetrics]]:
    groups: dict[str, list[RunMetrics]] = {}
    for run in runs:
        groups.setdefault(run.label, []).append(run)
    return groups


def summary_table(runs: Sequence[Any], benchmarks: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The paper's Table 1 in long form: one row per run and benchmark.

    Parameters
    ----------
    runs : sequence
        As for :func:`load_runs`.
    benchmarks : sequence of str, optional
        Benchmarks to include (default: all found).

    Returns
    -------
    list of dict
        Keys ``label, run, benchmark, peak_rs, n_best, peak_round, best_wtr, best_wtr_round,
        n_rounds, final_rs, final_wtr, invalid`` (``invalid``: unparseable judge replies summed
        over rounds, when recorded). Runs without a finite RS for a benchmark are left out.
    """
    runs = load_runs(runs)
    benches = list(benchmarks) if benchmarks is not None else pairwise_benchmarks(runs)
    table: list[dict[str, Any]] = []
    for bench in benches:
        for run in runs:
            rows = [r for r in run.rows if _finite(r.get(f"{bench}/rs")) and _finite(r.get(f"{bench}/wtr"))]
            if not rows:
                continue
            s = summarize_rounds(
                [int(r["round"]) for r in rows], [int(r["pool_size"]) for r in rows],
                [float(r[f"{bench}/rs"]) for r in rows], [float(r[f"{bench}/wtr"]) for r in rows],
            )
            invalid = [_num(r.get(f"{bench}/invalid")) for r in run.rows]
            table.append(
                {
                    "label": run.label, "run": run.name, "benchmark": bench,
                    "peak_rs": s.peak_rs, "n_best": s.n_best, "peak_round": s.peak_round,
                    "best_wtr": s.best_wtr, "best_wtr_round": s.best_wtr_round, "n_rounds": s.n_rounds,
                    "final_rs": float(rows[-1][f"{bench}/rs"]), "final_wtr": float(rows[-1][f"{bench}/wtr"]),
                    "invalid": int(sum(v for v in invalid if v is not None)) if any(v is not None for v in invalid)
                    else None,
                }
            )
    return table


def metric_table(runs: Sequence[Any], metrics: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Peak of each judge metric (higher is better) per run: one row per run and metric.

    Returns
    -------
    list of dict
        Keys ``label, run, metric, peak, n_at_peak, peak_round, final, final_pool_size``.
    """
    runs = load_runs(runs)
    names = list(metrics) if metrics is not None else judge_metrics(runs)
    table: list[dict[str, Any]] = []
    for metric in names:
        for run in runs:
            rows = [r for r in run.rows if _finite(r.get(metric))]
            if not rows:
                continue
            values = [float(r[metric]) for r in rows]
            best = int(np.argmax(values))
            table.append(
                {
                    "label": run.label, "run": run.name, "metric": metric, "peak": values[best],
                    "n_at_peak": int(rows[best]["pool_size"]), "peak_round": int(rows[best]["round"]),
                    "final": values[-1], "final_pool_size": int(rows[-1]["pool_size"]),
                }
            )
    return table


#: The pool measurements of the per-round table, with their column names (a column shows when a row has it).
ROUND_COLUMNS: tuple[tuple[str, str], ...] = (
    ("vendi", "Vendi"),
    ("vendi_reference", "Vendi (reference)"),
    ("covering_radius", "covering radius"),
    ("norm_ratio", "norm ratio"),
)


def headline_metrics(runs: Sequence[Any]) -> list[str]:
    """The judge metrics the per-round table shows: each pairwise benchmark's RS and WTR, then every
    other judge metric without a group (``"accuracy"``, not ``"accuracy/<group>"``)."""
    runs = load_runs(runs)
    pair = [f"{b}/{m}" for b in pairwise_benchmarks(runs) for m in ("rs", "wtr")]
    return pair + [m for m in judge_metrics(runs) if "/" not in m]


def round_table(runs: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per run and round: pool size, pool measurements and the judge's headline metrics.

    Parameters
    ----------
    runs : sequence
        As for :func:`load_runs`.

    Returns
    -------
    list of dict
        Keys ``label, run, round, pool_size``, then each key of :data:`ROUND_COLUMNS` and of
        :func:`headline_metrics` that any row records (None where a round lacks it).
    """
    runs = load_runs(runs)
    keys = [k for k, _ in ROUND_COLUMNS] + headline_metrics(runs)
    keys = [k for k in keys if any(_finite(row.get(k)) for run in runs for row in run.rows)]
    return [
        {"label": run.label, "run": run.name, "round": int(row["round"]), "pool_size": int(row["pool_size"]),
         **{k: _num(row.get(k)) if _finite(row.get(k)) else None for k in keys}}
        for run in runs for row in run.rows
    ]


def round_table_markdown(table: Sequence[Mapping[str, Any]], *, digits: int = 3) -> str:
    """Render :func:`round_table` rows as one Markdown table per run (empty cells where a round lacks a value)."""
    if not table:
        return ""
    names = dict(ROUND_COLUMNS)
    keys = [k for k in table[0] if k not in ("label", "run", "round", "pool_size")]
    header = ["round", "pool size", *(names.get(k, k) for k in keys)]
    parts = []
    for run in dict.fromkeys((r["run"], r["label"]) for r in table):
        lines = [f"### {run[0]}" + (f" ({run[1]})" if run[1] != run[0] else "") + "\n",
                 "| " + " | ".join(header) + " |", "|" + "|".join(["---:"] * len(header)) + "|"]
        for r in (r for r in table if (r["run"], r["label"]) == run):
            cells = [str(r["round"]), str(r["pool_size"])]
            cells += ["" if r[k] is None else f"{r[k]:.{digits}f}" for k in keys]
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def _finite(value: Any) -> bool:
    v = _num(value)
    return v is not None and math.isfinite(v)


def _fmt(values: Sequence[float], digits: int = 2) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def _fmt_n(values: Sequence[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "/".join(str(v) for v in values)


def table_markdown(table: Sequence[Mapping[str, Any]], *, digits: int = 2) -> str:
    """Render :func:`summary_table` or :func:`metric_table` rows as a Markdown table.

    Pairwise rows become the paper's layout: one line per label, ``RS / WTR / N_best`` columns
    per benchmark (peak RS, best WTR, pool size at the peak RS). Metric rows become one
    ``peak @ N`` column per metric (the final values are in the CSV). Labels with several runs
    show ``mean ± std`` (sample std) and every run's ``N`` joined by ``/``.
    """
    if not table:
        return ""
    pairwise = "benchmark" in table[0]
    col = "benchmark" if pairwise else "metric"
    cols = list(dict.fromkeys(r[col] for r in table))
    labels = list(dict.fromkeys(r["label"] for r in table))
    header = ["sampler", "runs"]
    for c in cols:
        header += [f"{c} RS", f"{c} WTR", f"{c} N_best"] if pairwise else [f"{c} peak @ N"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for label in labels:
        mine = [r for r in table if r["label"] == label]
        cells = [label, str(len({r["run"] for r in mine}))]
        for c in cols:
            rows = [r for r in mine if r[col] == c]
            if not rows:
                cells += ["", "", ""] if pairwise else [""]
            elif pairwise:
                cells += [_fmt([r["peak_rs"] for r in rows], digits), _fmt([r["best_wtr"] for r in rows], digits),
                          _fmt_n([r["n_best"] for r in rows])]
            else:
                cells.append(f"{_fmt([r['peak'] for r in rows], digits)} @ {_fmt_n([r['n_at_peak'] for r in rows])}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path | None = None) -> str:
    """Write dict rows as CSV (columns: union of keys, first-seen order); returns the CSV text."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
    text = buf.getvalue()
    if path is not None:
        _write_text(path, text)
    return text


def _write_text(path: str | Path, text: str) -> None:
    data = text.encode("utf-8")
    atomic_write(path, lambda fh: fh.write(data))


def _metric_rows(runs: Sequence[RunMetrics]) -> list[dict[str, Any]]:
    return [{"label": run.label, "run": run.name, **row} for run in runs for row in run.rows]


def plot_metrics_vs_pool(
    runs: Sequence[Any],
    metrics: Sequence[str],
    path: str | Path,
    *,
    titles: Sequence[str] | None = None,
    ylabel: str | None = None,
    suptitle: str | None = None,
    ncols: int = 3,
) -> Path:
    """Plot metrics against training-pool size, one line per label (the paper's Figures 2 and 3).

    One panel per metric. A label with several runs is drawn as the mean over runs with a band
    from the lowest to the highest run. Runs with a single metrics row (e.g. a model trained on
    the full dataset) are drawn as dashed horizontal reference lines.

    Parameters
    ----------
    runs : sequence
        As for :func:`load_runs`.
    metrics : sequence of str
        Row keys to plot, e.g. ``["vicuna/rs", "koala/rs"]`` or ``["vendi"]``.
    path : str or Path
        Output PNG file.
    titles : sequence of str, optional
        Panel titles (default: the metric keys).
    ylabel : str, optional
        Y-axis label of every panel (default: the metric key).
    suptitle : str, optional
        Figure title.
    ncols : int, default 3
        Panels per row.

    Returns
    -------
    Path
        The PNG written.
    """
    require("matplotlib", feature="report plots", extra="plot")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    runs = load_runs(runs)
    if not metrics:
        raise ValidationError("plot_metrics_vs_pool needs at least one metric")
    n = len(metrics)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
    groups = _groups(runs)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osD^v<>ph*"
    for p, metric in enumerate(metrics):
        ax = axes[p // ncols][p % ncols]
        for g, (label, members) in enumerate(groups.items()):
            color, marker = colors[g % len(colors)], markers[g % len(markers)]
            curves = [m.series(metric) for m in members if len(m.rows) > 1]
            flats = [m.series(metric) for m in members if len(m.rows) == 1]
            curves = [c for c in curves if c[0].size]
            if curves:
                xs = sorted(set().union(*[set(c[0].tolist()) for c in curves]))
                stack = np.full((len(curves), len(xs)), np.nan)
                for i, (cx, cy) in enumerate(curves):
                    stack[i, [xs.index(int(x)) for x in cx]] = cy
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
                    mean = np.nanmean(stack, axis=0)
                    lo, hi = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
                tag = f"{label} (n={len(curves)})" if len(curves) > 1 else label
                # Earlier groups get bigger markers so identical curves stay visible under later ones.
                ax.plot(xs, mean, marker=marker, markersize=max(3.0, 7.0 - 1.2 * g), color=color, label=tag,
                        linewidth=1.6)
                if len(curves) > 1:
                    ax.fill_between(xs, lo, hi, color=color, alpha=0.15, linewidth=0)
            for fx, fy in flats:
                if fy.size:
                    ax.axhline(fy[0], color=color, linestyle="--", linewidth=1.2, label=f"{label} (N={int(fx[0])})")
        ax.set_title(titles[p] if titles else metric, fontsize=10)
        ax.set_xlabel("training pool size")
        ax.set_ylabel(ylabel or metric)
        ax.grid(True, alpha=0.3)
    for p in range(n, nrows * ncols):
        axes[p // ncols][p % ncols].set_visible(False)
    # One legend for the figure, below the panels, so it never hides data.
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(text, handle)
    legend_cols = max(1, min(len(legend), 5, 2 * ncols))  # a legend no wider than the panels
    legend_rows = math.ceil(len(legend) / legend_cols) if legend else 0
    extra = 0.28 * legend_rows + (0.1 if legend else 0.0)
    fig.set_size_inches(fig.get_figwidth(), fig.get_figheight() + extra)
    if legend:
        fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=legend_cols, fontsize=8,
                   frameon=False)
    top = 1.0
    if suptitle:
        fig.suptitle(suptitle)
        top = 1.0 - 0.45 / fig.get_figheight()  # keep the figure title above the panel titles
    fig.tight_layout(rect=(0.0, extra / fig.get_figheight(), 1.0, top))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_figure(fig, path, dpi=120)
    plt.close(fig)
    return path


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def write_report(
    run_dirs: Sequence[Any],
    out_dir: str | Path,
    *,
    labels: Sequence[str] | None = None,
    plots: bool | None = None,
) -> dict[str, Path]:
    """Write the tables and plots of one or more runs to ``out_dir``.

    Files: ``table.md`` (pairwise Table 1 and/or judge-metric peaks, then the per-round table of
    every run, :func:`round_table`; Markdown), ``table.csv``
    (pairwise Table 1, one row per run and benchmark), ``metric_table.csv`` (judge-metric peaks),
    ``metrics.csv`` (every round of every run), and with matplotlib: ``rs_vs_pool.png``,
    ``wtr_vs_pool.png`` (Figure 2), ``<metric>_vs_pool.png`` per judge-metric family, and
    ``vendi_vs_pool.png`` (Figure 3).

    Parameters
    ----------
    run_dirs : sequence
        Run directories, ``EvolutionResult`` objects or :class:`RunMetrics`.
    out_dir : str or Path
        Output folder (created).
    labels : sequence of str, optional
        Group labels, one per run (default: the sampler).
    plots : bool, optional
        Draw PNGs. None (default): when matplotlib is installed (else a warning is logged);
        True: required.

    Returns
    -------
    dict of str -> Path
        What was written, by kind: ``"table"``, ``"table_csv"``, ``"metric_table_csv"``,
        ``"metrics_csv"``, ``"plot_rs"``, ``"plot_wtr"``, ``"plot_vendi"``, ``"plot_<metric>"``.
    """
    runs = load_runs(run_dirs, labels)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    pair = summary_table(runs)
    other = metric_table(runs)
    sections = []
    if pair:
        sections.append("## Pairwise judge: peak RS, best WTR, N_best (paper Table 1)\n\n" + table_markdown(pair))
        written["table_csv"] = out / "table.csv"
        write_csv(pair, written["table_csv"])
    if other:
        sections.append("## Judge metrics: peak value @ pool size at the peak\n\n" + table_markdown(other))
        written["metric_table_csv"] = out / "metric_table.csv"
        write_csv(other, written["metric_table_csv"])
    if not sections:
        sections.append("No judge metrics were recorded in these runs: the table below has pool sizes and "
                        "diversity.\n")
    sections.append("## Per round: pool size, diversity and the judge's headline metrics\n\n"
                    + round_table_markdown(round_table(runs)))
    written["table"] = out / "table.md"
    _write_text(written["table"], "# diverseevol report\n\n" + "\n".join(sections))
    written["metrics_csv"] = out / "metrics.csv"
    write_csv(_metric_rows(runs), written["metrics_csv"])

    draw = plots if plots is not None else is_available("matplotlib")
    if plots is None and not draw:
        logger.warning('matplotlib is not installed: tables written, plots skipped (pip install "diverseevol[plot]")')
    if draw:
        benches = pairwise_benchmarks(runs)
        if benches:
            written["plot_rs"] = plot_metrics_vs_pool(
                runs, [f"{b}/rs" for b in benches], out / "rs_vs_pool.png", titles=benches, ylabel="Relative Score (%)",
                suptitle="Relative Score vs training pool size")
            written["plot_wtr"] = plot_metrics_vs_pool(
                runs, [f"{b}/wtr" for b in benches], out / "wtr_vs_pool.png", titles=benches,
                ylabel="Win-and-Tie Rate (%)", suptitle="Win-and-Tie Rate vs training pool size")
        families: dict[str, list[str]] = {}
        for m in judge_metrics(runs):
            families.setdefault(m.split("/", 1)[0], []).append(m)
        for family, members in families.items():
            key = f"plot_{_safe(family)}"
            written[key] = plot_metrics_vs_pool(runs, members, out / f"{_safe(family)}_vs_pool.png",
                                                suptitle=f"{family} vs training pool size", ncols=4)
        vendi = [k for k in ("vendi", "vendi_reference") if any(r.series(k)[0].size for r in runs)]
        if vendi:
            written["plot_vendi"] = plot_metrics_vs_pool(
                runs, vendi, out / "vendi_vs_pool.png", ylabel="Vendi score",
                titles=[{"vendi": "Vendi (each round's model embeddings)",
                         "vendi_reference": "Vendi (fixed reference embeddings)"}[k] for k in vendi],
                suptitle="Pool diversity vs training pool size")
    logger.info("report written to %s: %s", out, ", ".join(sorted(p.name for p in written.values())))
    return written
