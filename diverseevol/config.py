"""Run configuration files for ``diverseevol run``: YAML or TOML, validated with clear messages.

A configuration has the sections ``data``, ``model`` (optional), ``sampler``, ``budget``,
``judge`` (optional) and the keys ``run_dir`` and ``seed``::

    run_dir: runs/dolly-kcenter        # where rounds are written; an existing run is resumed
    seed: 0
    report_to: null                    # tracking: tensorboard, mlflow, wandb, a list, all or none
    data:
      path: databricks-dolly-15k.jsonl # JSON / JSONL (.gz) / Parquet file or save_to_disk directory
      limit: null                      # keep only the first N records
      embeddings: null                 # .npy of shape (N, d): fixed embeddings, no model needed
      fields: null                     # "alpaca", "dolly" or a mapping; detected when null
      format: null                     # record format: alpaca, dolly, sharegpt, openai; detected when null
      file_type: null                  # json, jsonl, parquet, dataset; from the suffix when null
      columns: null                    # LLaMA-Factory column names, e.g. {messages: conversations}
      tags: null                       # LLaMA-Factory tag names, e.g. {role_tag: role, content_tag: content}
      encoding: utf-8                  # also: meta_fields, on_duplicates, duplicate_keys; or instead of path:
                                       # dataset_info: dataset_info.json + dataset: <entry name>
    model:                             # optional: the Hugging Face parts (extra "hf")
      name_or_path: path/to/llama      # a local model directory (or a .gguf file)
      trainer: {epochs: 3, lr: 2.0e-5} # keyword arguments of diverseevol.hf.HFTrainer
      embedder: {batch_size: 32}       # keyword arguments of diverseevol.hf.HFEmbedder, e.g.
                                       # pooling: mean | weighted_mean | last_token, layer: -1
    sampler:
      name: kcenter                    # any registered sampler, plugins included
      params: {metric: cosine}         # e.g. {transform: whiten} (kcenter: normalize, center, whiten, project)
      # or one sampler spec (docs/samplers.md#sampler-specs): spec: "kcenter:metric=cosine"
    budget:
      init_size: 100                   # |P_0|, at least 1 (M_0 is trained on it)
      k: 100
      rounds: 10
      mode: iterative                  # or one_time
    judge:                             # optional
      type: exact_match                # or pairwise
      path: test.jsonl
      params: {}

Relative paths are relative to the configuration file (resolved against its directory; the pairwise
judge's ``judge.params.cache`` too, so a resumed run finds its cache from any directory). Unknown keys,
values of the wrong type and missing required keys raise :class:`~diverseevol.errors.ConfigError`
naming the key (with a close match for misspellings) and the expected type; :func:`check_files`
checks that the files a configuration reads exist.

This module is the schema, the reading and the validation (and what the ``sampler`` and ``data``
sections name: :func:`build_sampler`, the records). The loop a configuration describes is built by
:mod:`diverseevol.assemble_config` (:func:`~diverseevol.assemble_config.build_loop`,
:func:`~diverseevol.assemble_config.run_config`, :func:`~diverseevol.assemble_config.build_judge`)
with the parts of :mod:`diverseevol.assemble`; their old names here still work for one release,
with a ``DeprecationWarning``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ._deprecation import moved_names
from ._files import REDACTED, redact_secrets
from ._optional import require
from .errors import ConfigError
from .config_keys import _key, _keys, _where, _type_name, _check_keys, _relative_note, _convert, _build
from .samplers.spec import MODES

__all__ = [
    "BudgetConfig",
    "DataConfig",
    "JudgeConfig",
    "ModelConfig",
    "RunConfig",
    "SamplerConfig",
    "build_sampler",
    "check_files",
    "load_config",
    "override",
    "parse_config",
]

_DEFAULT_SAMPLER = "kcenter"
_JUDGES = ("exact_match", "pairwise")


# --------------------------------------------------------------------------------------------
# schema: every key is declared once, as a dataclass field (config_keys.py); validation reads the fields
# --------------------------------------------------------------------------------------------
_NULL = type(None)


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` section: where Z comes from, and every option of
    :func:`~diverseevol.data.load_instructions`.

    Attributes
    ----------
    path : Path or None
        The data: a JSON / JSONL (optionally gzip) / Parquet file or a ``save_to_disk``
        directory. Required unless ``dataset_info`` and ``dataset`` name it.
    limit : int or None
        Keep only the first ``limit`` records.
    embeddings : Path or None
        A ``.npy`` file of shape (N, d), rows in the file's record order: fixed embeddings for a
        run without ``model`` (the loop then re-selects from the same view every round).
    fields : str, dict or None
        ``"alpaca"``, ``"dolly"`` or a mapping of field names, as in
        :func:`~diverseevol.data.load_instructions`; detected when omitted.
    format : str or None
        The record format (``alpaca``, ``dolly``, ``sharegpt``, ``openai`` or a registered one);
        detected when omitted.
    file_type : str or None
        ``json``, ``jsonl``, ``parquet`` or ``dataset``; from the suffix and content when omitted.
    columns, tags : dict or None
        Column and tag names as LLaMA-Factory's ``dataset_info.json`` spells them.
    meta_fields : list of str or None
        Source fields kept in each record's ``meta``.
    encoding : str
        Text encoding of JSON files (``utf-8-sig`` for a file that starts with a byte-order mark).
    on_duplicates : {"warn", "ignore"}
        Whether records with identical text are reported.
    duplicate_keys : {"error", "first", "last"}
        A JSON record with a key twice is refused unless this says which occurrence to keep.
    dataset_info : Path or None
        A LLaMA-Factory ``dataset_info.json``; with ``dataset``, the entry gives the file, its
        formatting, columns and tags (then ``path``, ``columns``, ``tags`` and ``fields`` stay unset).
    dataset : str or None
        The entry of ``dataset_info`` to load.
    """

    path: Path | None = _key("a path", str, _NULL, default=None, kind="path")
    limit: int | None = _key("an integer or null", int, _NULL, default=None, minimum=1)
    embeddings: Path | None = _key("a path or null", str, _NULL, default=None, kind="path")
    fields: str | dict[str, Any] | None = _key(
        "'alpaca', 'dolly' or a mapping of field names", str, dict, _NULL, default=None
    )
    format: str | None = _key("a record format name or null", str, _NULL, default=None)
    file_type: str | None = _key("a file type (json, jsonl, parquet, dataset) or null", str, _NULL, default=None)
    columns: dict[str, Any] | None = _key("a mapping of dataset_info column names or null", dict, _NULL,
                                          default=None)
    tags: dict[str, Any] | None = _key("a mapping of dataset_info tag names or null", dict, _NULL, default=None)
    meta_fields: list[str] | None = _key("a list of field names or null", list, _NULL, default=None)
    encoding: str = _key("a text encoding such as 'utf-8'", str, default="utf-8")
    on_duplicates: str = _key("'warn' or 'ignore'", str, default="warn", choices=("warn", "ignore"))
    duplicate_keys: str = _key("'error', 'first' or 'last'", str, default="error", choices=("error", "first", "last"))
    dataset_info: Path | None = _key("a path to a dataset_info.json or null", str, _NULL, default=None,
                                     kind="path")
    dataset: str | None = _key("an entry name of dataset_info or null", str, _NULL, default=None)

    def load_options(self) -> dict[str, Any]:
        """The :func:`~diverseevol.data.load_instructions` keyword arguments the section gives."""
        names = ("format", "file_type", "fields", "columns", "tags", "meta_fields", "encoding", "on_duplicates",
                 "duplicate_keys")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def load(self) -> Any:
        """The records the section describes (``limit`` applied): a list of InstructionRecord."""
        from .data import load_dataset_info, load_instructions

        if self.dataset_info is not None:
            records = load_dataset_info(self.dataset_info, str(self.dataset), **self.load_options())
        else:
            records = load_instructions(self.path, **self.load_options())
        return records[: self.limit] if self.limit is not None else records


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
    """The ``sampler`` section: a sampler spec, or its name and constructor parameters.

    ``spec`` is the one sampler-spec syntax (docs/samplers.md#sampler-specs), e.g.
    ``"kcenter:transform=normalize"``; the section may also be that string alone. ``name`` and
    ``params`` are the same written as keys. Both forms are checked by
    :class:`~diverseevol.samplers.spec.SamplerSpec`; when both are given they must agree. Once read,
    the section holds the spec's parts (``name``, ``params``; ``spec`` is None), so a run directory
    stores one form; a ``mode`` in the spec sets ``budget.mode`` (and must agree with it when that
    is written too).

    Attributes
    ----------
    name : str
        Registered sampler name (default ``"kcenter"``).
    params : dict
        Constructor parameters, ``transform`` included.
    spec : str or None
        The spec as written; None once read into ``name`` and ``params``.
    """

    name: str | None = _key("a sampler name", str, default=None)
    params: dict[str, Any] = _key("a mapping of sampler parameters", dict, default_factory=dict)
    spec: str | None = _key(
        "a sampler spec such as 'kcenter:transform=normalize' (docs/samplers.md#sampler-specs)", str, _NULL,
        default=None,
    )

    def __post_init__(self) -> None:
        from .errors import ValidationError
        from .samplers.spec import SamplerSpec, parse_sampler_spec

        try:
            if self.spec is None:
                parsed = SamplerSpec(self.name or _DEFAULT_SAMPLER, self.params)
            else:
                parsed = parse_sampler_spec(self.spec)
        except ValidationError as exc:
            raise ConfigError(f"sampler.{'params' if self.spec is None else 'spec'}: {exc}") from None
        if self.spec is not None:
            written = SamplerSpec(self.name or parsed.name, self.params or parsed.kwargs, mode=parsed.mode)
            if written != parsed:
                raise ConfigError(
                    f"sampler.spec: {self.spec!r} says {str(parsed)!r} but sampler.name / sampler.params say "
                    f"{str(written)!r}; give the sampler once (sampler.spec, or sampler.name with sampler.params)."
                )
        object.__setattr__(self, "_written_as", "sampler.params" if self.spec is None else "sampler.spec")
        object.__setattr__(self, "name", parsed.name)
        object.__setattr__(self, "params", parsed.kwargs)
        object.__setattr__(self, "spec", None)
        object.__setattr__(self, "_parsed", parsed)

    def to_spec(self) -> Any:
        """The section as a :class:`~diverseevol.samplers.spec.SamplerSpec` (with the mode a spec gave)."""
        return self._parsed  # type: ignore[attr-defined]


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
    mode: str = _key("'iterative' or 'one_time'", str, default="iterative", choices=MODES)


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

    run_dir: Path = _key("a path", str, kind="path", output=True)
    data: DataConfig = _key("a section", dict, section=DataConfig)
    sampler: SamplerConfig = _key("a section or a sampler spec", dict, str, default_factory=SamplerConfig,
                                  section=SamplerConfig, shorthand="spec")
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
    config = _mode_from_sampler_spec(RunConfig(**values, source=Path(source) if source else None), mapping, source)
    _check_combination(config, source)
    _check_report_to(config.report_to, source)
    return config


