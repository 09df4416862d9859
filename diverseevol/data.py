"""Instruction records, the Alpaca prompt template, and loaders for instruction datasets.

Every dataset, whatever its file format or field names, becomes a list of
:class:`InstructionRecord` whose list position is the record's row index in Z.

Supported sources (:func:`load_instructions`):

* a path to ``.json`` (a JSON array of objects), ``.jsonl`` / ``.ndjson`` (one object per
  line), each optionally gzip-compressed (``.json.gz``, ``.jsonl.gz``);
* a Python sequence of mappings, or of :class:`InstructionRecord` (returned as is);
* a Hugging Face ``datasets.Dataset`` and a pandas ``DataFrame`` (both optional imports: the
  library never imports them, it only recognises objects of those types).

Field sets are detected from the first record: Alpaca (``instruction``, ``input``,
``output``) and Dolly (``instruction``, ``context``, ``response``; its ``category`` is kept in
:attr:`InstructionRecord.meta`). Other names are mapped with ``fields=``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import math
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from .errors import DataFormatError, DuplicateRecordsWarning, ValidationError

__all__ = [
    "ALPACA_PROMPT_INPUT",
    "ALPACA_PROMPT_NO_INPUT",
    "FIELD_SETS",
    "InstructionRecord",
    "data_fingerprint",
    "format_prompt",
    "format_record",
    "load_instructions",
]

logger = logging.getLogger(__name__)

ALPACA_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)

#: Known field sets: record attribute -> source field name (``None``: the source has no such
#: field), plus the source fields kept as metadata by default.
FIELD_SETS: dict[str, dict[str, Any]] = {
    "alpaca": {"instruction": "instruction", "input": "input", "output": "output", "meta": ()},
    "dolly": {"instruction": "instruction", "input": "context", "output": "response", "meta": ("category",)},
}

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class InstructionRecord:
    """One instruction-tuning example.

    Attributes
    ----------
    instruction : str
        The task (Alpaca ``instruction``, Dolly ``instruction``).
    input : str
        Optional context (Alpaca ``input``, Dolly ``context``); ``""`` when absent.
    output : str
        The reference response (Alpaca ``output``, Dolly ``response``).
    meta : Mapping[str, Any] or None
        Extra source fields kept alongside (e.g. Dolly's ``category``). Not part of equality,
        hashing, prompts or the data fingerprint.
    """

    instruction: str
    input: str = ""
    output: str = ""
    meta: Mapping[str, Any] | None = field(default=None, compare=False, hash=False, repr=False)


def format_prompt(instruction: str | InstructionRecord, input: str = "") -> str:
    """Return the Alpaca prompt (with or without the input block), ending at ``### Response:``.

    The response text follows the marker directly, as in the Stanford Alpaca training code.
    """
    if isinstance(instruction, InstructionRecord):
        instruction, input = instruction.instruction, instruction.input
    if input:
        return ALPACA_PROMPT_INPUT.format(instruction=instruction, input=input)
    return ALPACA_PROMPT_NO_INPUT.format(instruction=instruction)


def format_record(record: InstructionRecord) -> tuple[str, str]:
    """Return ``(prompt, response)`` for training: the loss covers the response part only."""
    return format_prompt(record), record.output


# --------------------------------------------------------------------------------------------
# fingerprint
# --------------------------------------------------------------------------------------------
def data_fingerprint(records: Sequence[InstructionRecord]) -> dict[str, Any]:
    """Return ``{"n_records": N, "sha256": hex}``: a content hash of the records in order.

    The hash covers ``instruction``, ``input`` and ``output`` of every record, in row order
    (so reordering Z changes it); ``meta`` is not covered. Used by the run directory to refuse
    resuming with other data.
    """
    h = hashlib.sha256()
    for rec in records:
        h.update(json.dumps([rec.instruction, rec.input, rec.output], ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return {"n_records": len(records), "sha256": h.hexdigest()}


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
def load_instructions(
    source: Any,
    *,
    format: str | None = None,
    fields: str | Mapping[str, str | None] | None = None,
    meta_fields: Sequence[str] | None = None,
    on_duplicates: str = "warn",
    encoding: str = "utf-8",
) -> list[InstructionRecord]:
    """Load an instruction dataset into a list of :class:`InstructionRecord`.

    Parameters
    ----------
    source : path, sequence of mappings, sequence of InstructionRecord, datasets.Dataset or pandas.DataFrame
        A file path (``.json``, ``.jsonl``, ``.ndjson``, optionally ``.gz``), or in-memory records.
        A sequence whose items are all :class:`InstructionRecord` is returned as a list unchanged.
    format : {"json", "jsonl"}, optional
        File format; inferred from the suffix when omitted. A ``.json`` file that holds one
        object per line is read as JSON lines.
    fields : {"alpaca", "dolly"} or mapping, optional
        Field names. Omitted: detected from the first record (Alpaca: ``instruction``/``output``,
        optional ``input``; Dolly: ``instruction``/``response``, optional ``context``). A mapping
        gives the source name of each record attribute, e.g.
        ``{"instruction": "question", "input": None, "output": "answer"}`` (``input`` may be
        ``None`` or left out: no input field).
    meta_fields : sequence of str, optional
        Source fields kept in :attr:`InstructionRecord.meta`. Default: Dolly's ``category``
        when present, nothing otherwise. Pass ``()`` to keep none.
    on_duplicates : {"warn", "ignore"}, default "warn"
        Records identical in (instruction, input, output) are always kept; with ``"warn"`` a
        :class:`~diverseevol.errors.DuplicateRecordsWarning` reports their counts.
    encoding : str, default "utf-8"
        Text encoding of files.

    Returns
    -------
    list of InstructionRecord
        Row ``i`` is record ``i`` of the source (Z's index space).

    Raises
    ------
    DataFormatError
        Naming the file, the line (JSON lines, 1-based) or record (0-based index) and the
        problem: invalid JSON, a record that is not an object, a missing or non-string field,
        an empty dataset, unknown field names.
    FileNotFoundError
        If a path does not exist.

    Examples
    --------
    >>> from diverseevol import load_instructions
    >>> recs = load_instructions([{"instruction": "Add 2 and 3.", "input": "", "output": "5"}])
    >>> recs[0].output
    '5'
    >>> load_instructions([{"instruction": "Q?", "context": "c", "response": "A", "category": "open_qa"}])[0].meta
    {'category': 'open_qa'}
    """
    if on_duplicates not in ("warn", "ignore"):
        raise ValidationError(f"on_duplicates must be 'warn' or 'ignore'; got {on_duplicates!r}.")
    if format is not None and format not in ("json", "jsonl"):
        raise ValidationError(
            f"format must be 'json', 'jsonl' or None (infer from the suffix); got {format!r}."
        )

    label: str
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = str(path)
        rows: Iterable[tuple[str, Any]] = _iter_file(path, format, encoding)
    else:
        if format is not None:
            raise ValidationError(
                f"format={format!r} applies to files only; got an in-memory {type(source).__name__}."
            )
        label, rows = _iter_memory(source)
        if rows is None:  # already InstructionRecord objects
            records = list(source)
            if not records:
                raise DataFormatError(f"{label}: the dataset is empty; at least one record is needed.")
            _report_duplicates(records, label, on_duplicates)
            return records

    records = _build_records(rows, label, fields, meta_fields)
    _report_duplicates(records, label, on_duplicates)
    logger.info("loaded %d instruction records from %s", len(records), label)
    return records


# ---- sources -> (location, raw record) pairs -------------------------------------------------
def _open_text(path: Path, encoding: str) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding)
    return open(path, encoding=encoding)


def _infer_format(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".gzip"):
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in (".jsonl", ".ndjson"):
        return "jsonl"
    if last == ".json":
        return "json"
    return None


def _iter_file(path: Path, format: str | None, encoding: str) -> Iterator[tuple[str, Any]]:
    if not path.exists():
        raise FileNotFoundError(f"No such data file: {path}")
    if path.is_dir():
        raise DataFormatError(f"{path}: is a directory; pass a .json or .jsonl file.")
    fmt = format or _infer_format(path)
    try:
        with _open_text(path, encoding) as fh:
            text = fh.read()
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise DataFormatError(f"{path}: cannot be read as {encoding} text ({exc}).") from exc
    head = text.lstrip()[:1]
    if fmt is None:
        if head == "[":
            fmt = "json"
        elif head == "{":
            fmt = "jsonl"
        else:
            raise DataFormatError(
                f"{path}: cannot tell the format from the suffix or the content (starts with {head!r}); "
                f"pass format='json' (an array of objects) or format='jsonl' (one object per line)."
            )
    if fmt == "json" and head == "{":
        # A .json file holding JSON lines is common (e.g. Dolly copies); a single object is not a dataset.
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            fmt = "jsonl"
        else:
            keys = list(obj)[:8] if isinstance(obj, dict) else []
            raise DataFormatError(
                f"{path}: expected a JSON array of records (or one record per line); got a single JSON "
                f"object with keys {keys}. If the records are under one key, load them with json and pass "
                f"the list, e.g. load_instructions(json.load(f)['data'])."
            )
    if fmt == "json":
        return _iter_json_array(text, path)
    return _iter_json_lines(text, path)


def _iter_json_array(text: str, path: Path) -> Iterator[tuple[str, Any]]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from exc
    if not isinstance(obj, list):
        raise DataFormatError(f"{path}: expected a JSON array of records; got a JSON {type(obj).__name__}.")
    return ((f"{path}: record {i}", rec) for i, rec in enumerate(obj))


def _iter_json_lines(text: str, path: Path) -> Iterator[tuple[str, Any]]:
    # Split on "\n" only: str.splitlines() would also cut at U+2028, U+2029 and U+0085, which JSON
    # allows raw inside strings. Reading in text mode has already turned "\r\n" and "\r" into "\n".
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(
                f"{path}: line {lineno}: invalid JSON at column {exc.colno}: {exc.msg}. Each line must hold "
                f"one JSON object (JSON lines); for a JSON array use a .json file or format='json'."
            ) from exc
        yield f"{path}: line {lineno}", rec


def _iter_memory(source: Any) -> tuple[str, Iterable[tuple[str, Any]] | None]:
    cls = type(source)
    module = cls.__module__ or ""
    if module.startswith("pandas") and cls.__name__ == "DataFrame":
        columns = [str(c) for c in source.columns]
        label = "DataFrame"
        return label, (
            (f"{label}: row {i}", dict(zip(columns, values)))
            for i, values in enumerate(source.itertuples(index=False, name=None))
        )
    if module.startswith("datasets") and cls.__name__ in ("Dataset", "IterableDataset"):
        label = "datasets.Dataset"
        return label, ((f"{label}: record {i}", rec) for i, rec in enumerate(source))
    if isinstance(source, Mapping):
        raise DataFormatError(
            f"load_instructions expects a file path or a sequence of records; got a single mapping with "
            f"keys {list(source)[:8]}. Wrap one record in a list, or pass the list of records."
        )
    if isinstance(source, (bytes, bytearray)) or not isinstance(source, Iterable):
        raise ValidationError(
            f"load_instructions expects a path, a list of dicts, a datasets.Dataset or a pandas.DataFrame; "
            f"got {cls.__name__}."
        )
    items = source if isinstance(source, Sequence) else list(source)
    if len(items) and all(isinstance(r, InstructionRecord) for r in items):
        return "records", None
    return "records", ((f"record {i}", rec) for i, rec in enumerate(items))


# ---- raw records -> InstructionRecord --------------------------------------------------------
def _resolve_fields(
    first: Mapping[str, Any], where: str, fields: str | Mapping[str, str | None] | None
) -> tuple[str, str | None, str, tuple[str, ...]]:
    if isinstance(fields, str):
        if fields not in FIELD_SETS:
            raise ValidationError(f"fields must be one of {sorted(FIELD_SETS)} or a mapping; got {fields!r}.")
        spec = FIELD_SETS[fields]
        return spec["instruction"], spec["input"], spec["output"], tuple(spec["meta"])
    if fields is not None:
        unknown = set(fields) - {"instruction", "input", "output"}
        if unknown or "instruction" not in fields or "output" not in fields:
            raise ValidationError(
                f"fields must map 'instruction', 'output' and optionally 'input' to source field names; got "
                f"{dict(fields)!r}. Example: fields={{'instruction': 'question', 'input': None, 'output': 'answer'}}."
            )
        return str(fields["instruction"]), fields.get("input"), str(fields["output"]), ()
    keys = set(first)
    if {"instruction", "output"} <= keys:
        return "instruction", "input", "output", ()
    if {"instruction", "response"} <= keys:
        return "instruction", "context", "response", ("category",)
    raise DataFormatError(
        f"{where}: cannot detect the field names from the keys {sorted(keys)}. Known field sets: Alpaca "
        f"(instruction, input, output) and Dolly (instruction, context, response). Map yours with e.g. "
        f"fields={{'instruction': 'prompt', 'input': None, 'output': 'completion'}}."
    )


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(rec: Mapping[str, Any], key: str, where: str, *, required: bool) -> str:
    if key not in rec or _is_missing(rec[key]):
        if not required:
            return ""
        state = "is null" if key in rec else "is missing"
        raise DataFormatError(
            f"{where}: the field {key!r} {state} (record keys: {sorted(map(str, rec))}). Every record needs a "
            f"string {key!r}; map other field names with fields=."
        )
    value = rec[key]
    if not isinstance(value, str):
        raise DataFormatError(
            f"{where}: the field {key!r} must be a string; got {type(value).__name__} ({_short(value)})."
        )
    return value


def _short(value: Any, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def _build_records(
    rows: Iterable[tuple[str, Any]],
    label: str,
    fields: str | Mapping[str, str | None] | None,
    meta_fields: Sequence[str] | None,
) -> list[InstructionRecord]:
    records: list[InstructionRecord] = []
    spec: tuple[str, str | None, str, tuple[str, ...]] | None = None
    meta_keys: tuple[str, ...] = ()
    for where, rec in rows:
        if not isinstance(rec, Mapping):
            raise DataFormatError(
                f"{where}: expected a JSON object (mapping) with instruction fields; got {type(rec).__name__} "
                f"({_short(rec)})."
            )
        if spec is None:
            spec = _resolve_fields(rec, where, fields)
            meta_keys = tuple(spec[3] if meta_fields is None else meta_fields)
        ins_key, inp_key, out_key, _ = spec
        instruction = _text(rec, ins_key, where, required=True)
        inp = _text(rec, inp_key, where, required=False) if inp_key else ""
        output = _text(rec, out_key, where, required=True)
        meta = {m: rec[m] for m in meta_keys if m in rec and not _is_missing(rec[m])} or None
        records.append(InstructionRecord(instruction, inp, output, meta))
    if not records:
        raise DataFormatError(f"{label}: the dataset is empty; at least one record is needed.")
    return records


def _report_duplicates(records: Sequence[InstructionRecord], label: str, on_duplicates: str) -> None:
    if on_duplicates == "ignore":
        return
    counts = Counter((r.instruction, r.input, r.output) for r in records)
    n_distinct = len(counts)
    extra = len(records) - n_distinct
    if extra:
        repeated = sum(1 for c in counts.values() if c > 1)
        warnings.warn(
            f"{label}: {extra} of {len(records)} records are exact duplicates of earlier ones "
            f"({repeated} distinct records occur more than once; {n_distinct} distinct in all). They are kept, "
            f"so each copy can be selected; deduplicate the source first if that is not wanted.",
            DuplicateRecordsWarning,
            stacklevel=3,
        )
