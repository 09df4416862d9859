"""Sampler specs: one text syntax for "a sampler with parameters", one parser, one value grammar.

A spec names a registered sampler, its constructor parameters and two reserved keys::

    name[:key=value[,key=value...]]

    kcenter                               the paper's K-Center
    kcenter:transform=normalize           K-Center on L2-normalised embeddings
    kcenter:mode=one_time,metric=cosine   one-time K-Center (M_0 picks the whole budget), cosine
    kmeans:n_clusters=8

``mode`` (one of :data:`MODES`) is how the loop runs the sampler (it is not a constructor
parameter); ``transform`` is the embedding transform the sampler applies first (see
:mod:`diverseevol.transforms`). Every other key is a constructor parameter.

The value grammar (:func:`parse_param_value`), the same everywhere a ``key=value`` is written
(``compare``, ``demo --samplers``, ``select --param``, the configuration's ``sampler.spec``): a JSON
literal (``8``, ``0.5``, ``true``, ``false``, ``null``, ``"quoted text"``, ``[1, 2]``, ``{"a": 1}``),
otherwise the text itself as a string (``cosine``, ``center+normalize``, ``whiten:dim=64``). A
value with a comma goes in double quotes (``transform="project:dim=256,kind=rademacher"``). An
empty value (``transform=``) is an error.

``str(spec)`` is the canonical text (reserved keys first, then the parameters sorted by key;
strings bare where the grammar reads them back unchanged), and ``parse_sampler_spec(str(spec)) ==
spec``. Two specs are equal when their canonical texts are.

Older spellings are read with a :class:`DeprecationWarning` naming the new one: the demo's
``kcenter_one_time`` (``kcenter:mode=one_time``) and ``@transform`` suffix (``kcenter@normalize``:
``kcenter:transform=normalize``), and the values ``yes`` / ``no`` / ``none`` (and Python's ``True`` /
``False`` / ``None``) for ``true`` / ``false`` / ``null``.

Importing this module needs nothing beyond the standard library; :meth:`SamplerSpec.build` uses the
registry.
"""

from __future__ import annotations

import difflib
import json
import numbers
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError

__all__ = [
    "MODES",
    "RESERVED_KEYS",
    "SamplerSpec",
    "build_sampler",
    "format_param_value",
    "parse_param",
    "parse_param_value",
    "parse_sampler_spec",
    "parse_sampler_specs",
]

#: How the loop runs a sampler: each round's model selects (``iterative``), or M_0 selects the whole
#: budget at once (``one_time``, the paper's one-time baseline). The one spelling of the modes.
MODES: tuple[str, ...] = ("iterative", "one_time")

#: Keys of a spec that are not constructor parameters of the sampler (``transform`` is passed to the
#: sampler's constructor by :meth:`SamplerSpec.build`, but written and compared as its own field).
RESERVED_KEYS: tuple[str, ...] = ("mode", "transform")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OLD_ONE_TIME = "_one_time"
#: Old bare words of the value grammar and what they mean now.
_OLD_WORDS = {"yes": True, "no": False, "none": None, "True": True, "False": False, "None": None}
#: A string with one of these characters (or edge spaces) is written in double quotes.
_QUOTE_CHARS = frozenset(',"[]{}\\')