def _mode_from_sampler_spec(config: RunConfig, mapping: Mapping[str, Any], source: str | None) -> RunConfig:
    """A ``mode`` in ``sampler.spec`` sets ``budget.mode``; written in both places, the two must agree."""
    mode = config.sampler.to_spec().mode
    if mode is None or mode == config.budget.mode:
        return config
    budget = mapping.get("budget")
    if isinstance(budget, Mapping) and "mode" in budget:
        raise ConfigError(
            f"{_where(source, 'sampler.spec')}: mode={mode} disagrees with budget.mode = {config.budget.mode!r}; "
            f"give the mode once (budget.mode, or mode= in the spec)."
        )
    return replace(config, budget=replace(config.budget, mode=mode))


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


def _check_data(config: RunConfig, source: str | None) -> None:
    """The ``data`` section: each load option as :func:`~diverseevol.data.check_load_options` checks it
    (naming the key), where the data comes from, and a ``dataset_info`` entry read (not its data)."""
    from .data import check_load_options, file_type_names
    from .data.dataset_info import dataset_info_source
    from .errors import DiverseEvolError

    d = config.data
    if d.format in file_type_names():
        raise ConfigError(f"{_where(source, 'data.format')}: names the record format; {d.format!r} is a file type: "
                          f"write file_type: {d.format}.")
    options = d.load_options()
    for key, value in options.items():
        try:
            check_load_options(**{key: value})
        except DiverseEvolError as exc:
            raise ConfigError(f"{_where(source, 'data.' + key)}: {exc}") from None
    try:
        check_load_options(**options)
    except DiverseEvolError as exc:
        raise ConfigError(f"{_where(source, 'data')}: {exc}") from None
    if d.dataset_info is None:
        if d.dataset is not None:
            raise ConfigError(f"{_where(source, 'data.dataset')}: names an entry of data.dataset_info, which is "
                              f"not given; add data.dataset_info (a LLaMA-Factory dataset_info.json).")
        if d.path is None:
            raise ConfigError(f"{_where(source, 'data.path')}: missing required key (expected a path; or "
                              f"data.dataset_info with data.dataset).")
        return
    given = [k for k in ("path", "columns", "tags", "fields") if getattr(d, k) is not None]
    if given:
        raise ConfigError(f"{_where(source, 'data.' + given[0])}: the data.dataset_info entry gives the file, its "
                          f"columns and tags; remove data.{given[0]} (or data.dataset_info).")
    if d.dataset is None:
        raise ConfigError(f"{_where(source, 'data.dataset')}: missing required key (the entry of "
                          f"data.dataset_info to load).")
    try:
        dataset_info_source(d.dataset_info, d.dataset)
    except DiverseEvolError as exc:
        key = "data.dataset" if "no entry" in str(exc) else "data.dataset_info"
        raise ConfigError(f"{_where(source, key)}: {exc}") from None


