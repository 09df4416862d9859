"""Compare samplers on one set of embeddings before spending GPU hours: which subset is better?

:func:`compare_samplers` runs each sampler once per seed from the same random initial pool
P_0 (the same P_0 for every sampler of a seed), times the selection, and measures the final pool
P_0 + picks with :func:`diverseevol.subset_report.subset_report` (Vendi, NovelSum, covering
radius, norm ratio and, given labels, per-label counts and their entropy). :class:`Comparison`
holds every run and turns them into one table (means over seeds), CSV, Markdown and plots.
``diverseevol compare`` is the command-line face of it.

Samplers are sampler specs (:mod:`diverseevol.samplers.spec`, docs/samplers.md#sampler-specs):
``"kcenter"``, ``"kcenter:transform=whiten"``, ``"kcenter:metric=cosine,backend=numpy"``,
``"kmeans"``, ``"random"``. P_0 and the sampler's generator are the loop's
(:mod:`diverseevol.run.seeds`), so a comparison shows what a run's first round will pick.

Index space: every index array here holds absolute row indices into Z (rows of the embeddings).
Imports numpy, the base modules, :mod:`diverseevol.samplers`, :mod:`diverseevol.run.seeds`,
:mod:`diverseevol.subset_report` and :mod:`diverseevol.norm_bias`; matplotlib only for :meth:`Comparison.plot` (extra ``plot``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_write, write_figure
from ._optional import require
from ._validation import check_embeddings, complement_indices
from .errors import NormBiasWarning, ValidationError
from .measurements import check_novelsum_params
from .norm_bias import NORM_BIAS_THRESHOLD, norm_ratio
from .samplers.record_signals import record_labels
from .run.seeds import initial_pool, round_rng
from .samplers.spec import SamplerSpec, parse_sampler_spec, parse_sampler_specs
from .subset_report import SubsetReport, subset_report

__all__ = [
    "DEFAULT_SAMPLERS",
    "TABLE_COLUMNS",
    "Comparison",
    "SamplerRun",
    "SamplerSpec",
    "build_samplers",
    "check_budget",
    "compare_samplers",
    "parse_sampler_spec",
    "parse_sampler_specs",
    "record_labels",
]

#: Columns of :meth:`Comparison.rows` (then ``label:<name>`` mean counts when labels were given).
TABLE_COLUMNS: tuple[str, ...] = (
    "sampler",
    "n",
    "vendi",
    "novelsum",
    "covering_radius",
    "norm_ratio",
    "picks_norm_ratio",
    "label_entropy",
    "min_label_count",
    "time_s",
)

#: The samplers :func:`compare_samplers` compares by default (the command's ``--samplers`` default).
DEFAULT_SAMPLERS: tuple[str, ...] = ("kcenter", "kcenter:transform=whiten", "kmeans", "random")

def build_samplers(specs: str | SamplerSpec | Iterable[str | SamplerSpec]) -> list[tuple[SamplerSpec, Any]]:
    """Build each sampler of the specs, refusing those that need model scores or give a ``mode``.

    Returns
    -------
    list of (SamplerSpec, sampler)

    Raises
    ------
    UnknownSamplerError
        For a name that is not registered.
    ValidationError
        For a malformed spec, a parameter the sampler does not take, a ``mode`` (a comparison makes
        the one selection of the loop's round 0), or a sampler that needs model scores
        (uncertainty samplers cannot be compared from embeddings alone).
    """
    from .samplers.base import requirements_of

    built = []
    for spec in parse_sampler_specs(specs):
        if spec.mode is not None:
            raise ValidationError(
                f"Sampler {spec.label!r} gives mode={spec.mode}; a comparison makes one selection from P_0 (the "
                f"loop's round 0), where both modes pick alike. Drop mode= here (it applies to runs of the loop)."
            )
        sampler = spec.build()
        need = requirements_of(sampler).scores
        if need:
            raise ValidationError(
                f"Sampler {spec.label!r} needs model scores ({', '.join(sorted(need))}); a comparison from "
                f"embeddings alone cannot run it. Compare embedding-based samplers (kcenter, kmeans, "
                f"facility_location, novelsum_greedy, random)."
            )
        built.append((spec, sampler))
    return built


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SamplerRun:
    """One sampler on one seed.

    Attributes
    ----------
    label : str
        The sampler spec.
    seed : int
    pool_idx : ndarray of int64, shape (pool_size,)
        P_0, absolute row indices into Z in draw order (the loop's P_0 for this seed,
        :func:`~diverseevol.run.seeds.initial_pool`; the same for every sampler of this seed).
    picks : ndarray of int64, shape (k,)
        The sampler's picks in pick order, absolute row indices into Z.
    time_s : float
        Seconds of the selection alone (the sampler's ``select``).
    report : SubsetReport
        :func:`~diverseevol.subset_report.subset_report` of P_0 + picks against all rows.
    picks_norm_ratio : float
        Mean L2 norm of the picks over that of the candidates (the figure of the norm-bias check).
    """

    label: str
    seed: int
    pool_idx: np.ndarray
    picks: np.ndarray
    time_s: float
    report: SubsetReport
    picks_norm_ratio: float

    @property
    def subset_idx(self) -> np.ndarray:
        """P_0 followed by the picks: the subset the report measures."""
        return np.concatenate([self.pool_idx, self.picks])


def _mean(values: Sequence[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


@dataclass
class Comparison:
    """What :func:`compare_samplers` measured: every run, and the table of means over seeds.

    Attributes
    ----------
    runs : list of SamplerRun
        In the order sampler by sampler, seed by seed.
    samplers : list of str
        The sampler labels, in the order given.
    seeds : list of int
    k, pool_size, n_records : int
    label_names : list, optional
        The distinct labels (sorted as strings) when labels were given.
    data_label_entropy : float, optional
        Entropy (nats) of the labels over all records.
    data_label_counts : dict, optional
        Records per label over all records (the "all records" bar of ``labels.png``).
    """

    runs: list[SamplerRun]
    samplers: list[str]
    seeds: list[int]
    k: int
    pool_size: int
    n_records: int
    label_names: list[Any] | None = None
    data_label_entropy: float | None = None
    data_label_counts: dict[Any, int] | None = None

    def runs_of(self, label: str) -> list[SamplerRun]:
        """The runs of one sampler, one per seed."""
        return [r for r in self.runs if r.label == label]

    def rows(self) -> list[dict[str, Any]]:
        """One row per sampler, means over seeds: the :data:`TABLE_COLUMNS`, then ``label:<name>``.

        ``min_label_count`` is the smallest per-label count (a label with no record counts 0);
        ``time_s`` the mean seconds of the selection. Label columns are None without labels.
        """
        out = []
        for label in self.samplers:
            runs = self.runs_of(label)
            reps = [r.report for r in runs]
            row: dict[str, Any] = {
                "sampler": label,
                "n": reps[0].n,
                "vendi": _mean([r.vendi for r in reps]),
                "novelsum": _mean([r.novelsum for r in reps]),
                "covering_radius": _mean([r.covering_radius for r in reps]),
                "norm_ratio": _mean([r.norm_ratio for r in reps]),
                "picks_norm_ratio": _mean([r.picks_norm_ratio for r in runs]),
                "label_entropy": None,
                "min_label_count": None,
                "time_s": _mean([r.time_s for r in runs]),
            }
            if self.label_names is not None:
                row["label_entropy"] = _mean([r.label_entropy for r in reps])
                counts = {
                    name: [(r.label_counts or {}).get(name, 0) for r in reps] for name in self.label_names
                }
                row["min_label_count"] = _mean([min(c[i] for c in counts.values()) for i in range(len(reps))])
                for name, values in counts.items():
                    row[f"label:{name}"] = _mean(values)
            out.append(row)
        return out

    # -- output -------------------------------------------------------------------------------
    def conditions(self) -> str:
        """One sentence saying what was compared."""
        text = (
            f"{self.n_records} records; P_0 = {self.pool_size} random records (the loop's P_0 for the seed, the "
            f"same for every sampler) + k = {self.k} picks (the loop's round-0 generator); seeds {self.seeds}; means over seeds; Vendi with the cosine "
            f"kernel; norm ratios are mean L2 norms (pool / all records, picks / candidates; above "
            f"{NORM_BIAS_THRESHOLD} = norm-biased); time = seconds of the selection alone."
        )
        if self.data_label_entropy is not None:
            text += f" Label entropy of all records: {self.data_label_entropy:.3f} nats."
        return text

    def to_csv(self) -> str:
        """The table of :meth:`rows` as CSV text (full precision)."""
        rows = self.rows()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: "" if v is None else (repr(v) if isinstance(v, float) else v) for k, v in row.items()}
            )
        return buf.getvalue()

    def to_markdown(self, *, label_columns: bool = False) -> str:
        """The table of :meth:`rows` as Markdown (rounded), optionally with the per-label counts."""
        rows = self.rows()
        no_labels = ("label_entropy", "min_label_count") if self.label_names is None else ()
        cols = [c for c in TABLE_COLUMNS if c not in no_labels]
        if label_columns and self.label_names is not None:
            cols += [f"label:{name}" for name in self.label_names]
        fmt = {"vendi": "{:.1f}", "novelsum": "{:.0f}", "covering_radius": "{:.3f}", "norm_ratio": "{:.2f}",
               "picks_norm_ratio": "{:.2f}", "label_entropy": "{:.3f}", "min_label_count": "{:.1f}",
               "time_s": "{:.2f}"}

        def cell(col: str, value: Any) -> str:
            if value is None:
                return "-"
            if isinstance(value, float):
                return fmt.get(col, "{:.1f}").format(value)
            return str(value)

        rule = "|" + "|".join("---" if c == "sampler" else "---:" for c in cols) + "|"
        lines = ["| " + " | ".join(cols) + " |", rule]
        for row in rows:
            flag = " (!)" if (row["picks_norm_ratio"] or 0) > NORM_BIAS_THRESHOLD else ""
            cells = [cell(c, row.get(c)) + (flag if c == "picks_norm_ratio" else "") for c in cols]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def to_text(self) -> str:
        """A plain-text table for a terminal (the Markdown table's columns, aligned)."""
        md = self.to_markdown().strip().splitlines()
        cells = [[c.strip() for c in line.strip("|").split("|")] for i, line in enumerate(md) if i != 1]
        widths = [max(len(r[j]) for r in cells) for j in range(len(cells[0]))]
        return "\n".join(
            "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths)))
            for r in cells
        )

    def write(self, out_dir: str | Path, *, plots: bool = True) -> dict[str, Path]:
        """Write ``compare.csv``, ``compare.md`` (conditions, table, per-label table), ``runs.json``
        (every run's picks and report) and, with ``plots``, the PNGs of :meth:`plot`.

        Returns
        -------
        dict of str to Path
            ``"csv"``, ``"markdown"``, ``"runs"`` and the plots' names.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        md = f"{self.conditions()}\n\n{self.to_markdown()}"
        if self.label_names is not None:
            md += f"\nMean records per label:\n\n{self.to_markdown(label_columns=True)}"
        runs = [
            {"sampler": r.label, "seed": r.seed, "time_s": r.time_s, "picks_norm_ratio": r.picks_norm_ratio,
             "pool_idx": r.pool_idx.tolist(), "picks": r.picks.tolist(), "report": r.report.as_dict()}
            for r in self.runs
        ]
        paths = {
            "csv": _write_text(out / "compare.csv", self.to_csv()),
            "markdown": _write_text(out / "compare.md", md),
            "runs": _write_text(out / "runs.json", json.dumps(_finite(runs), indent=1) + "\n"),
        }
        if plots:
            paths.update(self.plot(out))
        return paths

    def plot(self, out_dir: str | Path) -> dict[str, Path]:
        """PNG plots: ``diversity.png`` (Vendi and NovelSum per sampler) and, with labels,
        ``labels.png`` (mean records per label, one bar per sampler). Needs matplotlib (extra ``plot``)."""
        require("matplotlib", feature="compare plots", extra="plot")
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rows = self.rows()
        names = [r["sampler"] for r in rows]
        paths: dict[str, Path] = {}
        n_seeds = len(self.seeds)
        fig, axes = plt.subplots(1, 2, figsize=(4 + 1.2 * len(names), 4.2))
        for ax, key, title in zip(axes, ("vendi", "novelsum"), ("Vendi (cosine kernel)", "NovelSum")):
            per_seed = [[float(v) for v in (getattr(r.report, key) for r in self.runs_of(name)) if v is not None]
                        for name in names]
            means = np.array([np.mean(v) if v else 0.0 for v in per_seed])
            errs = None
            if n_seeds >= 2:  # whiskers: the lowest and highest seed
                errs = np.array([[m - min(v), max(v) - m] if v else [0.0, 0.0] for m, v in zip(means, per_seed)]).T
            ax.bar(range(len(names)), means, yerr=errs, capsize=4, color="tab:blue")
            ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
            ax.set_ylabel(f"{title} of P_0 + {self.k} picks")
            ax.set_title(f"mean over {n_seeds} seeds; whiskers: min to max" if n_seeds >= 2
                         else "one seed (no spread)", fontsize=9)
        fig.tight_layout()
        paths["diversity_plot"] = out / "diversity.png"
        write_figure(fig, paths["diversity_plot"], dpi=120)
        plt.close(fig)
        if self.label_names is not None:
            labels = self.label_names
            size = self.pool_size + self.k
            bars: list[tuple[str, list[float]]] = [(row["sampler"], [row[f"label:{lab}"] for lab in labels])
                                                   for row in rows]
            if self.data_label_counts is not None:
                # All records, scaled to the subset's size: what a label's share of the data would give.
                bars.append(("all records (scaled)",
                             [size * self.data_label_counts.get(lab, 0) / self.n_records for lab in labels]))
            width = 0.8 / len(bars)
            fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(labels) * max(1, len(bars) / 2)), 4))
            for i, (name, values) in enumerate(bars):
                ax.bar(np.arange(len(labels)) + i * width - 0.4 + width / 2, values, width, label=name,
                       color="gray" if name.startswith("all records") else None)
            ax.set_xticks(range(len(labels)), [str(lab) for lab in labels], rotation=30, ha="right",
                          fontsize=8)
            ax.set_ylabel(f"records of {self.pool_size + self.k}")
            ax.set_title(f"Records per label in P_0 + picks, mean over {len(self.seeds)} seed(s)")
            ax.legend(fontsize=7)
            fig.tight_layout()
            paths["labels_plot"] = out / "labels.png"
            write_figure(fig, paths["labels_plot"], dpi=120)
            plt.close(fig)
        return paths


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------
def check_budget(n_records: int, k: Any, pool_size: Any) -> int:
    """Check the sizes of a comparison: ``0 <= pool_size < N`` and ``1 <= k <= N - pool_size``.

    Parameters
    ----------
    n_records : int
        N, the number of records (rows of the embeddings).
    k : int
        Picks per sampler.
    pool_size : int
        |P_0|.

    Returns
    -------
    int
        ``k`` as an int.

    Raises
    ------
    ValidationError
        Naming N, what was given and what to lower (``diverseevol compare`` shows it as a usage error).
    """
    n = int(n_records)
    if isinstance(pool_size, bool) or not isinstance(pool_size, (int, np.integer)) or pool_size < 0:
        raise ValidationError(f"pool_size must be a non-negative int (--pool-size); got {pool_size!r}.")
    if pool_size >= n:
        raise ValidationError(
            f"pool_size {pool_size} (--pool-size) must be smaller than the number of records, {n}: the initial "
            f"pool P_0 would leave no record to pick. Lower pool_size below {n} (0 starts from an empty pool)."
        )
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= n - pool_size:
        raise ValidationError(
            f"k must be an int in [1, N - pool_size] = [1, {n - pool_size}] (--k; {n} records, {pool_size} of "
            f"them in P_0); got {k!r}. Lower k or pool_size."
        )
    if pool_size + int(k) < 2:
        raise ValidationError("pool_size + k must be at least 2 to measure a subset's diversity.")
    return int(k)


def compare_samplers(
    embeddings: Any,
    k: int,
    samplers: str | SamplerSpec | Iterable[str | SamplerSpec] = DEFAULT_SAMPLERS,
    *,
    seeds: Iterable[int] = (0,),
    pool_size: int = 100,
    labels: Sequence[Any] | None = None,
    q: float = 1.0,
    metric: str = "cosine",
    novelsum_params: Mapping[str, Any] | None = None,
) -> Comparison:
    """Run each sampler per seed from the same random P_0 and measure P_0 + picks.

    For seed s: P_0 = :func:`diverseevol.run.seeds.initial_pool` ``(N, pool_size, s)``, the loop's
    P_0; the candidates are the other rows; each sampler selects ``k`` of them with
    :func:`diverseevol.run.seeds.round_rng` ``(s, 0)``, the generator the loop hands the sampler
    in round 0 (its only source of randomness). So for the same seed and embeddings, a
    comparison's P_0 and picks are an :class:`~diverseevol.EvolutionLoop`'s P_0 and first picks
    (``init_size = pool_size``, M_0's embeddings). The selection is timed; the subset P_0 + picks
    is measured with :func:`~diverseevol.subset_report.subset_report` against all rows. Norm-bias
    warnings are not issued here: the table shows the ratios.

    Parameters
    ----------
    embeddings : array-like of shape (N, d)
        One embedding per record (``np.memmap`` is fine); row i = record i.
    k : int
        Picks per sampler, ``1 <= k <= N - pool_size``.
    samplers : str, SamplerSpec or iterable of these
        Sampler specs (:func:`~diverseevol.samplers.spec.parse_sampler_specs`, syntax in
        docs/samplers.md), e.g. ``"kcenter,kcenter:transform=whiten,random"``; no ``mode``.
        Samplers that need model scores (uncertainty samplers) cannot be compared from
        embeddings alone.
    seeds : iterable of int, default (0,)
    pool_size : int, default 100
        |P_0|; 0 starts from an empty pool (K-Center then draws its first center from the rng).
    labels : sequence of shape (N,), optional
        One label per record (e.g. Dolly's ``category``): adds per-label counts and entropy.
    q : float, default 1.0
        Vendi order.
    metric : {"cosine", "euclidean"}, default "cosine"
        Covering-radius metric of the report.
    novelsum_params : Mapping, optional
        ``alpha``, ``beta``, ``n_neighbors`` of :func:`~diverseevol.subset_report.novelsum`.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> import numpy as np
    >>> from diverseevol.compare import compare_samplers
    >>> emb = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    >>> result = compare_samplers(emb, 20, "kcenter:transform=normalize,random", pool_size=10)
    >>> [row["sampler"] for row in result.rows()], result.rows()[0]["n"]
    (['kcenter:transform=normalize', 'random'], 30)
    """
    from .samplers.base import SelectionContext, run_sampler

    arr = check_embeddings(embeddings, name="embeddings")
    n = int(arr.shape[0])
    specs = parse_sampler_specs(samplers)
    seed_list = [int(s) for s in seeds]
    if not seed_list:
        raise ValidationError("seeds must hold at least one seed; got none.")
    k = check_budget(n, k, pool_size)
    pool_size = int(pool_size)
    if labels is not None and len(labels) != n:
        raise ValidationError(f"labels must have one entry per record ({n}); got {len(labels)}.")
    ns_params = check_novelsum_params(novelsum_params)
    built = build_samplers(specs)

    runs: list[SamplerRun] = []
    for spec, sampler in built:
        for seed in seed_list:
            pool = initial_pool(n, pool_size, seed)  # the loop's P_0 and round-0 generator (run.seeds)
            cand = complement_indices(n, pool)
            ctx = SelectionContext(pool_idx=pool, candidate_idx=cand, rng=round_rng(seed, 0),
                                   embeddings=arr, n_records=n)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NormBiasWarning)
                start = time.perf_counter()
                picks = np.asarray(run_sampler(sampler, ctx, k).indices, dtype=np.int64)
                took = time.perf_counter() - start
            subset = np.concatenate([pool, picks])
            report = subset_report(arr, subset, labels=labels, q=q, metric=metric,
                                   novelsum_params=ns_params)
            runs.append(SamplerRun(label=spec.label, seed=seed, pool_idx=pool, picks=picks, time_s=took,
                                   report=report, picks_norm_ratio=norm_ratio(arr, cand, picks)))
    label_names = data_entropy = data_counts = None
    if labels is not None:
        from .subset_report import label_entropy

        values = list(labels)
        label_names = sorted(set(values), key=str)
        data_entropy = label_entropy(values)
        data_counts = {name: values.count(name) for name in label_names}
    return Comparison(runs=runs, samplers=[s.label for s in specs], seeds=seed_list, k=k, pool_size=pool_size,
                      n_records=n, label_names=label_names, data_label_entropy=data_entropy,
                      data_label_counts=data_counts)