def _deprecated(old: str, new: str, what: str) -> None:
    warnings.warn(
        f"{what} {old!r} is an old spelling; write {new!r} (see docs/samplers.md#sampler-specs). The old "
        f"spelling will be refused in a future release.",
        DeprecationWarning,
        stacklevel=4,
    )


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------
def parse_param_value(text: str) -> Any:
    """Read one parameter value: a JSON literal, otherwise the text as a string.

    Parameters
    ----------
    text : str
        E.g. ``"8"`` (int), ``"0.5"``, ``"true"``, ``"null"``, ``'"a,b"'`` (str ``a,b``), ``"[1, 2]"``,
        ``'{"dim": 4}'``, ``"cosine"`` (str). Surrounding spaces are ignored.

    Returns
    -------
    Any
        int, float, bool, None, str, list or dict.

    Raises
    ------
    ValidationError
        For an empty value.

    Examples
    --------
    >>> from diverseevol.samplers.spec import parse_param_value
    >>> parse_param_value("8"), parse_param_value("false"), parse_param_value("center+normalize")
    (8, False, 'center+normalize')
    """
    if not isinstance(text, str):
        raise ValidationError(f"A parameter value is read from text; got {text!r} of type {type(text).__name__}.")
    raw = text.strip()
    if not raw:
        raise ValidationError(
            "A parameter value is empty; write a value (e.g. transform=normalize, n_clusters=8, prune=false), "
            "or null for none, or leave the key out."
        )
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        pass
    if raw in _OLD_WORDS:
        value = _OLD_WORDS[raw]
        _deprecated(raw, json.dumps(value), "The parameter value")
        return value
    if raw.lower() in _OLD_WORDS:
        value = _OLD_WORDS[raw.lower()]
        _deprecated(raw, json.dumps(value), "The parameter value")
        return value
    return raw


def _reads_back(text: str) -> bool:
    """Whether ``text`` written bare is read back by :func:`parse_param_value` as the same string."""
    if not text or text != text.strip() or _QUOTE_CHARS.intersection(text):
        return False
    if text in _OLD_WORDS or text.lower() in _OLD_WORDS:
        return False
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return True
    return False


