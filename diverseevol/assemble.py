"""Building the loop's parts from settings: the one place that wires Hugging Face parts, judges and loops.

Config runs (:mod:`diverseevol.assemble_config`), the demo (:func:`diverseevol.demo.run_demo`)
and the command line (``diverseevol select --embedder``, ``compare``, ``vendi``) build their parts here:

* :func:`build_hf_parts`: trainer, embedder and (when the sampler needs scores) scorer from a
  base model (:mod:`diverseevol.hf`, extra ``hf``);
* :func:`load_embeddings`, :func:`fixed_embedding_parts`: a user's embeddings file, and the parts
  of a run without a model (fixed embeddings);
* :func:`record_embedder`, :func:`model_embedder`, :func:`embed_with_model`: a local model's
  embedder; a function embedding (and scoring) records with it, model loaded once; embed records
  once (all sharded under ``torchrun``);
* :func:`build_generator`, :func:`build_exact_match_judge`, :func:`load_exact_match_judge`,
  :func:`build_pairwise_loop_judge`: judges;
* :func:`assemble_loop`: an :class:`~diverseevol.EvolutionLoop` from parts and a budget.

The functions take plain settings (paths, numbers, keyword-argument mappings), not a
configuration object: :mod:`diverseevol.assemble_config` says what a configuration's sections
mean and calls them. Keyword arguments taken from settings are checked against the constructor
they are meant for, so a misspelt key fails with a :class:`~diverseevol.errors.ConfigError` that
names it (with a close match) and lists the accepted ones. ``diverseevol.hf`` and
``diverseevol.judge`` are imported inside the functions that need them: importing this module
needs numpy only.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ._files import load_npy
from ._optional import require
from .errors import ConfigError, ModelNotFoundError, ValidationError

if TYPE_CHECKING:
    from .data import InstructionRecord

__all__ = [
    "FixedEmbedder",
    "LoopParts",
    "assemble_loop",
    "base_model_arguments",
    "build_exact_match_judge",
    "build_generator",
    "build_hf_parts",
    "build_pairwise_loop_judge",
    "construct",
    "embed_with_model",
    "fixed_embedding_parts",
    "load_embeddings",
    "load_exact_match_judge",
    "model_embedder",
    "record_embedder",
]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def construct(cls: Any, kwargs: Mapping[str, Any], where: str, *args: Any) -> Any:
    """``cls(*args, **kwargs)``, refusing keyword arguments ``cls`` does not accept.

    Parameters
    ----------
    cls : type or callable
        What to call.
    kwargs : Mapping
        Keyword arguments, typically a section of a configuration file.
    where : str
        Name of the settings the keywords come from, used in the message (``"model.trainer"``).
    *args
        Positional arguments passed through.

    Raises
    ------
    ConfigError
        When a key is not an argument of ``cls`` (unless ``cls`` takes ``**kwargs``); the
        message names ``where.key``, a close match and the accepted arguments.
    """
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return cls(*args, **kwargs)
    params = sig.parameters.values()
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    takes_var = any(p.kind == p.VAR_KEYWORD for p in params)
    for key in kwargs:
        if key not in accepted and not takes_var:
            close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{where}.{key}: not an argument of {cls.__name__}.{hint} Accepted: {', '.join(accepted)}."
            )
    return cls(*args, **kwargs)


def _hf(feature: str) -> ModuleType:
    """:mod:`diverseevol.hf`, after checking that its third-party stack is installed.

    The thread policy (:func:`diverseevol.threads.apply_thread_policy`) is applied first, so that
    its OpenMP wait policy reaches torch when this is what imports it.
    """
    from .threads import apply_thread_policy

    apply_thread_policy()
    require("torch", feature=feature, extra="hf")
    require("transformers", feature=feature, extra="hf")
    from . import hf

    return hf


def base_model_arguments(name_or_path: str | Path, *, cache_dir: str | Path | None = None) -> dict[str, str]:
    """The :class:`~diverseevol.hf.HFTrainer` / :func:`~diverseevol.hf.load_model` arguments naming base weights.

    Parameters
    ----------
    name_or_path : str or Path
        A local model directory, or a ``.gguf`` file (converted once to a safetensors cache).
    cache_dir : str or Path, optional
        Where a ``.gguf`` file's conversion is cached (ignored for a directory).

    Returns
    -------
    dict
        ``{"base_model": ...}``, or ``{"gguf_file": ..., "cache_dir": ...}`` for a ``.gguf`` file.
    """
    name = str(name_or_path)
    if not name.endswith(".gguf"):
        return {"base_model": name}
    return {"gguf_file": name, **({"cache_dir": str(cache_dir)} if cache_dir is not None else {})}


# --------------------------------------------------------------------------------------------
# trainer, embedder, scorer
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoopParts:
    """The callables :class:`~diverseevol.EvolutionLoop` drives to train, embed and score.

    Attributes
    ----------
    trainer : callable
        ``trainer(records, round, out_dir) -> model``.
    embedder : callable
        ``embedder(model, records) -> ndarray of shape (N, d)``, rows in Z's index space.
    scorer : callable or None
        ``scorer(model, records) -> {name: ndarray of shape (N,)}``; None when no sampler needs scores.
    """

    trainer: Any
    embedder: Any
    scorer: Any = None


def build_hf_parts(
    name_or_path: str | Path,
    *,
    scores: bool,
    progress: bool = True,
    seed: int | None = None,
    cache_dir: str | Path | None = None,
    trainer: Mapping[str, Any] | None = None,
    embedder: Mapping[str, Any] | None = None,
    scorer: Mapping[str, Any] | None = None,
    where: str = "model",
    feature: str = "a run with a `model` section",
) -> LoopParts:
    """:class:`~diverseevol.hf.HFTrainer`, :class:`~diverseevol.hf.HFEmbedder` and :class:`~diverseevol.hf.HFScorer`.

    Parameters
    ----------
    name_or_path : str or Path
        The base weights every round starts from: a local model directory or a ``.gguf`` file.
    scores : bool
        Whether the sampler needs uncertainty scores: the embedder then computes them in its
        pass and an :class:`~diverseevol.hf.HFScorer` reading them is built.
    progress : bool, default True
        Progress bars of the embedder and the scorer (unless the settings say otherwise).
    seed : int, optional
        The trainer's seed, unless ``trainer`` sets one.
    cache_dir : str or Path, optional
        Conversion cache of a ``.gguf`` base (see :func:`base_model_arguments`).
    trainer, embedder, scorer : Mapping, optional
        Keyword arguments of each class; they override the ones above.
    where : str, default "model"
        Name of the settings, for messages (``"model.trainer.epoch: not an argument..."``).
    feature : str
        What needs the ``hf`` extra, for the install hint.

    Returns
    -------
    LoopParts
        ``scorer`` is None when ``scores`` is False.

    Raises
    ------
    OptionalDependencyError
        When torch or transformers is missing (the message names the extra ``hf``).
    ConfigError
        When a keyword argument is not one of the class's.
    """
    hf = _hf(feature)
    base = base_model_arguments(name_or_path, cache_dir=cache_dir)
    seeded = {"seed": seed} if seed is not None else {}
    built_trainer = construct(hf.HFTrainer, {**base, **seeded, **(trainer or {})}, f"{where}.trainer")
    built_embedder = construct(
        hf.HFEmbedder, {"scores": scores, "progress": progress, **(embedder or {})}, f"{where}.embedder"
    )
    built_scorer = None
    if scores:
        built_scorer = construct(
            hf.HFScorer, {"embedder": built_embedder, "progress": progress, **(scorer or {})}, f"{where}.scorer"
        )
    return LoopParts(built_trainer, built_embedder, built_scorer)


def load_embeddings(path: str | Path, n_records: int | None = None, *, where: str = "--embeddings") -> np.ndarray:
    """A user's embeddings file: a ``.npy`` array of shape (N, d), memory-mapped, checked against the data.

    Parameters
    ----------
    path : str or Path
        The ``.npy`` file (written with ``numpy.save``; pickles are never loaded).
    n_records : int, optional
        N, the number of records of the data: row i must embed record i.
    where : str, default "--embeddings"
        The setting or option that named the file, for messages (``"data.embeddings"``).

    Returns
    -------
    ndarray of shape (N, d)
        A read-only memmap; row i embeds record i.

    Raises
    ------
    DataFileNotFoundError
        When the file does not exist.
    DataFormatError
        When it is not a readable ``.npy`` array (empty, text, truncated, pickled objects) or not
        a 2-D array of numbers: the file is malformed.
    ValidationError
        When its row count is not ``n_records``: the file and the data do not go together.
    """
    from .errors import DataFileNotFoundError, DataFormatError

    path = Path(path)
    if not path.is_file():
        raise DataFileNotFoundError(f"{where} file {str(path)!r} does not exist")
    emb = load_npy(path, mmap=True, error=DataFormatError, fix=f" ({where}: save the (N, d) embeddings with numpy.save.)")
    if emb.ndim != 2 or not (np.issubdtype(emb.dtype, np.number) and not np.issubdtype(emb.dtype, np.complexfloating)):
        raise DataFormatError(
            f"{where}: {path} holds an array of shape {emb.shape} and dtype {emb.dtype}; expected a 2-D array of "
            f"real numbers of shape (N, d), one row per record (save it with numpy.save)."
        )
    if n_records is not None and emb.shape[0] != n_records:
        raise ValidationError(
            f"{where}: {path} has shape {emb.shape}, expected ({n_records}, d): it has {emb.shape[0]} rows but the "
            f"data has {n_records} records; row i of the embeddings must be record i of the data, in the same order."
        )
    return emb


class FixedEmbedder:
    """Embedder that returns precomputed embeddings whatever the model (runs without a model).

    Parameters
    ----------
    path : Path
        A ``.npy`` file of shape (N, d), row i = record i of the data (memory-mapped; read by
        :func:`load_embeddings`).
    n_records : int
        N, checked against the file.
    where : str, default "data.embeddings"
        Name of the setting, for messages.

    Raises
    ------
    ConfigError
        When the file's row count is not ``n_records`` (the configuration pairs the wrong files).
    """

    def __init__(self, path: Path, n_records: int, *, where: str = "data.embeddings") -> None:
        try:
            self.embeddings = load_embeddings(path, n_records, where=where)
        except ValidationError as exc:
            raise ConfigError(str(exc)) from exc

    def __call__(self, model: Any, records: Any) -> np.ndarray:
        return self.embeddings


def _no_training(records: Any, round: int, out_dir: Path) -> None:
    """Trainer of runs without a model: nothing to train; selection uses fixed embeddings."""
    return


def fixed_embedding_parts(path: Path, n_records: int) -> LoopParts:
    """The parts of a run without a model: no training, the same embeddings every round, no scorer.

    Parameters
    ----------
    path : Path
        ``.npy`` file of shape (N, d), rows in the data's record order.
    n_records : int
        N.
    """
    return LoopParts(_no_training, FixedEmbedder(path, n_records), None)


def record_embedder(
    name_or_path: str | Path,
    *,
    scores: Collection[str] = (),
    progress: bool = True,
    cache_dir: str | Path | None = None,
    feature: str = "--embedder",
    **embedder: Any,
) -> tuple[Any, Any]:
    """The embedder of a local model and the model it runs, for :func:`~diverseevol.selection.embed_records`.

    Parameters
    ----------
    name_or_path : str or Path
        A local Hugging Face causal-LM directory, a ``.gguf`` file, or a sentence-transformers
        directory (it holds ``modules.json``): that one is embedded with
        :class:`~diverseevol.hf.SentenceTransformerEmbedder` (always with the attention mask).
    scores : collection of str
        Score names the caller needs (e.g. ``{"margin"}``); when not empty, the embedder computes
        every uncertainty score in the same pass.
    progress : bool, default True
    cache_dir : str or Path, optional
        Conversion cache of a ``.gguf`` file.
    feature : str
        What needs the ``hf`` extra, for the install hint.
    **embedder
        Further keyword arguments of :class:`~diverseevol.hf.HFEmbedder` (``batch_size``...).

    Returns
    -------
    embedder : HFEmbedder or SentenceTransformerEmbedder
        ``embedder(model, records) -> (N, d)``; both shard over the ranks of a launched job.
    model : ModelHandle or None
        The loaded causal LM; None for a sentence-transformers encoder (it loads its own).

    Raises
    ------
    ModelNotFoundError
        When ``name_or_path`` does not exist (a ``FileNotFoundError``).
    ValidationError
        When ``scores`` are asked of a sentence-transformers encoder.
    """
    hf = _hf(feature)
    path = Path(name_or_path)
    if not path.exists():
        what = "GGUF file" if path.suffix == ".gguf" else "model directory"
        raise ModelNotFoundError(
            f"{feature}: {what} {str(name_or_path)!r} does not exist (looked for {path.absolute()}). Pass a local "
            f"model folder (a causal LM, or a sentence-transformers encoder) or a .gguf file."
        )
    if (path / "modules.json").is_file():  # a sentence-transformers directory: an encoder, not a causal LM
        if scores:
            raise ValidationError(
                f"{path} is a sentence-transformers encoder: it embeds records but gives no uncertainty scores "
                f"({', '.join(sorted(scores))}); use a causal-LM directory, or a sampler that needs only embeddings."
            )
        return construct(hf.SentenceTransformerEmbedder, {"progress": progress, **embedder}, "embedder", path), None
    base = base_model_arguments(path, cache_dir=cache_dir)
    model = hf.load_model(base.get("base_model", ""), gguf_file=base.get("gguf_file"), cache_dir=base.get("cache_dir"))
    embed = construct(hf.HFEmbedder, {"scores": bool(scores), "progress": progress, **embedder}, "embedder")
    return embed, model


def model_embedder(
    name_or_path: str | Path,
    *,
    scores: Collection[str] = (),
    progress: bool = True,
    cache_dir: str | Path | None = None,
    feature: str = "--embedder",
    **embedder: Any,
) -> Callable[[Sequence[InstructionRecord]], tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Load a local model once and return a function that embeds (and scores) records with it.

    Parameters
    ----------
    name_or_path, scores, progress, cache_dir, feature, **embedder
        As :func:`record_embedder`.

    Returns
    -------
    callable
        ``embed(records) -> (embeddings, scores)``: embeddings of shape (n, d), row i =
        ``records[i]``; scores a dict of str to ndarray of shape (n,), empty when ``scores`` is
        empty. Under several processes every rank calls it with the same records, each embeds its
        share, and every rank gets all rows (:func:`~diverseevol.selection.embed_records`).
    """
    from .selection import embed_records

    embed, model = record_embedder(name_or_path, scores=scores, progress=progress, cache_dir=cache_dir,
                                   feature=feature, **embedder)
    return lambda records: embed_records(records, embed, model=model, scores=bool(scores))


