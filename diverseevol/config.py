"""Run configuration files for ``diverseevol run``: YAML or TOML, validated with clear messages.

A configuration has the sections ``data``, ``model`` (optional), ``sampler``, ``budget``,
``judge`` (optional) and the keys ``run_dir`` and ``seed``::

    run_dir: runs/dolly-kcenter        # where rounds are written; an existing run is resumed
    seed: 0
    data:
      path: databricks-dolly-15k.jsonl # JSON / JSONL file (Alpaca or Dolly field names)
      limit: null                      # keep only the first N records
      embeddings: null                 # .npy of shape (N, d): fixed embeddings, no model needed
      fields: null                     # "alpaca", "dolly" or a mapping; detected when null
    model:                             # optional: the Hugging Face parts (extra "hf")
      name_or_path: path/to/llama      # a local model directory (or a .gguf file)
      trainer: {epochs: 3, lr: 2.0e-5} # keyword arguments of diverseevol.hf.HFTrainer
      embedder: {batch_size: 32}       # keyword arguments of diverseevol.hf.HFEmbedder
    sampler:
      name: kcenter                    # any registered sampler, plugins included
      params: {metric: cosine}
    budget:
      init_size: 100                   # |P_0|, at least 1 (M_0 is trained on it)
      k: 100
      rounds: 10
      mode: iterative                  # or one_time
    judge:                             # optional
      type: exact_match                # or pairwise
      path: test.jsonl
      params: {}

Relative paths are resolved against the directory of the configuration file. Unknown keys,
values of the wrong type and missing required keys raise :class:`~diverseevol.errors.ConfigError`
naming the key (with a close match for misspellings) and the expected type.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._optional import require
from .errors import ConfigError

__all__ = [
    "BudgetConfig",
    "DataConfig",
    "JudgeConfig",
    "ModelConfig",
    "RunConfig",
    "SamplerConfig",
    "build_loop",
    "load_config",
    "parse_config",
    "run_config",
]

logger = logging.getLogger(__name__)

_MODES = ("iterative", "one_time")
_JUDGES = ("exact_match", "pairwise")


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` section: where Z comes from.

    Attributes
    ----------
    path : Path
        A JSON or JSONL file of instruction records.
    limit : int or None
        Keep only the first ``limit`` records.
    embeddings : Path or None
        A ``.npy`` file of shape (N, d), rows in the file's record order: fixed embeddings for a
        run without ``model`` (the loop then re-selects from the same view every round).
    fields : str, dict or None
        ``"alpaca"``, ``"dolly"`` or a mapping of field names, as in
        :func:`~diverseevol.data.load_instructions`; detected when omitted.
    """

    path: Path
    limit: int | None = None
    embeddings: Path | None = None
    fields: str | dict[str, Any] | None = None


@dataclass(frozen=True)
class ModelConfig:
    """The ``model`` section: the Hugging Face trainer / embedder / scorer (extra ``hf``).

    Attributes
    ----------
    name_or_path : str
        Local model directory or ``.gguf`` file (the base weights every round starts from).
    trainer : dict
        Keyword arguments of :class:`diverseevol.hf.HFTrainer`.
    embedder : dict
        Keyword arguments of :class:`diverseevol.hf.HFEmbedder`.
    scorer : dict
        Keyword arguments of :class:`diverseevol.hf.HFScorer`.
    """

    name_or_path: str
    trainer: dict[str, Any] = field(default_factory=dict)
    embedder: dict[str, Any] = field(default_factory=dict)
    scorer: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SamplerConfig:
    """The ``sampler`` section: a registered sampler name and its constructor parameters."""

    name: str = "kcenter"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BudgetConfig:
    """The ``budget`` section: P_0 size, picks per round, number of rounds, iterative or one-time."""

    init_size: int = 100
    k: int = 100
    rounds: int = 10
    mode: str = "iterative"