def format_param_value(value: Any) -> str:
    """The canonical text of a parameter value, read back unchanged by :func:`parse_param_value`.

    Strings are written bare when that reads back as the same string, else as a JSON string; every
    other value as compact JSON (objects with sorted keys).

    Raises
    ------
    ValidationError
        For a value the grammar cannot write (not a JSON value: an object, a set, a non-string key).
    """
    if isinstance(value, str) and _reads_back(value):
        return value
    try:
        return json.dumps(_plain(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"Sampler parameter value {value!r} ({type(value).__name__}) cannot be written as a spec value "
            f"({exc}); a spec holds JSON values: numbers, true/false, null, strings, lists and objects. Build "
            f"the sampler with get_sampler(name, **params) to pass other objects."
        ) from None


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data: tuples as lists, numpy-style numbers as Python numbers (recursively)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        bad = [key for key in value if not isinstance(key, str)]
        if bad:
            raise TypeError(f"object keys must be strings, got {bad[0]!r}")
        return {k: _plain(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def parse_param(text: str) -> tuple[str, Any]:
    """Read ``key=value`` (e.g. the CLI's ``--param metric=cosine``) with the one value grammar.

    Returns
    -------
    tuple of (str, Any)
        The key (an identifier) and :func:`parse_param_value` of the text after the first ``=``.

    Raises
    ------
    ValidationError
        When there is no ``=``, the key is not an identifier, or the value is empty.
    """
    key, eq, raw = text.partition("=")
    key = key.strip()
    if not eq or not _IDENT.match(key):
        raise ValidationError(
            f"A sampler parameter is written KEY=VALUE with KEY a name (e.g. metric=cosine, n_clusters=8); "
            f"got {text.strip()!r}."
        )
    if not raw.strip():
        raise ValidationError(
            f"The value of {key!r} is empty ({text.strip()!r}); write a value (e.g. transform=normalize, "
            f"n_clusters=8, prune=false), null for none, or leave the key out."
        )
    return key, parse_param_value(raw)


# --------------------------------------------------------------------------------------------
# splitting a comma list at its top level
# --------------------------------------------------------------------------------------------
def _split_top_level(text: str) -> list[str]:
    """Split at commas outside JSON strings, lists and objects.

    Raises
    ------
    ValidationError
        For an unbalanced double quote or bracket.
    """
    parts: list[str] = []
    buf: list[str] = []
    depth, quoted, escaped = 0, False, False
    for ch in text:
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth < 0:
                raise ValidationError(f"Unbalanced {ch!r} in sampler spec {text!r}.")
        elif ch == "," and depth == 0:
            parts.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    if quoted:
        raise ValidationError(f"Unbalanced double quote in sampler spec {text!r}; close the quoted value.")
    if depth:
        raise ValidationError(f"Unbalanced '[' or '{{' in sampler spec {text!r}; close the list or object.")
    parts.append("".join(buf).strip())
    return parts


# --------------------------------------------------------------------------------------------
# the spec
# --------------------------------------------------------------------------------------------
def _check_mode(mode: Any) -> str | None:
    if mode is None or (isinstance(mode, str) and mode in MODES):
        return mode
    close = difflib.get_close_matches(str(mode), MODES, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValidationError(f"mode must be one of {list(MODES)} (or left out); got {mode!r}.{hint}")


@dataclass(frozen=True, eq=False)
class SamplerSpec:
    """A registered sampler with its parameters, mode and embedding transform: one spec.

    Build one with :func:`parse_sampler_spec` (from text) or directly; ``str(spec)`` is the
    canonical text, which :func:`parse_sampler_spec` reads back to an equal spec.

    Attributes
    ----------
    name : str
        Registered sampler name (see :func:`~diverseevol.list_samplers`).
    params : dict
        Constructor parameters other than ``transform`` (JSON values). ``mode`` or ``transform`` given
        here are moved to their own fields.
    mode : {"iterative", "one_time"} or None
        How the loop runs the sampler; None: the caller's default (``iterative`` for the loop).
    transform : str, list or None
        Embedding-transform spec passed to the sampler (e.g. ``"normalize"``, ``"whiten:dim=64"``);
        None: no transform.

    Examples
    --------
    >>> from diverseevol.samplers.spec import SamplerSpec, parse_sampler_spec
    >>> spec = parse_sampler_spec("kcenter:metric=cosine,mode=one_time")
    >>> spec.name, spec.params, spec.mode, str(spec)
    ('kcenter', {'metric': 'cosine'}, 'one_time', 'kcenter:mode=one_time,metric=cosine')
    >>> spec == SamplerSpec("kcenter", {"metric": "cosine"}, mode="one_time")
    True
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    mode: str | None = None
    transform: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _IDENT.match(self.name):
            raise ValidationError(
                f"A sampler spec starts with a sampler name (letters, digits, '_'; e.g. 'kcenter' or "
                f"'kcenter:transform=normalize'); got {self.name!r}."
            )
        if not isinstance(self.params, Mapping):
            raise ValidationError(
                f"params of sampler {self.name!r} must be a mapping of parameter names to values; got "
                f"{type(self.params).__name__}."
            )
        params = dict(self.params)
        lifted = {key: params.pop(key) for key in RESERVED_KEYS if key in params}
        for key, value in lifted.items():
            own = getattr(self, key)
            if own is not None and value is not None and format_param_value(own) != format_param_value(value):
                raise ValidationError(
                    f"Sampler {self.name!r} is given {key}={format_param_value(own)} and params[{key!r}]="
                    f"{format_param_value(value)}; give {key} once."
                )
            if own is None:
                object.__setattr__(self, key, value)
        for key, value in params.items():
            if not isinstance(key, str) or not _IDENT.match(key):
                raise ValidationError(
                    f"Parameter names of sampler {self.name!r} are names (letters, digits, '_'); got {key!r}."
                )
            format_param_value(value)  # a JSON value, or a clear error now
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "mode", _check_mode(self.mode))
        if isinstance(self.transform, str) and not self.transform.strip():
            raise ValidationError(
                f"Sampler {self.name!r} has an empty transform; write e.g. transform=normalize, or leave "
                f"transform out (or write transform=null) for none."
            )
        if self.transform is not None:
            format_param_value(self.transform)

    # -- text ---------------------------------------------------------------------------------
    def items(self) -> list[tuple[str, Any]]:
        """The ``(key, value)`` pairs of the canonical text: mode, transform, then params by key."""
        out: list[tuple[str, Any]] = []
        if self.mode is not None:
            out.append(("mode", self.mode))
        if self.transform is not None:
            out.append(("transform", self.transform))
        out.extend(sorted(self.params.items()))
        return out

    def __str__(self) -> str:
        items = ",".join(f"{key}={format_param_value(value)}" for key, value in self.items())
        return f"{self.name}:{items}" if items else self.name

    @property
    def label(self) -> str:
        """How the sampler is shown in tables and directory listings: the canonical text."""
        return str(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SamplerSpec):
            return NotImplemented
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __repr__(self) -> str:
        return f"SamplerSpec({str(self)!r})"

    # -- use ----------------------------------------------------------------------------------
    @property
    def kwargs(self) -> dict[str, Any]:
        """The sampler's constructor arguments: ``params`` plus ``transform`` when set."""
        out = dict(self.params)
        if self.transform is not None:
            out["transform"] = self.transform
        return out

    def build(self) -> Any:
        """A new sampler instance: ``get_sampler(name, **kwargs)`` through the registry (``mode`` is the caller's).

        Raises
        ------
        UnknownSamplerError
            For a name that is not registered (with a close match).
        ValidationError
            For a parameter the sampler does not take (with a close match) or a bad value.
        """
        from .registry import get_sampler

        return get_sampler(self.name, **self.kwargs)

    @classmethod
    def parse(cls, text: str | SamplerSpec) -> SamplerSpec:
        """Same as :func:`parse_sampler_spec`."""
        return parse_sampler_spec(text)


def _old_spelling(text: str) -> SamplerSpec | None:
    """The demo's ``<name>[_one_time][@<transform>]`` (a '@' before any ':', or the ``_one_time`` suffix)."""
    head, _, rest = text.partition(":")
    transform = None
    if "@" in head:
        base, _, transform = text.partition("@")
        if not transform.strip():
            raise ValidationError(
                f"Sampler {text!r}: give a transform after '@' (old spelling), or better write "
                f"'{base.strip()}:transform=normalize'."
            )
        transform, rest, head = transform.strip(), "", base.strip()
    name = head.strip()
    if not name.endswith(_OLD_ONE_TIME) and transform is None:
        return None
    mode = None
    if name.endswith(_OLD_ONE_TIME) and len(name) > len(_OLD_ONE_TIME):
        name, mode = name[: -len(_OLD_ONE_TIME)], "one_time"
    spec = _parse_new(f"{name}:{rest}" if rest else name, text)
    spec = SamplerSpec(spec.name, spec.params, mode=spec.mode or mode, transform=transform or spec.transform)
    if mode is not None or transform is not None:
        _deprecated(text, str(spec), "Sampler spec")
    return spec


def _parse_new(text: str, shown: str) -> SamplerSpec:
    name, sep, rest = text.partition(":")
    name = name.strip()
    if not _IDENT.match(name):
        raise ValidationError(
            f"Sampler spec {shown!r} must start with a sampler name (e.g. 'kcenter' or "
            f"'kcenter:transform=normalize'); got {name!r}."
        )
    values: dict[str, Any] = {}
    if sep:
        if not rest.strip():
            raise ValidationError(
                f"Sampler spec {shown!r} has nothing after ':'; write parameters as KEY=VALUE "
                f"(e.g. {name}:metric=cosine) or drop the ':'."
            )
        for item in _split_top_level(rest):
            try:
                key, value = parse_param(item)
            except ValidationError as exc:
                raise ValidationError(f"Sampler spec {shown!r}: {exc}") from None
            if key in values:
                raise ValidationError(f"Sampler spec {shown!r} gives {key!r} twice; give each key once.")
            values[key] = value
    mode = values.pop("mode", None)
    transform = values.pop("transform", None)
    try:
        return SamplerSpec(name, values, mode=mode, transform=transform)
    except ValidationError as exc:
        raise ValidationError(f"Sampler spec {shown!r}: {exc}") from None


def parse_sampler_spec(text: str | SamplerSpec) -> SamplerSpec:
    """Parse one spec ``name[:key=value[,key=value...]]`` into a :class:`SamplerSpec`.

    Parameters
    ----------
    text : str or SamplerSpec
        E.g. ``"kcenter"``, ``"kcenter:transform=normalize"``, ``"kcenter:mode=one_time,metric=cosine"``,
        ``"kmeans:n_clusters=8"``. A :class:`SamplerSpec` is returned unchanged.

    Returns
    -------
    SamplerSpec

    Raises
    ------
    ValidationError
        For an empty or malformed spec, an empty value, a key given twice, or an unknown ``mode``.
        Unknown names and parameters are reported by :meth:`SamplerSpec.build` (with a close match).

    Examples
    --------
    >>> from diverseevol.samplers.spec import parse_sampler_spec
    >>> spec = parse_sampler_spec('kcenter:transform="project:dim=64,kind=rademacher",prune=false')
    >>> spec.transform, spec.params
    ('project:dim=64,kind=rademacher', {'prune': False})
    """
    if isinstance(text, SamplerSpec):
        return text
    if not isinstance(text, str):
        raise ValidationError(
            f"A sampler spec is a string such as 'kcenter:transform=normalize'; got {text!r} of type "
            f"{type(text).__name__}."
        )
    stripped = text.strip()
    if not stripped:
        raise ValidationError("A sampler spec is empty; write a sampler name, e.g. 'kcenter' or 'random'.")
    old = _old_spelling(stripped)
    return old if old is not None else _parse_new(stripped, stripped)


def _starts_a_sampler(piece: str) -> bool:
    """``name`` or ``name:key=value`` (a ':' before any '='); ``key=value`` continues the previous spec."""
    eq, colon = piece.find("="), piece.find(":")
    return eq < 0 or (0 <= colon < eq)


def parse_sampler_specs(specs: str | SamplerSpec | Iterable[str | SamplerSpec]) -> list[SamplerSpec]:
    """Parse a comma-separated list of specs (or several lists) into :class:`SamplerSpec` s.

    A comma starts a new spec unless the piece after it is ``KEY=VALUE``, which continues the
    previous spec's parameters: ``"kcenter,kcenter:transform=whiten,metric=cosine,kmeans"`` is three
    specs, the second with two keys.

    Raises
    ------
    ValidationError
        For an empty list, an empty name (``kcenter,,random``), a malformed spec, or a spec listed
        twice (two spellings of one spec count as the same).

    Examples
    --------
    >>> from diverseevol.samplers.spec import parse_sampler_specs
    >>> [str(s) for s in parse_sampler_specs("kcenter:transform=whiten,metric=cosine,random")]
    ['kcenter:transform=whiten,metric=cosine', 'random']
    """
    if isinstance(specs, (str, SamplerSpec)):
        specs = [specs]
    out: list[SamplerSpec] = []
    for item in specs:
        if isinstance(item, SamplerSpec):
            out.append(item)
            continue
        groups: list[str] = []
        for piece in _split_top_level(str(item)):
            if not piece:
                raise ValidationError(f"Empty sampler name in {item!r}; write e.g. 'kcenter,random'.")
            if _starts_a_sampler(piece) or not groups:
                groups.append(piece)
            else:
                groups[-1] += "," + piece
        out.extend(parse_sampler_spec(g) for g in groups)
    if not out:
        raise ValidationError("No samplers given; write e.g. 'kcenter,random'.")
    seen: set[SamplerSpec] = set()
    for spec in out:
        if spec in seen:
            raise ValidationError(f"Sampler {str(spec)!r} is listed twice; list each setting once.")
        seen.add(spec)
    return out


def build_sampler(spec: Any) -> Any:
    """Build a sampler from a spec string, a :class:`SamplerSpec`, or return a sampler instance as is.

    Parameters
    ----------
    spec : str, SamplerSpec or Sampler
        ``"kcenter"``, ``"kcenter:transform=normalize"`` (see :func:`parse_sampler_spec`), a
        :class:`SamplerSpec`, or an object with a ``select`` method (returned unchanged). A spec's
        ``mode`` is the caller's business and is not checked here.

    Returns
    -------
    Sampler

    Raises
    ------
    UnknownSamplerError
        For a name nobody registered.
    ValidationError
        For a malformed spec or parameters the sampler does not take.
    """
    if isinstance(spec, (str, SamplerSpec)):
        return parse_sampler_spec(spec).build()
    from .registry import get_sampler

    return get_sampler(spec)