def embed_with_model(
    name_or_path: str | Path,
    records: Sequence[InstructionRecord],
    *,
    scores: Collection[str] = (),
    progress: bool = True,
    cache_dir: str | Path | None = None,
    feature: str = "--embedder",
    **embedder: Any,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Embed ``records`` once with a local model (and score them when ``scores`` is not empty).

    Under ``torchrun`` / ``accelerate launch`` (``WORLD_SIZE > 1``) this is collective: every
    rank must call it, each embeds its share of the records and every rank gets all rows
    (:func:`~diverseevol.selection.embed_records`); write results on rank 0 only
    (``diverseevol.comm.rank_and_world()[0] == 0``).

    Parameters
    ----------
    name_or_path, scores, progress, cache_dir, feature, **embedder
        As :func:`record_embedder`.
    records : sequence of InstructionRecord
        The N records, in row order.

    Returns
    -------
    embeddings : ndarray of shape (N, d)
        Row i embeds ``records[i]``.
    scores : dict of str to ndarray of shape (N,)
        Every uncertainty score when ``scores`` is not empty, else empty.

    Raises
    ------
    FileNotFoundError
        When ``name_or_path`` does not exist.
    ValidationError
        When scores are asked of a sentence-transformers encoder.
    """
    from .selection import embed_records

    embed, model = record_embedder(name_or_path, scores=scores, progress=progress, cache_dir=cache_dir,
                                   feature=feature, **embedder)
    return embed_records(records, embed, model=model, scores=bool(scores))


# --------------------------------------------------------------------------------------------
# judges
# --------------------------------------------------------------------------------------------
def build_generator(settings: Mapping[str, Any] | None = None, *, where: str = "judge.generation",
                    feature: str = "a judge") -> Any:
    """An :class:`~diverseevol.hf.HFGenerator` for judges, prompts already formatted (``apply_template=False``).

    Parameters
    ----------
    settings : Mapping, optional
        Keyword arguments of :class:`~diverseevol.hf.HFGenerator` (``max_new_tokens``...).
    where : str
        Name of the settings, for messages.
    feature : str
        What needs the ``hf`` extra, for the install hint.
    """
    hf = _hf(feature)
    return construct(hf.HFGenerator, {"apply_template": False, **(settings or {})}, where)


def build_exact_match_judge(
    tests: Sequence[InstructionRecord],
    generator: Any,
    *,
    groups: Sequence[str] | None = None,
    params: Mapping[str, Any] | None = None,
    where: str = "judge.params",
) -> Any:
    """An :class:`~diverseevol.judge.ExactMatchJudge` over test records in the Alpaca prompt format.

    Parameters
    ----------
    tests : sequence of InstructionRecord
        The M test questions; ``output`` is the expected answer.
    generator : callable
        ``generate(model, prompts) -> answers`` (see :func:`build_generator`).
    groups : sequence of str, optional, length M
        Group of each test question, for per-group metrics.
    params : Mapping, optional
        Further keyword arguments of the judge (``normalize``, ``match``).
    where : str
        Name of the settings, for messages.
    """
    from .data import format_prompt
    from .judge import ExactMatchJudge

    return construct(
        ExactMatchJudge, {"groups": groups, **(params or {})}, where,
        [format_prompt(r) for r in tests], [r.output for r in tests], generator,
    )


def load_exact_match_judge(
    path: str | Path,
    generator: Any,
    *,
    group_field: str | None = None,
    params: Mapping[str, Any] | None = None,
    where: str = "judge",
) -> Any:
    """An :class:`~diverseevol.judge.ExactMatchJudge` over a JSON/JSONL test file.

    Parameters
    ----------
    path : str or Path
        Test records (``instruction``/``input``/``output``; Alpaca or Dolly field names).
    generator : callable
        ``generate(model, prompts) -> answers`` (see :func:`build_generator`).
    group_field : str, optional
        A field of every test record used to report per-group metrics.
    params : Mapping, optional
        Further keyword arguments of the judge (``normalize``, ``match``).
    where : str, default "judge"
        Name of the settings, for messages (``judge.group_field``, ``judge.params``).

    Raises
    ------
    ConfigError
        When a test record lacks ``group_field`` or a parameter is misspelt.
    """
    from .data import load_instructions

    tests = load_instructions(path, meta_fields=[group_field] if group_field else ())
    groups = None
    if group_field:
        missing = [i for i, r in enumerate(tests) if group_field not in (r.meta or {})]
        if missing:
            raise ConfigError(f"{where}.group_field: {path} record {missing[0]} has no field {group_field!r}.")
        groups = [str(r.meta[group_field]) for r in tests]  # type: ignore[index]
    return build_exact_match_judge(tests, generator, groups=groups, params=params, where=f"{where}.params")


def build_pairwise_loop_judge(
    path: str | Path,
    generator: Any,
    *,
    references: str | Path,
    benchmark: str | None = None,
    params: Mapping[str, Any] | None = None,
    output_dir: str | Path | None = None,
    where: str = "judge.params",
) -> Any:
    """A :class:`~diverseevol.judge.PairwiseLoopJudge`: the paper's LLM judge against reference answers.

    Parameters
    ----------
    path : str or Path
        The benchmark's questions.
    generator : callable
        ``generate(model, prompts) -> answers`` (see :func:`build_generator`).
    references : str or Path
        The reference answers (JSONL).
    benchmark : str, optional
        Benchmark name (``vicuna``, ``koala``, ``wizardlm`` or your own); default: the stem of ``path``.
    params : Mapping, optional
        Keyword arguments of :class:`~diverseevol.judge.PairwiseJudge` (``model``, ``base_url``...).
    output_dir : str or Path, optional
        Where each round's answers and judge reports are written.
    where : str
        Name of the settings of ``params``, for messages.
    """
    from .data import format_prompt
    from .judge import PairwiseJudge, PairwiseLoopJudge, load_benchmark

    path = Path(path)
    bench = load_benchmark(benchmark or path.stem, path, reference_answers=references)
    pairwise = construct(PairwiseJudge, params or {}, where)
    return PairwiseLoopJudge(pairwise, bench, generator, prompt_format=format_prompt, output_dir=output_dir)


# --------------------------------------------------------------------------------------------
# loops
# --------------------------------------------------------------------------------------------
def assemble_loop(
    records: Sequence[InstructionRecord],
    parts: LoopParts,
    *,
    sampler: Any,
    init_size: int,
    k: int,
    rounds: int,
    mode: str = "iterative",
    run_dir: str | Path,
    seed: int = 0,
    judge: Any = None,
    sampler_params: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    tags: Mapping[str, Any] | None = None,
    **options: Any,
) -> Any:
    """An :class:`~diverseevol.EvolutionLoop` driving ``parts`` with a budget.

    Parameters
    ----------
    records : sequence of InstructionRecord
        The dataset Z (N records).
    parts : LoopParts
        Trainer, embedder and scorer.
    sampler : str or Sampler
        A registered name (with ``sampler_params``) or a sampler instance.
    init_size, k, rounds : int
        The budget: |P_0|, records picked per round, number of rounds.
    mode : {"iterative", "one_time"}, default "iterative"
    run_dir : str or Path
    seed : int, default 0
    judge : callable, optional
    sampler_params : Mapping, optional
        Constructor parameters when ``sampler`` is a name.
    overwrite, progress : bool
    tags : Mapping, optional
        Free-form labels stored with the run.
    **options
        Further keyword arguments of :class:`~diverseevol.EvolutionLoop`
        (``reference_embeddings``, ``vendi``, ``keep_models``...).
    """
    from .run import EvolutionLoop

    extra = {"sampler_params": dict(sampler_params)} if sampler_params is not None else {}
    return EvolutionLoop(
        records,
        trainer=parts.trainer,
        embedder=parts.embedder,
        scorer=parts.scorer,
        sampler=sampler,
        judge=judge,
        init_size=init_size,
        k=k,
        rounds=rounds,
        mode=mode,
        seed=seed,
        run_dir=run_dir,
        overwrite=overwrite,
        progress=progress,
        tags=dict(tags) if tags is not None else None,
        **extra,
        **options,
    )