@dataclass(frozen=True)
class JudgeConfig:
    """The ``judge`` section.

    Attributes
    ----------
    type : {"exact_match", "pairwise"}
        ``exact_match``: compare generated answers with the references of ``path``.
        ``pairwise``: an LLM judge against reference answers (extra ``judge``).
    path : Path
        A JSON/JSONL test file (``instruction``/``input``/``output``, optional ``group_field``).
    group_field : str or None
        ``exact_match``: field of the test file used to report per-group metrics.
    benchmark : str or None
        ``pairwise``: benchmark name (``vicuna``, ``koala``, ``wizardlm``, or your own; see
        :func:`diverseevol.judge.load_benchmark`); default: the file name's stem.
    references : Path or None
        ``pairwise``: the reference answers (JSONL), required.
    params : dict
        ``exact_match``: keyword arguments of :class:`~diverseevol.judge.ExactMatchJudge`
        (``normalize``, ``match``); ``pairwise``: of :class:`~diverseevol.judge.PairwiseJudge`
        (``model``, ``base_url``, ``cache``...; the API key comes from ``OPENAI_API_KEY``).
    generation : dict
        Keyword arguments of :class:`diverseevol.hf.HFGenerator` (``max_new_tokens``...).
    """

    type: str
    path: Path
    group_field: str | None = None
    benchmark: str | None = None
    references: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunConfig:
    """A validated run configuration. Build it with :func:`load_config` or :func:`parse_config`."""

    run_dir: Path
    data: DataConfig
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    model: ModelConfig | None = None
    judge: JudgeConfig | None = None
    seed: int = 0
    source: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (paths as strings), as stored in the run directory."""

        def plain(v: Any) -> Any:
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return v

        out = {k: plain(v) for k, v in asdict(self).items() if k != "source"}
        return out


# --------------------------------------------------------------------------------------------
# schema
# --------------------------------------------------------------------------------------------
# key -> (python types accepted, required, human name)
_Spec = dict[str, tuple[tuple[type, ...], bool, str]]

_TOP: _Spec = {
    "run_dir": ((str,), True, "a path"),
    "seed": ((int,), False, "an integer"),
    "data": ((dict,), True, "a section"),
    "model": ((dict,), False, "a section"),
    "sampler": ((dict, str), False, "a section or a sampler name"),
    "budget": ((dict,), False, "a section"),
    "judge": ((dict,), False, "a section"),
}
_SECTIONS: dict[str, _Spec] = {
    "data": {
        "path": ((str,), True, "a path"),
        "limit": ((int, type(None)), False, "an integer or null"),
        "embeddings": ((str, type(None)), False, "a path or null"),
        "fields": ((str, dict, type(None)), False, "'alpaca', 'dolly' or a mapping of field names"),
    },
    "model": {
        "name_or_path": ((str,), True, "a path"),
        "trainer": ((dict,), False, "a mapping of HFTrainer arguments"),
        "embedder": ((dict,), False, "a mapping of HFEmbedder arguments"),
        "scorer": ((dict,), False, "a mapping of HFScorer arguments"),
    },
    "sampler": {
        "name": ((str,), False, "a sampler name"),
        "params": ((dict,), False, "a mapping of sampler parameters"),
    },
    "budget": {
        "init_size": ((int,), False, "an integer"),
        "k": ((int,), False, "an integer"),
        "rounds": ((int,), False, "an integer"),
        "mode": ((str,), False, "'iterative' or 'one_time'"),
    },
    "judge": {
        "type": ((str,), True, "'exact_match' or 'pairwise'"),
        "path": ((str,), True, "a path"),
        "group_field": ((str, type(None)), False, "a field name or null"),
        "benchmark": ((str,), False, "a benchmark name (vicuna, koala, wizardlm or your own)"),
        "references": ((str,), False, "a path to reference answers"),
        "params": ((dict,), False, "a mapping of judge arguments"),
        "generation": ((dict,), False, "a mapping of HFGenerator arguments"),
    },
}


def _where(source: str | None, key: str) -> str:
    return f"{source}: {key}" if source else key


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_keys(mapping: Mapping[str, Any], spec: _Spec, prefix: str, source: str | None) -> None:
    for key in mapping:
        if key not in spec:
            full = f"{prefix}{key}"
            close = difflib.get_close_matches(str(key), list(spec), n=1, cutoff=0.6)
            hint = f" Did you mean {prefix + close[0]!r}?" if close else ""
            raise ConfigError(
                f"{_where(source, full)}: unknown key.{hint} Allowed here: {', '.join(spec)}."
            )
    for key, (types, required, what) in spec.items():
        full = f"{prefix}{key}"
        if key not in mapping:
            if required:
                raise ConfigError(f"{_where(source, full)}: missing required key (expected {what}).")
            continue
        value = mapping[key]
        # bool is an int subclass; an int where a float is expected is fine.
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            raise ConfigError(
                f"{_where(source, full)}: expected {what}, got {_type_name(value)} {value!r}."
            )


def _positive(value: int, key: str, source: str | None, minimum: int = 1, why: str = "") -> int:
    if value < minimum:
        raise ConfigError(f"{_where(source, key)}: must be >= {minimum}, got {value}.{why}")
    return value


def _resolve(base: Path | None, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() or base is None else base / p


def parse_config(mapping: Mapping[str, Any], *, base_dir: str | Path | None = None, source: str | None = None) -> RunConfig:
    """Validate a configuration mapping and return a :class:`RunConfig`.

    Parameters
    ----------
    mapping : Mapping
        The parsed file (see the module docstring for the keys).
    base_dir : str or Path, optional
        Relative paths are resolved against it (the configuration file's directory).
    source : str, optional
        Name used in error messages (the file path).

    Raises
    ------
    ConfigError
        For unknown keys (with a close match), missing required keys, wrong types and values
        out of range; the message names the key.
    """
    if not isinstance(mapping, Mapping):
        raise ConfigError(
            f"{source or 'configuration'}: expected a mapping of sections at the top level, got "
            f"{_type_name(mapping)}."
        )
    base = Path(base_dir) if base_dir is not None else None
    _check_keys(mapping, _TOP, "", source)
    sections: dict[str, dict[str, Any]] = {}
    for name in _SECTIONS:
        raw = mapping.get(name)
        if name == "sampler" and isinstance(raw, str):
            raw = {"name": raw}
        if raw is None:
            continue
        _check_keys(raw, _SECTIONS[name], f"{name}.", source)
        sections[name] = dict(raw)

    d = sections["data"]
    data = DataConfig(
        path=_resolve(base, d["path"]),
        limit=None if d.get("limit") is None else _positive(d["limit"], "data.limit", source),
        embeddings=None if d.get("embeddings") is None else _resolve(base, d["embeddings"]),
        fields=d.get("fields"),
    )
    model = None
    if "model" in sections:
        m = sections["model"]
        name_or_path = m["name_or_path"]
        candidate = _resolve(base, name_or_path)
        model = ModelConfig(
            name_or_path=str(candidate) if candidate.exists() else name_or_path,
            trainer=dict(m.get("trainer", {})),
            embedder=dict(m.get("embedder", {})),
            scorer=dict(m.get("scorer", {})),
        )
    s = sections.get("sampler", {})
    sampler = SamplerConfig(name=s.get("name", "kcenter"), params=dict(s.get("params", {})))
    b = sections.get("budget", {})
    budget = BudgetConfig(
        init_size=_positive(
            b.get("init_size", 100), "budget.init_size", source, 1,
            " M_0 is trained on the random initial pool P_0, so it cannot be empty; set budget.init_size "
            "to a positive number of records (the paper uses 100).",
        ),
        k=_positive(b.get("k", 100), "budget.k", source),
        rounds=_positive(b.get("rounds", 10), "budget.rounds", source),
        mode=b.get("mode", "iterative"),
    )
    if budget.mode not in _MODES:
        close = difflib.get_close_matches(budget.mode, _MODES, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{_where(source, 'budget.mode')}: must be one of {list(_MODES)}, got {budget.mode!r}.{hint}")
    judge = None
    if "judge" in sections:
        j = sections["judge"]
        if j["type"] not in _JUDGES:
            close = difflib.get_close_matches(j["type"], _JUDGES, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{_where(source, 'judge.type')}: must be one of {list(_JUDGES)}, got {j['type']!r}.{hint}")
        if j["type"] == "pairwise" and "references" not in j:
            raise ConfigError(
                f"{_where(source, 'judge.references')}: the pairwise judge compares with reference answers; "
                f"give the path of a JSONL file of reference answers."
            )
        judge = JudgeConfig(
            type=j["type"],
            path=_resolve(base, j["path"]),
            group_field=j.get("group_field"),
            benchmark=j.get("benchmark"),
            references=_resolve(base, j["references"]) if "references" in j else None,
            params=dict(j.get("params", {})),
            generation=dict(j.get("generation", {})),
        )
    if model is None and data.embeddings is None:
        raise ConfigError(
            f"{_where(source, 'model')}: a run needs a view of the data to select with: give a `model` "
            f"section (a local Hugging Face model directory) or precomputed `data.embeddings` (.npy)."
        )
    if judge is not None and model is None:
        raise ConfigError(
            f"{_where(source, 'judge')}: a judge evaluates the trained models, so it needs a `model` section."
        )
    seed = mapping.get("seed", 0)
    return RunConfig(
        run_dir=_resolve(base, mapping["run_dir"]),
        data=data,
        sampler=sampler,
        budget=budget,
        model=model,
        judge=judge,
        seed=int(seed),
        source=Path(source) if source else None,
    )


def _read_file(path: Path) -> Any:
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Configuration file {str(path)!r} does not exist.") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read configuration file {str(path)!r}: {exc}.") from exc
    if suffix == ".toml":
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}.") from exc
    if suffix in (".yaml", ".yml"):
        yaml = require("yaml", feature="YAML configuration files", extra="config")
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            msg = " ".join(str(exc).split())
            raise ConfigError(f"{path}: invalid YAML: {msg}.") from exc
    raise ConfigError(
        f"{path}: unsupported configuration format {suffix or '(no extension)'!r}; use .yaml, .yml or .toml."
    )


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML (``.yaml``/``.yml``, extra ``config``) or TOML (``.toml``) file.

    Relative paths inside are resolved against the file's directory.

    Raises
    ------
    ConfigError
        When the file is missing, unparsable or invalid; the message names the file and key.
    """
    path = Path(path)
    raw = _read_file(path)
    if raw is None:
        raise ConfigError(f"{path}: the file is empty; it needs at least `run_dir` and `data.path`.")
    return parse_config(raw, base_dir=path.parent, source=str(path))


# --------------------------------------------------------------------------------------------
# running a configuration
# --------------------------------------------------------------------------------------------
def _construct(cls: Any, kwargs: Mapping[str, Any], where: str, *args: Any) -> Any:
    """``cls(*args, **kwargs)``, turning unknown keyword arguments into a ConfigError naming ``where``."""
    import inspect

    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):  # pragma: no cover
        return cls(*args, **kwargs)
    accepted = [p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    takes_var = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    for key in kwargs:
        if key not in accepted and not takes_var:
            close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{where}.{key}: not an argument of {cls.__name__}.{hint} Accepted: {', '.join(accepted)}."
            )
    return cls(*args, **kwargs)


