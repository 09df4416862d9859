"""Run configuration files for ``diverseevol run``: YAML or TOML, validated with clear messages.

A configuration has the sections ``data``, ``model`` (optional), ``sampler``, ``budget``,
``judge`` (optional) and the keys ``run_dir`` and ``seed``::

    run_dir: runs/dolly-kcenter        # where rounds are written; an existing run is resumed
    seed: 0
    report_to: null                    # tracking: tensorboard, mlflow, wandb, a list, all or none
    data:
      path: databricks-dolly-15k.jsonl # JSON / JSONL file (Alpaca or Dolly field names)
      limit: null                      # keep only the first N records
      embeddings: null                 # .npy of shape (N, d): fixed embeddings, no model needed
      fields: null                     # "alpaca", "dolly" or a mapping; detected when null
    model:                             # optional: the Hugging Face parts (extra "hf")
      name_or_path: path/to/llama      # a local model directory (or a .gguf file)
      trainer: {epochs: 3, lr: 2.0e-5} # keyword arguments of diverseevol.hf.HFTrainer
      embedder: {batch_size: 32}       # keyword arguments of diverseevol.hf.HFEmbedder, e.g.
                                       # pooling: mean | weighted_mean | last_token, layer: -1
    sampler:
      name: kcenter                    # any registered sampler, plugins included
      params: {metric: cosine}         # e.g. {transform: whiten} (kcenter: normalize, center, whiten, project)
    budget:
      init_size: 100                   # |P_0|, at least 1 (M_0 is trained on it)
      k: 100
      rounds: 10
      mode: iterative                  # or one_time
    judge:                             # optional
      type: exact_match                # or pairwise
      path: test.jsonl
      params: {}

Relative paths are resolved against the directory of the configuration file (the pairwise
judge's ``judge.params.cache`` too, so a resumed run finds its cache from any directory). Unknown keys,
values of the wrong type and missing required keys raise :class:`~diverseevol.errors.ConfigError`
naming the key (with a close match for misspellings) and the expected type.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ._files import REDACTED, redact_secrets
from ._optional import require
from .errors import ConfigError

__all__ = [
    "BudgetConfig",
    "DataConfig",
    "JudgeConfig",
    "ModelConfig",
    "RunConfig",
    "SamplerConfig",
    "build_judge",
    "build_loop",
    "build_sampler",
    "load_config",
    "parse_config",
    "run_config",
]

logger = logging.getLogger(__name__)

_MODES = ("iterative", "one_time")
_JUDGES = ("exact_match", "pairwise")


# --------------------------------------------------------------------------------------------
# schema: every key is declared once, as a dataclass field; validation reads the fields
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Key:
    """How one key of a configuration file is written and checked.

    Whether the key is required comes from the field itself (no default: required).

    Attributes
    ----------
    what : str
        Human description used in messages ("an integer", "a path"...).
    types : tuple of type
        The types the parsed file may hold for the key (``type(None)`` for null).
    kind : {"value", "path", "model"}
        ``path``: resolved against the file's directory; ``model``: resolved when that path
        exists, kept as written otherwise (a model name).
    minimum : int, optional
        Smallest accepted integer.
    why : str
        Appended to the ``minimum`` message.
    choices : tuple of str, optional
        The accepted strings.
    section : type, optional
        For a section: its dataclass, whose fields declare the section's keys.
    shorthand : str, optional
        A section that may be written as a bare string sets this key of the section.
    path_params : tuple of str
        For a mapping of keyword arguments: the arguments that are paths, resolved against the
        file's directory like every other path (e.g. the pairwise judge's ``cache``).
    """

    what: str
    types: tuple[type, ...]
    kind: str = "value"
    minimum: int | None = None
    why: str = ""
    choices: tuple[str, ...] | None = None
    section: type | None = None
    shorthand: str | None = None
    path_params: tuple[str, ...] = ()


def _key(what: str, *types: type, default: Any = MISSING, default_factory: Any = MISSING, **spec: Any) -> Any:
    """A dataclass field carrying its :class:`_Key` (``default``: absent means required)."""
    key = _Key(what, tuple(types), **spec)
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata={"key": key})
    return field(default=default, metadata={"key": key})


_NULL = type(None)


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

    path: Path = _key("a path", str, kind="path")
    limit: int | None = _key("an integer or null", int, _NULL, default=None, minimum=1)
    embeddings: Path | None = _key("a path or null", str, _NULL, default=None, kind="path")
    fields: str | dict[str, Any] | None = _key(
        "'alpaca', 'dolly' or a mapping of field names", str, dict, _NULL, default=None
    )


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
        Keyword arguments of :class:`diverseevol.hf.HFEmbedder` (``batch_size``, ``max_length``,
        ``pooling``: ``"mean"`` / ``"weighted_mean"`` / ``"last_token"``, ``layer``...).
    scorer : dict
        Keyword arguments of :class:`diverseevol.hf.HFScorer`.
    """

    name_or_path: str = _key("a path", str, kind="model")
    trainer: dict[str, Any] = _key("a mapping of HFTrainer arguments", dict, default_factory=dict)
    embedder: dict[str, Any] = _key("a mapping of HFEmbedder arguments", dict, default_factory=dict)
    scorer: dict[str, Any] = _key("a mapping of HFScorer arguments", dict, default_factory=dict)


