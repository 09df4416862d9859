"""Per-record signals read from the records themselves, not from a model: labels and lengths.

:func:`record_labels` gives ``SelectionContext.labels`` (a field such as Dolly's ``category``);
:func:`record_word_lengths` gives ``SelectionContext.lengths`` in whitespace words of the
Alpaca-rendered record, the unit the loop falls back to when its scorer cannot count tokens.

Index space: item ``i`` of every output is record ``i`` (a row of Z).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ValidationError

__all__ = ["record_labels", "record_word_lengths"]

class _Required:
    """The default of ``default=``: a record without the field raises."""

    def __repr__(self) -> str:
        return "<required>"


_REQUIRED = _Required()


def _describe(rec: Any) -> str:
    """A short description of a record for error messages: its instruction's opening words."""
    text = rec.get("instruction", "") if isinstance(rec, Mapping) else getattr(rec, "instruction", "")
    text = " ".join(str(text).split())
    return f"instruction {text[:40] + '...' if len(text) > 40 else text!r}"


def record_labels(records: Sequence[Any], field_name: str, *, default: Any = _REQUIRED) -> list[Any]:
    """One label per record: the field ``field_name`` of each record's extra fields or source object.

    Parameters
    ----------
    records : sequence of InstructionRecord or mapping
        E.g. from :func:`diverseevol.data.load_instructions` (Dolly's ``category`` is kept in
        ``meta`` / ``original``). An InstructionRecord's ``meta`` is read first, then its
        ``original`` (the source object, when it is a mapping).
    field_name : str
    default : optional
        The label of a record without the field. Without it, such a record raises.

    Returns
    -------
    list, length N
        Item ``i`` is record ``i``'s label (index space: positions in ``records``, i.e. Z).

    Raises
    ------
    ValidationError
        When a record has no such field and no ``default`` is given (names the record and the
        fields it has).
    """
    out = []
    for i, rec in enumerate(records):
        sources = [rec] if isinstance(rec, Mapping) else [getattr(rec, a, None) for a in ("meta", "original")]
        for src in sources:
            if isinstance(src, Mapping) and field_name in src:
                out.append(src[field_name])
                break
        else:
            if default is not _REQUIRED:
                out.append(default)
                continue
            have = sorted({str(k) for src in sources if isinstance(src, Mapping) for k in src})
            raise ValidationError(
                f"Record {i} has no field {field_name!r} for the labels ({_describe(rec)}); its fields are "
                f"{have}. Give every record that field (load_instructions keeps source fields in meta: "
                f"meta_fields=[{field_name!r}]), or pass the name of a field every record has (e.g. Dolly's "
                f"'category')."
            )
    return out


def record_word_lengths(records: Sequence[Any]) -> np.ndarray:
    """Each record's length in whitespace-separated words of its Alpaca-rendered text.

    The text is :func:`diverseevol.render.render_record` with ``template="alpaca"`` (prompt
    template, instruction, input, response; a chat record's turns as Alpaca exchanges), so no
    tokenizer is needed. The template's fixed words (about 25) are counted too: they shift every
    length alike and do not change any order.

    Parameters
    ----------
    records : sequence of InstructionRecord, length N

    Returns
    -------
    ndarray of float64, shape (N,)
        Item ``i`` is the word count of record ``i``.
    """
    from ..render import render_record

    return np.array([len(render_record(r, template="alpaca").text.split()) for r in records], dtype=np.float64)