class _FixedEmbedder:
    """Embedder that returns precomputed embeddings whatever the model (runs without ``model``)."""

    def __init__(self, path: Path, n_records: int) -> None:
        import numpy as np

        if not path.is_file():
            raise FileNotFoundError(f"data.embeddings file {str(path)!r} does not exist")
        self.embeddings = np.load(path, mmap_mode="r")
        if self.embeddings.ndim != 2 or self.embeddings.shape[0] != n_records:
            raise ConfigError(
                f"data.embeddings: {path} has shape {self.embeddings.shape}, expected ({n_records}, d): one row "
                f"per record of data.path, in the same order."
            )

    def __call__(self, model: Any, records: Any) -> Any:
        return self.embeddings


def _no_training(records: Any, round: int, out_dir: Path) -> None:
    """Trainer of runs without ``model``: nothing to train; selection uses fixed embeddings."""
    return


def _build_judge(config: RunConfig) -> Any:
    assert config.judge is not None and config.model is not None
    from .hf import HFGenerator

    j = config.judge
    generator = _construct(HFGenerator, {"apply_template": False, **j.generation}, "judge.generation")
    from .data import format_prompt, load_instructions

    if j.type == "exact_match":
        from .judge import ExactMatchJudge

        meta = [j.group_field] if j.group_field else ()
        tests = load_instructions(j.path, meta_fields=meta)
        groups = None
        if j.group_field:
            missing = [i for i, r in enumerate(tests) if j.group_field not in (r.meta or {})]
            if missing:
                raise ConfigError(f"judge.group_field: {j.path} record {missing[0]} has no field {j.group_field!r}.")
            groups = [str(r.meta[j.group_field]) for r in tests]
        return _construct(
            ExactMatchJudge, {"groups": groups, **j.params}, "judge.params",
            [format_prompt(r) for r in tests], [r.output for r in tests], generator,
        )
    from .judge import PairwiseJudge, PairwiseLoopJudge, load_benchmark

    bench = load_benchmark(j.benchmark or j.path.stem, j.path, reference_answers=j.references)
    pairwise = _construct(PairwiseJudge, j.params, "judge.params")
    return PairwiseLoopJudge(pairwise, bench, generator, prompt_format=format_prompt,
                             output_dir=config.run_dir / "judge")