@dataclass(frozen=True)
class SamplerConfig:
    """The ``sampler`` section: a registered sampler name and its constructor parameters."""

    name: str = _key("a sampler name", str, default="kcenter")
    params: dict[str, Any] = _key("a mapping of sampler parameters", dict, default_factory=dict)


@dataclass(frozen=True)
class BudgetConfig:
    """The ``budget`` section: P_0 size, picks per round, number of rounds, iterative or one-time."""

    init_size: int = _key(
        "an integer", int, default=100, minimum=1,
        why=" M_0 is trained on the random initial pool P_0, so it cannot be empty; set budget.init_size "
            "to a positive number of records (the paper uses 100).",
    )
    k: int = _key("an integer", int, default=100, minimum=1)
    rounds: int = _key("an integer", int, default=10, minimum=1)
    mode: str = _key("'iterative' or 'one_time'", str, default="iterative", choices=_MODES)


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
        (``model``, ``base_url``, ``cache``...; the API key comes from ``OPENAI_API_KEY``: an
        ``api_key`` here, or any secret-named key, is refused).
    generation : dict
        Keyword arguments of :class:`diverseevol.hf.HFGenerator` (``max_new_tokens``...).
    """

    type: str = _key("'exact_match' or 'pairwise'", str, choices=_JUDGES)
    path: Path = _key("a path", str, kind="path")
    group_field: str | None = _key("a field name or null", str, _NULL, default=None)
    benchmark: str | None = _key("a benchmark name (vicuna, koala, wizardlm or your own)", str, default=None)
    references: Path | None = _key("a path to reference answers", str, default=None, kind="path")
    params: dict[str, Any] = _key("a mapping of judge arguments", dict, default_factory=dict, path_params=("cache",))
    generation: dict[str, Any] = _key("a mapping of HFGenerator arguments", dict, default_factory=dict)


@dataclass(frozen=True)
class RunConfig:
    """A validated run configuration. Build it with :func:`load_config` or :func:`parse_config`."""

    run_dir: Path = _key("a path", str, kind="path")
    data: DataConfig = _key("a section", dict, section=DataConfig)
    sampler: SamplerConfig = _key("a section or a sampler name", dict, str, default_factory=SamplerConfig,
                                  section=SamplerConfig, shorthand="name")
    budget: BudgetConfig = _key("a section", dict, default_factory=BudgetConfig, section=BudgetConfig)
    model: ModelConfig | None = _key("a section", dict, default=None, section=ModelConfig)
    judge: JudgeConfig | None = _key("a section", dict, default=None, section=JudgeConfig)
    seed: int = _key("an integer", int, default=0, minimum=0)
    report_to: str | list[str] | None = _key(
        "'tensorboard', 'mlflow', 'wandb', 'all', 'none', a list of them or null", str, list, _NULL, default=None
    )
    source: Path | None = None  # not a key of the file: where the configuration was read from

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


def _keys(cls: type) -> dict[str, tuple[_Key, bool]]:
    """``{key: (its _Key, required)}`` of a configuration dataclass, in field order."""
    out = {}
    for f in fields(cls):
        if "key" in f.metadata:
            required = f.default is MISSING and f.default_factory is MISSING
            out[f.name] = (f.metadata["key"], required)
    return out


def _where(source: str | None, key: str) -> str:
    return f"{source}: {key}" if source else key


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _did_you_mean(value: str, choices: list[str] | tuple[str, ...], cutoff: float, prefix: str = "") -> str:
    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=cutoff)
    return f" Did you mean {prefix + close[0]!r}?" if close else ""


def _check_keys(mapping: Mapping[str, Any], cls: type, prefix: str, source: str | None) -> None:
    """Unknown keys, missing required keys and wrong types of one section (or the top level)."""
    spec = _keys(cls)
    for key in mapping:
        if key not in spec:
            hint = _did_you_mean(key, list(spec), 0.6, prefix)
            raise ConfigError(
                f"{_where(source, prefix + str(key))}: unknown key.{hint} Allowed here: {', '.join(spec)}."
            )
    for key, (k, required) in spec.items():
        full = f"{prefix}{key}"
        if key not in mapping:
            if required:
                raise ConfigError(f"{_where(source, full)}: missing required key (expected {k.what}).")
            continue
        value = mapping[key]
        # bool is an int subclass, but True is not a count.
        ok = isinstance(value, k.types) and not (isinstance(value, bool) and bool not in k.types)
        if not ok:
            raise ConfigError(f"{_where(source, full)}: expected {k.what}, got {_type_name(value)} {value!r}.")


#: SQLite's name for a database without a file (a judge ``cache`` that is not a path).
_IN_MEMORY = ":memory:"


def _resolve(base: Path | None, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() or base is None else base / p


def _model_name_or_path(value: str, full: str, base: Path | None, source: str | None) -> str:
    """A model directory or ``.gguf`` file resolved against the file's directory, or a Hub id kept as written.

    The rule of :func:`diverseevol.hf._model.resolve_model_source`, with the configuration file's
    directory as "here": a name that looks like a path and does not exist there fails at once
    (no minutes of Hub retries later); ``hub:<id>`` is always a Hub id.
    """
    candidate = _resolve(base, value)
    if candidate.exists():
        return str(candidate)
    try:
        from .hf._model import resolve_model_source
    except ImportError:  # the hf extra is missing: building the model's parts says which extra to install
        return value
    from .errors import ModelNotFoundError, ValidationError

    def missing(extra: str = "") -> ConfigError:
        return ConfigError(
            f"{_where(source, full)}: model path {value!r} does not exist (looked for {candidate}; relative "
            f"paths are resolved against the configuration file's directory).{extra} Fix the path (a model "
            f"directory or a .gguf file); for a Hugging Face Hub model write its id as 'org/name' or "
            f"'hub:org/name'."
        )

    try:
        found = resolve_model_source(value)
    except ModelNotFoundError:
        raise missing() from None
    except ValidationError as exc:
        raise ConfigError(f"{_where(source, full)}: {exc}") from None
    if value.startswith("hub:"):
        return value
    if Path(found).exists():  # exists relative to the working directory only
        raise missing(f" A {value!r} exists in the working directory, but that is not where the file's paths point.")
    if "/" in value and candidate.parent.is_dir():  # `a/b` where a/ is next to the file: a local path
        raise missing()
    return value


def _convert(value: Any, k: _Key, full: str, base: Path | None, source: str | None) -> Any:
    """The dataclass value of one checked key: paths resolved, ranges and choices checked."""
    if value is None:
        return None
    if k.kind == "path":
        return _resolve(base, value)
    if k.kind == "model":
        return _model_name_or_path(value, full, base, source)
    if k.minimum is not None and value < k.minimum:
        raise ConfigError(f"{_where(source, full)}: must be >= {k.minimum}, got {value}.{k.why}")
    if k.choices is not None and value not in k.choices:
        hint = _did_you_mean(value, k.choices, 0.5)
        raise ConfigError(f"{_where(source, full)}: must be one of {list(k.choices)}, got {value!r}.{hint}")
    if isinstance(value, dict):
        return {
            name: str(_resolve(base, v)) if name in k.path_params and isinstance(v, str) and v != _IN_MEMORY else v
            for name, v in value.items()
        }
    return value


def _build(cls: type, raw: Mapping[str, Any], prefix: str, base: Path | None, source: str | None) -> Any:
    """``cls(**values)`` from a checked mapping; absent keys take the field defaults."""
    values = {
        key: _convert(raw[key], k, prefix + key, base, source)
        for key, (k, _) in _keys(cls).items()
        if key in raw
    }
    return cls(**values)


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
    _check_keys(mapping, RunConfig, "", source)
    top = _keys(RunConfig)
    sections: dict[str, tuple[type, Mapping[str, Any]]] = {}
    for name, (k, _) in top.items():
        raw = mapping.get(name)
        if k.section is None or raw is None:
            continue
        if k.shorthand is not None and isinstance(raw, str):
            raw = {k.shorthand: raw}
        _check_keys(raw, k.section, f"{name}.", source)
        sections[name] = (k.section, raw)
    values: dict[str, Any] = {
        name: _build(cls, raw, f"{name}.", base, source) for name, (cls, raw) in sections.items()
    }
    values.update(
        (key, _convert(mapping[key], k, key, base, source))
        for key, (k, _) in top.items()
        if k.section is None and key in mapping
    )
    config = RunConfig(**values, source=Path(source) if source else None)
    _check_combination(config, source)
    _check_report_to(config.report_to, source)
    return config


def _check_report_to(report_to: Any, source: str | None) -> None:
    """``report_to`` names tracking integrations (checked by :mod:`diverseevol.tracking`)."""
    from .errors import ValidationError
    from .tracking import normalize_report_to

    try:
        normalize_report_to(report_to)
    except ValidationError as exc:
        raise ConfigError(f"{_where(source, 'report_to')}: {exc}") from None


def _is_secret_name(key: Any) -> bool:
    """Whether a key names a secret (``api_key``, ``token``...; the rule of :func:`~diverseevol._files.redact_secrets`)."""
    return isinstance(key, str) and redact_secrets({key: None})[key] == REDACTED


def _check_no_judge_secret(config: RunConfig, source: str | None) -> None:
    """Refuse an API key (or any secret-named argument) in ``judge.params``: the key comes from the environment.

    Also checks the pairwise judge's ``request_kwargs`` now, not at its first request after round 0
    (:func:`diverseevol.judge.request_kwargs.check_request_kwargs`). Secrets deeper inside
    ``judge.params`` (an ``Authorization`` header, a URL's password) are accepted and redacted
    wherever they are printed or written.
    """
    if config.judge is None:
        return
    for key in config.judge.params:
        if _is_secret_name(key):
            raise ConfigError(
                f"{_where(source, 'judge.params.' + key)}: the judge's API key is never read from a configuration "
                f"file (it would be printed by `run --check`, kept in run directories and shared with the file). "
                f"Remove this key and set the environment variable OPENAI_API_KEY instead."
            )
    if config.judge.type == "pairwise" and "request_kwargs" in config.judge.params:
        from .errors import ValidationError
        from .judge.request_kwargs import check_request_kwargs

        try:
            check_request_kwargs(config.judge.params["request_kwargs"], where="judge.params.request_kwargs")
        except ValidationError as exc:
            raise ConfigError(f"{source}: {exc}" if source else str(exc)) from None


def _check_fields(config: RunConfig, source: str | None) -> None:
    """``data.fields`` given by name must be a known field set (a mapping is checked when the data is read)."""
    from .data import FIELD_SETS

    fields = config.data.fields
    if isinstance(fields, str) and fields not in FIELD_SETS:
        hint = _did_you_mean(fields, tuple(FIELD_SETS), 0.5)
        raise ConfigError(
            f"{_where(source, 'data.fields')}: must be one of {sorted(FIELD_SETS)} or a mapping of field names, "
            f"got {fields!r}.{hint}"
        )


def _check_combination(config: RunConfig, source: str | None) -> None:
    """Rules that involve more than one key."""
    _check_no_judge_secret(config, source)
    _check_fields(config, source)
    if config.judge is not None and config.judge.type == "pairwise" and config.judge.references is None:
        raise ConfigError(
            f"{_where(source, 'judge.references')}: the pairwise judge compares with reference answers; "
            f"give the path of a JSONL file of reference answers."
        )
    if config.model is None and config.data.embeddings is None:
        raise ConfigError(
            f"{_where(source, 'model')}: a run needs a view of the data to select with: give a `model` "
            f"section (a local Hugging Face model directory) or precomputed `data.embeddings` (.npy)."
        )
    if config.judge is not None and config.model is None:
        raise ConfigError(
            f"{_where(source, 'judge')}: a judge evaluates the trained models, so it needs a `model` section."
        )


def _read_file(path: Path) -> Any:
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Configuration file {str(path)!r} does not exist.") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read configuration file {str(path)!r}: {exc}.") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a text file (byte {exc.start} is not UTF-8: {exc.object[exc.start:exc.start + 4]!r}); "
            f"a configuration is a YAML (.yaml/.yml) or TOML (.toml) text file in UTF-8."
        ) from None
    try:
        return _parse_text(path, suffix, text)
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a configuration file.") from None


class _DuplicateKey(Exception):
    """A key written twice in one YAML mapping (lines are 1-based)."""

    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(key, line, first)
        self.key, self.line, self.first = key, line, first


_LOADERS: dict[int, Any] = {}


def _unique_key_loader(yaml: Any) -> Any:
    """A ``yaml.SafeLoader`` that raises :class:`_DuplicateKey` for a key written twice in one mapping.

    Keys merged in with ``<<:`` may be overridden by a key written in the mapping itself (YAML's rule).
    """
    if id(yaml) not in _LOADERS:

        class UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[name-defined,misc]
            def construct_mapping(self, node: Any, deep: bool = False) -> Any:
                seen: dict[Any, int] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
                    try:
                        if key in seen:
                            raise _DuplicateKey(key, line, seen[key])
                        seen[key] = line
                    except TypeError:  # an unhashable key: SafeLoader's own error follows
                        continue
                return super().construct_mapping(node, deep=deep)

        _LOADERS[id(yaml)] = UniqueKeyLoader
    return _LOADERS[id(yaml)]


def _parse_text(path: Path, suffix: str, text: str) -> Any:
    if suffix == ".toml":
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}.") from exc
    if suffix in (".yaml", ".yml"):
        yaml = require("yaml", feature="YAML configuration files", extra="config")
        try:
            return yaml.load(text, Loader=_unique_key_loader(yaml))  # noqa: S506 - a SafeLoader subclass
        except _DuplicateKey as dup:
            raise ConfigError(
                f"{path}: line {dup.line}: the key {dup.key!r} appears twice in the same mapping (first at line "
                f"{dup.first}); YAML would keep the last value and ignore the other silently. Remove one of them."
            ) from None
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
# running a configuration: what each section means, built with diverseevol.assemble
# --------------------------------------------------------------------------------------------
def build_judge(config: RunConfig) -> Any:
    """The judge the ``judge`` section describes (it needs the ``model`` section).

    ``exact_match``: generated answers compared with the outputs of ``judge.path``, grouped by
    ``judge.group_field``; ``pairwise``: a :class:`~diverseevol.judge.PairwiseLoopJudge` against
    ``judge.references``, writing answers and reports under ``run_dir/judge``.

    Raises
    ------
    ConfigError
        When there is no ``judge`` section, a test record lacks ``group_field``, or an argument
        is misspelt.
    """
    from .assemble import build_generator, build_pairwise_loop_judge, load_exact_match_judge

    j = config.judge
    if j is None:
        raise ConfigError("judge: the configuration has no `judge` section to build a judge from.")
    generator = build_generator(j.generation, where="judge.generation")
    if j.type == "exact_match":
        return load_exact_match_judge(j.path, generator, group_field=j.group_field, params=j.params, where="judge")
    assert j.references is not None  # parse_config requires it for the pairwise judge
    return build_pairwise_loop_judge(j.path, generator, references=j.references, benchmark=j.benchmark,
                                     params=j.params, output_dir=config.run_dir / "judge", where="judge.params")


def build_sampler(config: RunConfig) -> Any:
    """The sampler of the ``sampler`` section (a registered name and its parameters).

    Raises
    ------
    UnknownSamplerError
        When ``sampler.name`` is not registered (the message suggests a close name).
    ConfigError
        When ``sampler.params`` holds a parameter the sampler does not take or a bad value; the
        message names ``sampler.params`` and the configuration file.
    """
    from .errors import UnknownSamplerError, ValidationError
    from .samplers.registry import get_sampler

    try:
        return get_sampler(config.sampler.name, **config.sampler.params)
    except UnknownSamplerError:
        raise
    except (ValidationError, TypeError) as exc:
        source = str(config.source) if config.source else None
        raise ConfigError(f"{_where(source, 'sampler.params')}: {exc}") from exc


def _load_records(config: RunConfig) -> Any:
    """Z as ``data`` describes it; a ValidationError of the reader's arguments names ``data.fields``."""
    from .data import load_instructions
    from .errors import ValidationError

    try:
        records = load_instructions(config.data.path, fields=config.data.fields)
    except ValidationError as exc:  # argument errors (data content problems are DataFormatError)
        source = str(config.source) if config.source else None
        raise ConfigError(f"{_where(source, 'data.fields')}: {exc}") from exc
    return records[: config.data.limit] if config.data.limit is not None else records


def build_loop(config: RunConfig, *, overwrite: bool = False, progress: bool = True) -> Any:
    """Build the :class:`~diverseevol.EvolutionLoop` a configuration describes.

    Without a ``model`` section the loop selects with the fixed ``data.embeddings`` every
    round (no training). With one, it trains :class:`~diverseevol.hf.HFTrainer` from
    ``model.name_or_path`` each round (a ``.gguf`` file is converted once), embeds with
    :class:`~diverseevol.hf.HFEmbedder`, scores with :class:`~diverseevol.hf.HFScorer` when the
    sampler needs uncertainty scores, and judges with the ``judge`` section. The parts are built
    by :mod:`diverseevol.assemble`.

    Parameters
    ----------
    config : RunConfig
    overwrite : bool, default False
        Start the run directory over; otherwise an existing run is resumed.
    progress : bool, default True
        Progress bars (also off with ``DIVERSEEVOL_PROGRESS=0``).

    Raises
    ------
    ConfigError
        When the sampler needs model scores but there is no ``model`` section, or a keyword
        argument of a part is misspelt (the message names the key).
    """
    from ._progress import progress_enabled
    from .assemble import assemble_loop, build_hf_parts, fixed_embedding_parts
    from .samplers import requirements_of

    progress = progress and progress_enabled()
    sampler = build_sampler(config)
    needs = requirements_of(sampler)
    records = _load_records(config)
    judge = None
    if config.model is None:
        assert config.data.embeddings is not None  # parse_config guarantees a view of the data
        if needs.scores:
            raise ConfigError(
                f"sampler {config.sampler.name!r} needs model scores ({', '.join(sorted(needs.to_strings()))}); "
                f"add a `model` section, or use a sampler that needs only embeddings."
            )
        parts = fixed_embedding_parts(config.data.embeddings, len(records))
    else:
        m = config.model
        tracked = {"report_to": config.report_to, "run_name": config.run_dir.name} if config.report_to else {}
        parts = build_hf_parts(m.name_or_path, scores=bool(needs.scores), progress=progress, seed=config.seed,
                               trainer={**tracked, **(m.trainer or {})}, embedder=m.embedder, scorer=m.scorer,
                               where="model")
        if config.judge is not None:
            judge = build_judge(config)
    b = config.budget
    return assemble_loop(
        records,
        parts,
        sampler=sampler,
        judge=judge,
        init_size=b.init_size,
        k=b.k,
        rounds=b.rounds,
        mode=b.mode,
        seed=config.seed,
        run_dir=config.run_dir,
        overwrite=overwrite,
        progress=progress,
        tags={"config_file": str(config.source) if config.source else None},
        report_to=config.report_to,
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
