"""The one sampler-spec syntax: ``NAME`` or ``NAME:KEY=VALUE,KEY=VALUE``, parsed and built.

``"kcenter"``, ``"kcenter:transform=whiten,metric=cosine"``, ``"kmeans:n_clusters=5"``: the spelling
``diverseevol compare``, configuration files and samplers that run another sampler
(``length_matched_random:match=...``) share. :func:`build_sampler` turns a spec (or a
:class:`SamplerSpec`, or a sampler instance) into a sampler.

Imports the registry only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError

__all__ = ["SamplerSpec", "build_sampler", "parse_sampler_spec", "parse_sampler_specs"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class SamplerSpec:
    """One sampler spec: a registered name and its constructor parameters.

    Attributes
    ----------
    label : str
        How the sampler is shown in tables (the spec text, e.g. ``"kcenter:transform=whiten"``).
    name : str
        Registered sampler name.
    params : dict
        Constructor parameters.
    """

    label: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        """A new sampler instance (``get_sampler(name, **params)``)."""
        from .registry import get_sampler

        return get_sampler(self.name, **self.params)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside double quotes."""
    parts, buf, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if quoted:
        raise ValidationError(f"Unbalanced double quote in sampler list {text!r}.")
    parts.append("".join(buf))
    return [p.strip() for p in parts]


def _starts_a_sampler(piece: str) -> bool:
    """``name`` or ``name:key=value`` (a ':' before any '='); ``key=value`` continues the previous one."""
    eq, colon = piece.find("="), piece.find(":")
    return eq < 0 or (0 <= colon < eq)


def parse_sampler_spec(text: str) -> SamplerSpec:
    """Parse ``NAME`` or ``NAME:KEY=VALUE,KEY=VALUE`` into a :class:`SamplerSpec`.

    Values are read as JSON when they parse (``k=10`` is an int, ``prune=false`` a bool) and as
    strings otherwise; a value with commas goes in double quotes
    (``kcenter:transform="project:dim=256,kind=rademacher"``).

    Raises
    ------
    ValidationError
        For an empty or malformed spec. Unknown names and parameters are reported when the
        sampler is built.
    """
    text = text.strip()
    name, sep, rest = text.partition(":")
    name = name.strip()
    if not _NAME.match(name):
        raise ValidationError(
            f"Sampler spec {text!r} must start with a sampler name (e.g. 'kcenter' or "
            f"'kcenter:transform=whiten'); got {name!r}."
        )
    params: dict[str, Any] = {}
    if sep:
        for item in _split_top_level(rest):
            key, eq, raw = item.partition("=")
            if not eq or not key.strip():
                raise ValidationError(
                    f"Sampler parameter {item!r} in {text!r} must be written KEY=VALUE "
                    f"(e.g. kcenter:transform=whiten,metric=cosine)."
                )
            raw = raw.strip()
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                raw = raw[1:-1]
                params[key.strip()] = raw
            else:
                params[key.strip()] = _value(raw)
    return SamplerSpec(label=text, name=name, params=params)


def parse_sampler_specs(specs: str | SamplerSpec | Iterable[str | SamplerSpec]) -> list[SamplerSpec]:
    """Parse a comma-separated list of sampler specs (or several lists) into :class:`SamplerSpec` s.

    A comma starts a new sampler unless the piece after it is ``KEY=VALUE``, which continues
    the previous sampler's parameters: ``"kcenter,kcenter:transform=whiten,metric=cosine,kmeans"``
    is three samplers, the second with two parameters.

    Examples
    --------
    >>> from diverseevol.compare import parse_sampler_specs
    >>> [(s.name, s.params) for s in parse_sampler_specs("kcenter:transform=whiten,metric=cosine,random")]
    [('kcenter', {'transform': 'whiten', 'metric': 'cosine'}), ('random', {})]
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
        raise ValidationError("No samplers to compare; give e.g. 'kcenter,random'.")
    labels = [s.label for s in out]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ValidationError(f"Sampler {dup[0]!r} is listed twice; list each setting once.")
    return out


def build_sampler(spec: Any) -> Any:
    """Build a sampler from a spec string, a :class:`SamplerSpec`, or return a sampler instance as is.

    Parameters
    ----------
    spec : str, SamplerSpec or Sampler
        ``"kcenter"``, ``"kcenter:transform=normalize"`` (see :func:`parse_sampler_spec`), a
        :class:`SamplerSpec`, or an object with a ``select`` method (returned unchanged).

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
    if isinstance(spec, SamplerSpec):
        return spec.build()
    if isinstance(spec, str):
        return parse_sampler_spec(spec).build()
    from .registry import get_sampler

    return get_sampler(spec)