def _check_combination(config: RunConfig, source: str | None) -> None:
    """Rules that involve more than one key."""
    _check_no_judge_secret(config, source)
    _check_data(config, source)
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
    path = Path(path).absolute()  # the run directory records it; it must mean the same from any directory
    raw = _read_file(path)
    if raw is None:
        raise ConfigError(f"{path}: the file is empty; it needs at least `run_dir` and `data.path`.")
    return parse_config(raw, base_dir=path.parent, source=str(path))


def check_files(config: RunConfig) -> None:
    """Check that every file the configuration reads exists (``data.path``, ``data.embeddings``,
    ``judge.path``, ``judge.references``: every path key but ``run_dir``, which the run writes).

    ``diverseevol run`` calls it before anything starts, with and without ``--check``.

    Raises
    ------
    ConfigError
        Naming the key, the path looked for, and that relative paths are relative to the
        configuration file.
    """
    source = str(config.source) if config.source else None
    sections: list[tuple[str, Any]] = [("", config)]
    sections += [(f"{f.name}.", getattr(config, f.name)) for f in fields(config)
                 if "key" in f.metadata and f.metadata["key"].section is not None]
    for prefix, section in sections:
        if section is None:
            continue
        for name, (k, _) in _keys(type(section)).items():
            value = getattr(section, name)
            if k.kind == "path" and not k.output and value is not None and not Path(value).exists():
                raise ConfigError(
                    f"{_where(source, prefix + name)}: {value} does not exist ({_relative_note(source)}). "
                    f"Fix the path."
                )


