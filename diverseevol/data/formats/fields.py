"""Single-turn records with named fields (the Alpaca family): one base, a shape is its field names.

A :class:`FieldFormat` subclass names the source field of each record attribute
(``instruction``, ``input``, ``output``) and the fields kept as metadata; it reads the optional
``system`` (a string) and ``history`` (a list of ``[instruction, response]`` pairs) columns
when present. ``fields=`` and LLaMA-Factory's ``columns=`` (``prompt``, ``query``,
``response``, ``system``, ``history``) rename them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ...errors import DataFormatError, ValidationError
from ..records import InstructionRecord
from ._values import as_list, is_missing, meta_of, short, text_field
from .base import LF_DEFAULT_COLUMNS, ReadOptions, RecordFormat, RecordReader, media_columns, present_keys

__all__ = ["FIELD_ATTRIBUTES", "FieldFormat"]

#: The record attributes ``fields=`` may map.
FIELD_ATTRIBUTES: tuple[str, ...] = ("instruction", "input", "output", "system", "history")
#: ``dataset_info.json`` column key -> record attribute.
_LF_TO_ATTRIBUTE = {"prompt": "instruction", "query": "input", "response": "output", "system": "system",
                    "history": "history"}


class FieldFormat(RecordFormat):
    """Records whose text sits in named fields: an instruction, an optional input, an output.

    Attributes
    ----------
    fields : mapping
        Record attribute -> source field: ``instruction``, ``input`` (``None``: the shape has
        none), ``output``.
    meta : tuple of str
        Source fields kept in :attr:`InstructionRecord.meta` by default.
    """

    fields: ClassVar[Mapping[str, str | None]] = {}
    meta: ClassVar[tuple[str, ...]] = ()
    column_keys = tuple(_LF_TO_ATTRIBUTE)
    takes_fields = True

    @property
    def default_columns(self) -> Mapping[str, str]:  # type: ignore[override]
        names = {**self.fields, "system": "system", "history": "history"}
        return {key: names[attr] for key, attr in _LF_TO_ATTRIBUTE.items() if names.get(attr)}

    @property
    def field_set(self) -> dict[str, Any]:
        """``{"instruction", "input", "output", "meta"}``: the shape's names (``FIELD_SETS`` entry)."""
        return {**{a: self.fields.get(a) for a in ("instruction", "input", "output")}, "meta": tuple(self.meta)}

    def detect(self, first: Mapping[str, Any]) -> bool:
        return {self.fields["instruction"], self.fields["output"]} <= set(first)

    def view(self, first: Mapping[str, Any], options: ReadOptions) -> Mapping[str, Any]:
        if isinstance(options.fields, Mapping):
            options = ReadOptions(columns={key: options.fields.get(attr) for key, attr in _LF_TO_ATTRIBUTE.items()})
        return super().view(first, options)

    def names(self, options: ReadOptions) -> dict[str, str | None]:
        """Record attribute -> source field, after ``fields=`` / ``columns=``."""
        if isinstance(options.fields, Mapping):
            check_field_mapping(options.fields)
            return {attr: options.fields.get(attr) for attr in FIELD_ATTRIBUTES}
        names = {**self.fields, "system": "system", "history": "history"}
        for key, col in (options.columns or {}).items():
            if key in _LF_TO_ATTRIBUTE:
                names[_LF_TO_ATTRIBUTE[key]] = col
        return names

    def reader(self, first: Mapping[str, Any], options: ReadOptions, where: str) -> RecordReader:
        names = self.names(options)
        ins, out = names["instruction"], names["output"]
        if not ins or not out:
            raise ValidationError(f"{self.name!r} records need an instruction and an output field; got {names}.")
        inp, system, history = names.get("input"), names.get("system"), names.get("history")
        if options.meta_fields is not None:
            meta: tuple[str, ...] = options.meta_fields
        else:
            meta = () if isinstance(options.fields, Mapping) else tuple(self.meta)
        fmt = self.name

        def read(rec: Mapping[str, Any], where: str) -> InstructionRecord:
            hist: tuple[tuple[str, str], ...] = ()
            if history and not is_missing(rec.get(history)):
                hist = read_history(rec[history], where, history)
            return InstructionRecord(
                text_field(rec, ins, where, required=True),
                text_field(rec, inp, where, required=False) if inp else "",
                text_field(rec, out, where, required=True),
                meta_of(rec, meta),
                system=text_field(rec, system, where, required=False) if system else "",
                history=hist, format=fmt, original=rec,
            )

        return read

    def export_row(self, record: InstructionRecord) -> dict[str, Any]:
        row = {self.fields["instruction"]: record.instruction}
        if self.fields.get("input"):
            row[str(self.fields["input"])] = record.input
        row[self.fields["output"]] = record.output
        if record.system:
            row["system"] = record.system
        if record.history:
            row["history"] = [list(pair) for pair in record.history]
        return row

    def dataset_info_entry(self, records: Sequence[InstructionRecord]) -> dict[str, Any]:
        """No ``columns`` when the records use LLaMA-Factory's default names and no optional
        column; else the text columns, the ``system`` / ``history`` columns present, and media."""
        present = present_keys(records)
        columns = {key: col for key, col in self.default_columns.items() if key in ("prompt", "query", "response")}
        extra = {key: col for key, col in self.default_columns.items()
                 if key in ("system", "history") and col in present}
        extra.update(media_columns(present))
        if not extra and all(LF_DEFAULT_COLUMNS.get(k) == v for k, v in columns.items()):
            return {}
        return {"columns": {**columns, **extra}}


def check_field_mapping(fields: Mapping[str, Any]) -> None:
    """A ``fields=`` mapping names ``instruction`` and ``output`` (strings) and only known attributes."""
    unknown = set(fields) - set(FIELD_ATTRIBUTES)
    if unknown or not isinstance(fields.get("instruction"), str) or not isinstance(fields.get("output"), str):
        raise ValidationError(
            f"fields must map 'instruction', 'output' and optionally 'input', 'system', 'history' to source "
            f"field names; got {dict(fields)!r}. Example: "
            f"fields={{'instruction': 'question', 'input': None, 'output': 'answer'}}."
        )


def read_history(value: Any, where: str, key: str) -> tuple[tuple[str, str], ...]:
    """A ``history`` column: a list of ``[instruction, response]`` string pairs."""
    pairs = as_list(value)
    if not isinstance(pairs, list):
        raise DataFormatError(f"{where}: {key!r} must be a list of [instruction, response] pairs; "
                              f"got {type(value).__name__}.")
    out = []
    for j, pair in enumerate(pairs):
        pair = as_list(pair)
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise DataFormatError(
                f"{where}: {key}[{j}] must be a pair of strings [instruction, response]; got {short(pair)}."
            )
        out.append((pair[0], pair[1]))
    return tuple(out)
