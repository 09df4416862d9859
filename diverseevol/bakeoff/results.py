"""The bake-off's rows, its ``results.json`` and its Markdown table.

Index space: ``heldout_idx`` and ``train_idx`` are row indices into the input records; each
row's ``run_dir`` holds pools in the index space of the training view (``train_idx``'s records
in order), loadable with :meth:`diverseevol.EvolutionResult.load`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..run.result import METRIC_KEYS
from .settings import LOWER_IS_BETTER, BakeoffSettings
from .stats import paired_differences, t_interval

__all__ = ["BakeoffResult", "paired_cell", "record_words", "rows_from_run", "results_markdown"]


def record_words(record: Any) -> int:
    """A record's length in whitespace-separated words over all its turns (system prompt excluded)."""
    turns = getattr(record, "conversation", None)
    texts = [t.content for t in record.conversation() if t.role != "system"] if callable(turns) else [str(record)]
    return int(sum(len(str(t).split()) for t in texts))


def rows_from_run(result: Any, label: str, seed: int, run_dir: str, lengths: np.ndarray) -> list[dict[str, Any]]:
    """One row per trained model of a run: the recipe, seed, pool size, judge metrics, pick lengths.

    Parameters
    ----------
    result : EvolutionResult
    label : str
        The recipe's spec text.
    seed : int
    run_dir : str
        The run directory relative to the bake-off folder.
    lengths : ndarray of shape (N_train,)
        Words per record of the training view (index space of the run's pools).
    """
    rows = []
    for m in result.metrics:
        t = int(m["round"])
        pool = np.asarray(result.pools[t], dtype=np.int64)
        row: dict[str, Any] = {"sampler": label, "seed": int(seed), "round": t, "pool_size": int(m["pool_size"])}
        per_label: dict[str, dict[str, Any]] = {}
        for key, value in m.items():
            if key in METRIC_KEYS:
                continue
            name, sep, lab = key.partition("/")
            if sep:
                per_label.setdefault(lab, {})[name] = value
            else:
                row[key] = value
        row["mean_words"] = float(lengths[pool].mean()) if pool.size else None
        row["label_counts"] = m.get("label_counts")
        row["per_label"] = {lab: per_label[lab] for lab in sorted(per_label)}
        row["run_dir"] = run_dir
        rows.append(row)
    return rows


