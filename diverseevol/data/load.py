"""``load_instructions``: any source, file type and record format -> a list of :class:`InstructionRecord`.

:func:`check_load_options` checks the arguments once (a configuration file's ``data`` section
calls it too, before any data is read); :func:`read_records` reads with checked options.
"""

from __future__ import annotations

import difflib
import logging
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataFormatError, DuplicateRecordsWarning, ValidationError
from .files import check_encoding, check_file_type, file_type_names, iter_path
from .formats import (
    ReadOptions,
    RecordReader,
    get_record_format,
    record_format_names,
    record_formats,
    resolve_record_format,
)
from .formats._values import short
from .formats.base import LF_TAG_KEYS, MEDIA_COLUMNS
from .formats.fields import check_field_mapping
from .jsontext import check_duplicate_keys
from .memory import iter_memory
from .records import InstructionRecord, _content_key

__all__ = ["FILE_FORMATS", "LoadOptions", "check_load_options", "load_instructions", "read_records"]

logger = logging.getLogger("diverseevol.data")

#: The file types ``format=`` named before ``file_type=`` existed (still read, with a DeprecationWarning).
FILE_FORMATS: tuple[str, ...] = ("json", "jsonl", "parquet")


@dataclass(frozen=True)
class LoadOptions:
    """The checked arguments of :func:`load_instructions`.

    Attributes
    ----------
    format : str or None
        A registered record format, or ``None`` (detect it).
    file_type : str or None
        One of :data:`~diverseevol.data.files.FILE_TYPES`, or ``None`` (from the suffix and content).
    read : ReadOptions
        ``fields``, ``columns``, ``tags``, ``meta_fields``.
    on_duplicates : str
    encoding : str
    duplicate_keys : str
    """

    format: str | None
    file_type: str | None
    read: ReadOptions
    on_duplicates: str = "warn"
    encoding: str = "utf-8"
    duplicate_keys: str = "error"


def load_instructions(
    source: Any,
    *,
    format: str | None = None,
    file_type: str | None = None,
    fields: str | Mapping[str, str | None] | None = None,
    columns: Mapping[str, str | None] | None = None,
    tags: Mapping[str, str] | None = None,
    meta_fields: Sequence[str] | None = None,
    on_duplicates: str = "warn",
    encoding: str = "utf-8",
    duplicate_keys: str = "error",
) -> list[InstructionRecord]:
    """Load an instruction dataset into a list of :class:`InstructionRecord`.

    Parameters
    ----------
    source : path, sequence of mappings, sequence of InstructionRecord, datasets.Dataset or pandas.DataFrame
        A file path (``.json``, ``.jsonl``, ``.ndjson``, optionally ``.gz``; ``.parquet``), a
        directory saved with ``datasets.Dataset.save_to_disk``, or in-memory records. A sequence
        whose items are all :class:`InstructionRecord` is returned as a list unchanged.
    format : str, optional
        The record format (shape): ``"alpaca"``, ``"dolly"``, ``"sharegpt"``, ``"openai"`` or
        any registered one (:func:`~diverseevol.data.formats.record_format_names`); detected from
        the first record when omitted. A file type here (``"json"``, ``"jsonl"``,
        ``"parquet"``) still works, with a ``DeprecationWarning``: pass it as ``file_type=``.
    file_type : {"json", "jsonl", "parquet", "dataset"}, optional
        The file type of a path (``"dataset"``: a ``save_to_disk`` directory); from the suffix
        and content when omitted (a ``.json`` file that holds one object per line is read as
        JSON lines).
    fields : str or mapping, optional
        Field names of Alpaca-family records: the name of a format that takes them
        (``"alpaca"``, ``"dolly"``), or a mapping giving the source name of each record
        attribute, e.g. ``{"instruction": "question", "input": None, "output": "answer"}``
        (``input``, ``system`` and ``history`` may be ``None`` or left out).
    columns : mapping, optional
        Column names as LLaMA-Factory's ``dataset_info.json`` spells them: ``prompt``, ``query``,
        ``response``, ``system``, ``history`` (Alpaca family) or ``messages``, ``system``,
        ``tools`` (chat), e.g. ``{"messages": "conversations", "tools": "tools"}``; and the
        media columns ``images``, ``videos``, ``audios`` (kept in the original records, not read).
    tags : mapping, optional
        Chat turn tags as in ``dataset_info.json``: ``role_tag``, ``content_tag``, ``user_tag``,
        ``assistant_tag``, ``observation_tag``, ``function_tag``, ``system_tag``. Defaults: the
        ShareGPT (``from``/``value``) or OpenAI (``role``/``content``) names, with the role
        names ``human``/``user``, ``gpt``/``assistant``, ``system``, ``function_call``,
        ``observation``/``tool`` understood.
    meta_fields : sequence of str, optional
        Source fields kept in :attr:`InstructionRecord.meta`. Default: Dolly's ``category``
        when present, nothing otherwise. Pass ``()`` to keep none. (Every field stays in
        :attr:`InstructionRecord.original` either way.)
    on_duplicates : {"warn", "ignore"}, default "warn"
        Records with identical text are always kept; with ``"warn"`` a
        :class:`~diverseevol.errors.DuplicateRecordsWarning` reports their counts.
    encoding : str, default "utf-8"
        Text encoding of files; ``"utf-8-sig"`` for a file that starts with a byte-order mark.
    duplicate_keys : {"error", "first", "last"}, default "error"
        A JSON object with a key twice (``{"output": "a", "output": "b"}``) is ambiguous: it is
        refused, naming the record and the key, unless this says which occurrence to keep.

    Returns
    -------
    list of InstructionRecord
        Row ``i`` is record ``i`` of the source (Z's index space).

    Raises
    ------
    DataFormatError
        Naming the file, the line (JSON lines, 1-based) or record (0-based index), the turn, and
        the problem: invalid JSON, a record that is not an object, a missing or non-string field,
        an unknown role, an empty dataset, unknown field names.
    ValidationError
        For arguments of a wrong type or value (an unknown format, file type, codec or key).
    FileNotFoundError
        If a path does not exist (:class:`~diverseevol.errors.DataFileNotFoundError`).

    Examples
    --------
    >>> from diverseevol import load_instructions
    >>> recs = load_instructions([{"instruction": "Add 2 and 3.", "input": "", "output": "5"}])
    >>> recs[0].output
    '5'
    >>> load_instructions([{"instruction": "Q?", "context": "c", "response": "A", "category": "open_qa"}])[0].meta
    {'category': 'open_qa'}
    >>> chat = load_instructions([{"conversations": [{"from": "human", "value": "Hi"},
    ...                                              {"from": "gpt", "value": "Hello!"}]}])[0]
    >>> [(t.role, t.content) for t in chat.messages], chat.format
    ([('user', 'Hi'), ('assistant', 'Hello!')], 'sharegpt')
    """
    options = check_load_options(format=format, file_type=file_type, fields=fields, columns=columns, tags=tags,
                                 meta_fields=meta_fields, on_duplicates=on_duplicates, encoding=encoding,
                                 duplicate_keys=duplicate_keys, stacklevel=3)
    return read_records(source, options)


