"""``load_instructions``: any source and record shape -> a list of :class:`InstructionRecord`."""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import DataFormatError, DuplicateRecordsWarning, ValidationError
from .files import _check_encoding, _iter_path
from .memory import _iter_memory
from .records import InstructionRecord, _content_key
from .shapes import _LF_ALPACA_COLUMNS, _LF_CHAT_COLUMNS, _LF_TAGS, FIELD_SETS, FILE_FORMATS, RECORD_FORMATS, _build_records, _SpecArgs

logger = logging.getLogger("diverseevol.data")

def load_instructions(
    source: Any,
    *,
    format: str | None = None,
    fields: str | Mapping[str, str | None] | None = None,
    columns: Mapping[str, str | None] | None = None,
    tags: Mapping[str, str] | None = None,
    meta_fields: Sequence[str] | None = None,
    on_duplicates: str = "warn",
    encoding: str = "utf-8",
) -> list[InstructionRecord]:
    """Load an instruction dataset into a list of :class:`InstructionRecord`.

    Parameters
    ----------
    source : path, sequence of mappings, sequence of InstructionRecord, datasets.Dataset or pandas.DataFrame
        A file path (``.json``, ``.jsonl``, ``.ndjson``, optionally ``.gz``; ``.parquet``), a
        directory saved with ``datasets.Dataset.save_to_disk``, or in-memory records. A sequence
        whose items are all :class:`InstructionRecord` is returned as a list unchanged.
    format : str, optional
        A file format (``"json"``, ``"jsonl"``, ``"parquet"``; inferred from the suffix when
        omitted; a ``.json`` file that holds one object per line is read as JSON lines) or a
        record shape (``"alpaca"``, ``"dolly"``, ``"sharegpt"``, ``"openai"``; detected from
        the first record when omitted).
    fields : {"alpaca", "dolly"} or mapping, optional
        Field names of Alpaca-family records. A mapping gives the source name of each record
        attribute, e.g. ``{"instruction": "question", "input": None, "output": "answer"}``
        (``input``, ``system`` and ``history`` may be ``None`` or left out).
    columns : mapping, optional
        Column names as LLaMA-Factory's ``dataset_info.json`` spells them: ``prompt``, ``query``,
        ``response``, ``system``, ``history`` (Alpaca family) or ``messages``, ``system``,
        ``tools`` (chat), e.g. ``{"messages": "conversations", "tools": "tools"}``.
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
        Text encoding of files.

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
    >>> chat = load_instructions([{"conversations": [{"from": "human", "value": "Hi"},
    ...                                              {"from": "gpt", "value": "Hello!"}]}])[0]
    >>> [(t.role, t.content) for t in chat.messages], chat.format
    ([('user', 'Hi'), ('assistant', 'Hello!')], 'sharegpt')
    """
    if on_duplicates not in ("warn", "ignore"):
        raise ValidationError(f"on_duplicates must be 'warn' or 'ignore'; got {on_duplicates!r}.")
    if format is not None and format not in FILE_FORMATS + RECORD_FORMATS:
        raise ValidationError(
            f"format must be a file format {list(FILE_FORMATS)}, a record format {list(RECORD_FORMATS)} or None "
            f"(infer both); got {format!r}."
        )
    _check_encoding(encoding)
    if fields is not None and not isinstance(fields, (str, Mapping)):
        raise ValidationError(
            f"fields must be one of {sorted(FIELD_SETS)}, a mapping of 'instruction'/'input'/'output' to source field "
            f"names, or None (detect); got a {type(fields).__name__} ({fields!r}). Example: "
            f"fields={{'instruction': 'question', 'input': None, 'output': 'answer'}}."
        )
    file_format = format if format in FILE_FORMATS else None
    record_format = format if format in RECORD_FORMATS else None
    _check_mapping_keys(columns, (*_LF_ALPACA_COLUMNS, *_LF_CHAT_COLUMNS), "columns")
    _check_mapping_keys(tags, _LF_TAGS, "tags")
    if columns is not None and fields is not None:
        raise ValidationError("pass either fields= or columns= (LLaMA-Factory's names), not both.")

    label: str
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = str(path)
        rows: Iterable[tuple[str, Any]] = _iter_path(path, file_format, encoding)
    else:
        if file_format is not None:
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

    spec_args = _SpecArgs(record_format, fields, columns, tags, meta_fields)
    records = _build_records(rows, label, spec_args)
    _report_duplicates(records, label, on_duplicates)
    logger.info("loaded %d instruction records (%s) from %s", len(records), records[0].format, label)
    return records


def _check_mapping_keys(mapping: Mapping[str, Any] | None, allowed: Sequence[str], name: str) -> None:
    if mapping is None:
        return
    if not isinstance(mapping, Mapping):
        raise ValidationError(f"{name} must be a mapping; got {type(mapping).__name__}.")
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise ValidationError(
            f"{name} has unknown keys {unknown}; the known keys are {list(dict.fromkeys(allowed))} "
            f"(as in LLaMA-Factory's dataset_info.json)."
        )


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
            stacklevel=3,
        )