@dataclass
class BakeoffResult:
    """What :func:`~diverseevol.bakeoff.run_bakeoff` produced.

    Attributes
    ----------
    rows : list of dict
        One per recipe, seed and pool size (see ``docs/bakeoff.md`` for the keys).
    paired : list of dict
        Each recipe minus the baseline, paired by seed (:func:`~diverseevol.bakeoff.paired_differences`).
    heldout_idx, train_idx : ndarray of int64
        Input row indices held out / selectable.
    settings : BakeoffSettings
    out_dir : Path
    files : list of Path
        What was written.
    round0_computed : dict
        Per seed, how many times each round-0 step ran in this call (``train``, ``embed``,
        ``score``, ``judge``: at most 1 each; 0 when read back from an earlier call).
    """

    rows: list[dict[str, Any]]
    paired: list[dict[str, Any]]
    heldout_idx: np.ndarray
    train_idx: np.ndarray
    settings: BakeoffSettings
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    round0_computed: dict[int, dict[str, int]] = field(default_factory=dict)
    data_mean_words: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The content of ``results.json`` (no timings: a rerun writes the same bytes)."""
        s = self.settings
        return {
            "rows": self.rows,
            "paired": self.paired,
            "heldout_idx": [int(i) for i in self.heldout_idx],
            "settings": {
                "samplers": list(s.samplers), "baseline": s.baseline, "seeds": list(s.seeds),
                "init_size": s.init_size, "k": s.k, "rounds": s.rounds, "label_field": s.label_field,
                "heldout": {k: (str(v) if k == "path" and v is not None else v) for k, v in s.heldout.__dict__.items()},
            },
            "n_train": int(len(self.train_idx)),
            "data_mean_words": self.data_mean_words,
            "generation_metric": "rouge_l: ROUGE-L F1 of greedy answers vs the held-out references "
                                 "(lowercased alphanumeric tokens, no stemming), macro over labels",
            "multiple_comparisons": f"Bonferroni over the {max(1, len(s.samplers) - 1)} recipes compared with "
                                    f"{s.baseline!r}: low_adj/high_adj",
        }

    def paired_at(self, metric: str, pool_size: int | None = None) -> list[dict[str, Any]]:
        """The paired rows of one metric at one pool size (default: the final pool)."""
        size = self.settings.final_pool_size if pool_size is None else pool_size
        return [p for p in self.paired if p["metric"] == metric and p["pool_size"] == size]


def paired_for(rows: Sequence[Mapping[str, Any]], settings: BakeoffSettings) -> list[dict[str, Any]]:
    present = [m for m in settings.metrics if any(r.get(m) is not None for r in rows)]
    paired = paired_differences(rows, baseline=settings.baseline, metrics=present)
    paired += paired_differences(rows, baseline=settings.baseline, metrics=["mean_words"])
    return paired


def _cell(values: Sequence[float], digits: int) -> str:
    vals = [float(v) for v in values if v is not None and np.isfinite(float(v))]
    if not vals:
        return "-"
    mean, lo, hi = t_interval(vals)
    return f"{mean:.{digits}f}" + (f" [{lo:.{digits}f}, {hi:.{digits}f}]" if lo is not None else "")


def paired_cell(p: Mapping[str, Any] | None, digits: int) -> str:
    """A paired difference as a table cell: ``+0.123 [-0.010, +0.250]`` (the Bonferroni-adjusted
    interval when there is one), ``-`` without a difference."""
    if p is None:
        return "-"
    text = f"{p['mean']:+.{digits}f}"
    if p["low_adj"] is not None:
        text += f" [{p['low_adj']:+.{digits}f}, {p['high_adj']:+.{digits}f}]"
    return text


def results_markdown(result: BakeoffResult) -> str:
    """The final-pool table: per recipe, each metric's mean and 95% t-interval over seeds and its
    paired difference to the baseline with the Bonferroni-adjusted interval; then per-label losses."""
    s = result.settings
    final = s.final_pool_size
    rows = [r for r in result.rows if r["pool_size"] == final]
    metrics = [m for m in s.metrics if any(r.get(m) is not None for r in rows)]
    digits = {"heldout_loss": 3, "rouge_l": 3}
    head = ["recipe"] + [f"{m} ({'lower' if LOWER_IS_BETTER.get(m, False) else 'higher'} is better)" for m in metrics]
    head += [f"{m} - {s.baseline}" for m in metrics] + ["mean words of pool"]
    lines = [
        f"Final pool {final} records ({s.init_size} + {s.rounds} x {s.k}), {len(s.seeds)} seed(s) "
        f"{', '.join(map(str, s.seeds))}; mean [95% t-interval over seeds]; differences paired by seed with "
        f"Bonferroni-adjusted intervals over {max(1, len(s.samplers) - 1)} comparisons.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for recipe in s.samplers:
        mine = [r for r in rows if r["sampler"] == recipe]
        cells = [recipe] + [_cell([r.get(m) for r in mine], digits.get(m, 2)) for m in metrics]
        for m in metrics:
            p = next((p for p in result.paired_at(m, final) if p["sampler"] == recipe), None)
            cells.append("(baseline)" if recipe == s.baseline else paired_cell(p, digits.get(m, 2)))
        cells.append(_cell([r.get("mean_words") for r in mine], 1))
        lines.append("| " + " | ".join(cells) + " |")
    labels = sorted({lab for r in rows for lab in r.get("per_label", {})})
    if labels and any("heldout_loss" in r.get("per_label", {}).get(lab, {}) for r in rows for lab in labels):
        lines += ["", f"Held-out loss per label at pool {final} (mean over seeds):", "",
                  "| recipe | " + " | ".join(labels) + " |", "|" + "---|" * (len(labels) + 1)]
        for recipe in s.samplers:
            mine = [r for r in rows if r["sampler"] == recipe]
            cells = [recipe]
            for lab in labels:
                vals = [r["per_label"].get(lab, {}).get("heldout_loss") for r in mine]
                cells.append(_cell(vals, 3).split(" [")[0])
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
