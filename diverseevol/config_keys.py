"""How a configuration file's keys are declared and checked: one :class:`_Key` per dataclass field.

The section dataclasses of :mod:`diverseevol.config` declare every key once with :func:`_key`;
:func:`_check_keys` (unknown, missing and mistyped keys), :func:`_convert` (paths resolved against
the file's folder, ranges and choices) and :func:`_build` read those declarations, so a new key is
one field. Imports the standard library, :mod:`diverseevol.errors` (and the HF model resolver
inside a function).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

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
    output : bool
        For a ``path``: the run writes it (``run_dir``), so :func:`check_files` does not ask for it
        to exist.
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
    output: bool = False


def _key(what: str, *types: type, default: Any = MISSING, default_factory: Any = MISSING, **spec: Any) -> Any:
    """A dataclass field carrying its :class:`_Key` (``default``: absent means required)."""
    key = _Key(what, tuple(types), **spec)
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata={"key": key})
    return field(default=default, metadata={"key": key})



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


def _relative_note(source: str | None) -> str:
    """How relative paths of a configuration are read, for messages."""
    where = f"the config file {source}" if source else "the base directory given to parse_config"
    return f"a relative path is relative to {where}, not to the working directory"


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
            f"{_where(source, full)}: model path {value!r} does not exist (looked for {candidate}; "
            f"{_relative_note(source)}).{extra} Fix the path (a model directory or a .gguf file); for a "
            f"Hugging Face Hub model write its id as 'org/name' or 'hub:org/name'."
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
    try:
        return cls(**values)
    except ConfigError as exc:  # a section's own check (SamplerConfig's spec) names its key, not the file
        raise ConfigError(f"{source}: {exc}" if source else str(exc)) from None