def check_load_options(
    *,
    format: str | None = None,
    file_type: str | None = None,
    fields: str | Mapping[str, str | None] | None = None,
    columns: Mapping[str, str | None] | None = None,
    tags: Mapping[str, str] | None = None,
    meta_fields: Sequence[str] | None = None,
    on_duplicates: str = "warn",
    encoding: str = "utf-8",
    duplicate_keys: str = "error",
    stacklevel: int = 2,
) -> LoadOptions:
    """Check the arguments of :func:`load_instructions` (all but ``source``), without reading data.

    Returns
    -------
    LoadOptions

    Raises
    ------
    ValidationError
        Naming the argument, what it must be and what it got.

    Warns
    -----
    DeprecationWarning
        For a file type given as ``format=`` (the new spelling is ``file_type=``).
    """
    if on_duplicates not in ("warn", "ignore"):
        raise ValidationError(f"on_duplicates must be 'warn' or 'ignore'; got {on_duplicates!r}.")
    if format in FILE_FORMATS:
        if file_type not in (None, format):
            raise ValidationError(f"format={format!r} (a file type) and file_type={file_type!r} disagree; pass "
                                  f"file_type= only.")
        warnings.warn(
            f"format={format!r} names a file type; pass file_type={format!r} instead (format= now names the record "
            f"format: {', '.join(record_format_names())}).",
            DeprecationWarning, stacklevel=stacklevel,
        )
        format, file_type = None, format
    if format is not None:
        if not isinstance(format, str) or format in file_type_names():
            raise ValidationError(
                f"format must be a record format name {list(record_format_names())} or None (detect it); got "
                f"{format!r}. The file type goes in file_type= ({', '.join(file_type_names())})."
            )
        get_record_format(format)
    check_file_type(file_type)
    check_encoding(encoding)
    check_duplicate_keys(duplicate_keys)
    field_sets = [name for name, f in record_formats().items() if f.takes_fields]
    if fields is not None and not isinstance(fields, (str, Mapping)):
        raise ValidationError(
            f"fields must be one of {field_sets}, a mapping of 'instruction'/'input'/'output' to source field "
            f"names, or None (detect); got a {type(fields).__name__} ({fields!r}). Example: "
            f"fields={{'instruction': 'question', 'input': None, 'output': 'answer'}}."
        )
    if isinstance(fields, str) and fields not in field_sets:
        close = difflib.get_close_matches(fields, field_sets, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else " For chat records pass format='sharegpt' or 'openai'."
        raise ValidationError(f"fields must be one of {field_sets} or a mapping; got {fields!r}.{hint}")
    if isinstance(fields, str) and format is not None and format != fields:
        raise ValidationError(f"format={format!r} and fields={fields!r} name different record shapes; pass one.")
    if isinstance(fields, Mapping):
        check_field_mapping(fields)
    column_keys = [k for f in record_formats().values() for k in f.column_keys]
    _check_names(columns, (*column_keys, *MEDIA_COLUMNS), "columns", null_ok=True)
    _check_names(tags, LF_TAG_KEYS, "tags", null_ok=False)
    if columns is not None and fields is not None:
        raise ValidationError("pass either fields= or columns= (LLaMA-Factory's names), not both.")
    if meta_fields is not None and (isinstance(meta_fields, (str, bytes)) or not isinstance(meta_fields, Iterable)
                                    or not all(isinstance(m, str) for m in meta_fields)):
        raise ValidationError(f"meta_fields must be a list of field names (strings); got {meta_fields!r}.")
    read = ReadOptions(fields=fields, columns=columns, tags=tags,
                       meta_fields=tuple(meta_fields) if meta_fields is not None else None)
    named = format if format is not None else fields if isinstance(fields, str) else None
    reason = get_record_format(named).refusal(read) if named is not None else None
    if reason:
        raise ValidationError(f"{reason}.")
    return LoadOptions(format, file_type, read, on_duplicates, encoding, duplicate_keys)


def read_records(source: Any, options: LoadOptions, *, family: str | None = None) -> list[InstructionRecord]:
    """:func:`load_instructions` with checked options; ``family``: only formats of that
    LLaMA-Factory ``formatting`` are considered (a ``dataset_info.json`` entry's)."""
    label: str
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = str(path)
        rows: Iterable[tuple[str, Any, str | None]] = iter_path(path, options.file_type, options.encoding,
                                                                options.duplicate_keys)
    else:
        if options.file_type is not None:
            raise ValidationError(
                f"file_type={options.file_type!r} applies to files only; got an in-memory {type(source).__name__}."
            )
        label, memory_rows = iter_memory(source)
        if memory_rows is None:  # already InstructionRecord objects
            records = list(source)
            if not records:
                raise DataFormatError(f"{label}: the dataset is empty; at least one record is needed.")
            _report_duplicates(records, label, options.on_duplicates)
            return records
        rows = memory_rows
    records = _build_records(rows, label, options, family)
    _report_duplicates(records, label, options.on_duplicates)
    logger.info("loaded %d instruction records (%s) from %s", len(records), records[0].format, label)
    return records


def _check_names(mapping: Any, allowed: Sequence[str], name: str, *, null_ok: bool) -> None:
    if mapping is None:
        return
    if not isinstance(mapping, Mapping):
        raise ValidationError(f"{name} must be a mapping; got {type(mapping).__name__} ({mapping!r}).")
    unknown = sorted(map(str, set(mapping) - set(allowed)))
    if unknown:
        raise ValidationError(
            f"{name} has unknown keys {unknown}; the known keys are {list(dict.fromkeys(allowed))} "
            f"(as in LLaMA-Factory's dataset_info.json)."
        )
    bad = {k: v for k, v in mapping.items() if not (isinstance(v, str) or (null_ok and v is None))}
    if bad:
        what = "a column name or null" if null_ok else "a string"
        raise ValidationError(f"{name}: each value must be {what}; got {bad!r}.")


def _build_records(rows: Iterable[tuple[str, Any, str | None]], label: str, options: LoadOptions,
                   family: str | None) -> list[InstructionRecord]:
    records: list[InstructionRecord] = []
    read: RecordReader | None = None
    for where, rec, source_text in rows:
        if not isinstance(rec, Mapping):
            raise DataFormatError(
                f"{where}: expected a JSON object (mapping) with instruction fields; got {type(rec).__name__} "
                f"({short(rec)})."
            )
        if read is None:
            fmt = resolve_record_format(rec, options.read, where, name=options.format, family=family)
            read = fmt.reader(rec, options.read, where)
        record = read(rec, where)
        if source_text is not None:  # the file's text of this record, for byte-exact export; set before the
            object.__setattr__(record, "source_text", source_text)  # frozen record leaves this function
        records.append(record)
    if not records:
        raise DataFormatError(f"{label}: the dataset is empty; at least one record is needed.")
    return records


def _report_duplicates(records: Sequence[InstructionRecord], label: str, on_duplicates: str) -> None:
    if on_duplicates == "ignore":
        return
    counts = Counter(_content_key(r) for r in records)
    n_distinct = len(counts)
    extra = len(records) - n_distinct
    if extra:
        repeated = sum(1 for c in counts.values() if c > 1)
        warnings.warn(
            f"{label}: {extra} of {len(records)} records are exact duplicates of earlier ones "
            f"({repeated} distinct records occur more than once; {n_distinct} distinct in all). They are kept, "
            f"so each copy can be selected; deduplicate the source first if that is not wanted.",
            DuplicateRecordsWarning,
            stacklevel=4,
        )