def build_loop(config: RunConfig, *, overwrite: bool = False, progress: bool = True) -> Any:
    """Build the :class:`~diverseevol.EvolutionLoop` a configuration describes.

    Without a ``model`` section the loop selects with the fixed ``data.embeddings`` every
    round (no training). With one, it trains :class:`~diverseevol.hf.HFTrainer` from
    ``model.name_or_path`` each round (a ``.gguf`` file is converted once), embeds with
    :class:`~diverseevol.hf.HFEmbedder`, scores with :class:`~diverseevol.hf.HFScorer` when the
    sampler needs uncertainty scores, and judges with the ``judge`` section.

    Parameters
    ----------
    config : RunConfig
    overwrite : bool, default False
        Start the run directory over; otherwise an existing run is resumed.
    progress : bool, default True
        Progress bars (also off with ``DIVERSEEVOL_PROGRESS=0``).
    """
    from ._progress import progress_enabled
    from .data import load_instructions
    from .loop import EvolutionLoop
    from .samplers.registry import get_sampler

    progress = progress and progress_enabled()
    sampler = get_sampler(config.sampler.name, **config.sampler.params)
    records = load_instructions(config.data.path, fields=config.data.fields)
    if config.data.limit is not None:
        records = records[: config.data.limit]
    needs_scores = any(r.startswith("scores:") for r in sampler.requires)
    scorer = judge = None
    if config.model is None:
        assert config.data.embeddings is not None
        trainer: Any = _no_training
        embedder: Any = _FixedEmbedder(config.data.embeddings, len(records))
        if needs_scores:
            raise ConfigError(
                f"sampler {config.sampler.name!r} needs model scores ({', '.join(sorted(sampler.requires))}); "
                f"add a `model` section, or use a sampler that needs only embeddings."
            )
    else:
        require("torch", feature="a run with a `model` section", extra="hf")
        from .hf import HFEmbedder, HFScorer, HFTrainer

        m = config.model
        base: dict[str, Any] = (
            {"gguf_file": m.name_or_path} if m.name_or_path.endswith(".gguf") else {"base_model": m.name_or_path}
        )
        trainer = _construct(HFTrainer, {**base, "seed": config.seed, **m.trainer}, "model.trainer")
        embedder = _construct(HFEmbedder, {"scores": needs_scores, "progress": progress, **m.embedder}, "model.embedder")
        if needs_scores:
            scorer = _construct(HFScorer, {"embedder": embedder, "progress": progress, **m.scorer}, "model.scorer")
        if config.judge is not None:
            judge = _build_judge(config)
    return EvolutionLoop(
        records,
        trainer=trainer,
        embedder=embedder,
        sampler=sampler,
        scorer=scorer,
        judge=judge,
        init_size=config.budget.init_size,
        k=config.budget.k,
        rounds=config.budget.rounds,
        mode=config.budget.mode,  # type: ignore[arg-type]
        seed=config.seed,
        run_dir=config.run_dir,
        overwrite=overwrite,
        progress=progress,
        tags={"config_file": str(config.source) if config.source else None},
    )


def run_config(config: RunConfig | str | Path, *, overwrite: bool = False, progress: bool = True) -> Any:
    """Run (or resume) the loop a configuration describes and return its ``EvolutionResult``.

    Parameters
    ----------
    config : RunConfig, or the path of a YAML/TOML file
    overwrite : bool, default False
        Start the run directory over instead of resuming it.
    progress : bool, default True
    """
    if not isinstance(config, RunConfig):
        config = load_config(config)
    loop = build_loop(config, overwrite=overwrite, progress=progress)
    logger.info("running %s into %s", config.sampler.name, config.run_dir)
    return loop.run()