def override(
    config: RunConfig,
    *,
    sampler: str | None = None,
    run_dir: str | Path | None = None,
    report_to: str | list[str] | None = None,
) -> RunConfig:
    """``config`` with some values replaced (the command line's ``--sampler``, ``--run-dir``, ``--report-to``).

    Parameters
    ----------
    config : RunConfig
    sampler : str, optional
        Replaces ``sampler.name`` (its ``params`` are kept).
    run_dir : str or Path, optional
        Replaces ``run_dir`` (a relative path is relative to the working directory).
    report_to : str or list of str, optional
        Replaces ``report_to``; checked like the file's value.

    Raises
    ------
    ConfigError
        When ``report_to`` names an unknown integration.
    """
    if sampler is not None:
        config = dataclasses.replace(config, sampler=dataclasses.replace(config.sampler, name=sampler))
    if run_dir is not None:
        config = dataclasses.replace(config, run_dir=Path(run_dir))
    if report_to is not None:
        _check_report_to(report_to, None)
        config = dataclasses.replace(config, report_to=report_to if isinstance(report_to, str) else list(report_to))
    return config


# --------------------------------------------------------------------------------------------
# what the sampler and data sections mean (the loop is built by diverseevol.assemble_config)
# --------------------------------------------------------------------------------------------
def build_sampler(config: RunConfig) -> Any:
    """The sampler of the ``sampler`` section (its spec, or its name and parameters), built through the registry.

    Raises
    ------
    UnknownSamplerError
        When the sampler name is not registered (the message suggests a close name).
    ConfigError
        When the parameters hold one the sampler does not take (with a close match) or a bad value;
        the message names ``sampler.spec`` or ``sampler.params`` and the configuration file.
    """
    from .errors import UnknownSamplerError, ValidationError

    key = config.sampler._written_as  # type: ignore[attr-defined]
    try:
        return config.sampler.to_spec().build()
    except UnknownSamplerError:
        raise
    except (ValidationError, TypeError) as exc:
        source = str(config.source) if config.source else None
        raise ConfigError(f"{_where(source, key)}: {exc}") from exc


def _load_records(config: RunConfig) -> Any:
    """Z as ``data`` describes it; options that fit no record shape of the data name ``data``
    (each option alone was checked at parse time; data problems are DataFormatError)."""
    from .errors import ValidationError

    try:
        return config.data.load()
    except ValidationError as exc:
        raise ConfigError(f"{_where(str(config.source) if config.source else None, 'data')}: {exc}") from exc


#: Names that moved to :mod:`diverseevol.assemble_config` (building is not reading); kept here for one release.
_MOVED = ("build_judge", "build_loop", "run_config")


#: The old import paths ``diverseevol.config.build_loop`` etc., with a ``DeprecationWarning``.
__getattr__ = moved_names(__name__, "diverseevol.assemble_config", _MOVED, "building is not reading")
