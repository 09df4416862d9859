"""Lossless export: write selected records back in the user's own shape.

Every :class:`~diverseevol.data.InstructionRecord` read by
:func:`~diverseevol.data.load_instructions` keeps its source object unchanged
(:attr:`~diverseevol.data.InstructionRecord.original`); the writers here put those objects, in
pick order, into the container the output's suffix names:

* ``.json``: a JSON array (as LLaMA-Factory's and Alpaca's files are);
* ``.jsonl`` / ``.ndjson``: one object per line;
* either with ``.gz`` appended: gzip-compressed;
* ``.parquet``: a table (needs pyarrow). When the input was itself a Parquet file, the selected
  rows are taken from it with its schema.

A record read from a JSON or JSON-lines file is written as its source text
(:attr:`~diverseevol.data.InstructionRecord.source_text`): its line, or its array element, byte
for byte, so number spellings (``1e400``, ``1E5``, 20-digit decimals), escapes, key order and
duplicate keys survive. (A multi-line element written to a JSON-lines file loses the line
breaks between its tokens, and the indentation after them.) Other records are written with
``json.dumps``; a NaN or infinity there is refused (JSON cannot hold it). ``docs/data.md``
("What an export keeps") lists what each input/output pair keeps.

So a subset goes straight back to the tool the data came from (TRL, LLaMA-Factory, axolotl)
without a conversion script. :func:`dataset_info_entry` writes the entry LLaMA-Factory's
``dataset_info.json`` needs for the exported file. Writes are atomic
(:func:`diverseevol._files.atomic_write`). Imports numpy only (pyarrow for Parquet, lazily).
"""

from __future__ import annotations

import datetime
import decimal
import gzip
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_write
from ._optional import require
from .data.formats import format_of
from .data.jsontext import compact_json
from .errors import DataFormatError, ValidationError

__all__ = [
    "EXPORT_FORMATS",
    "dataset_info_entry",
    "export_format",
    "original_rows",
    "write_records",
    "write_subset",
]

#: Output containers, chosen by the output's suffix.
EXPORT_FORMATS: tuple[str, ...] = ("json", "jsonl", "parquet")


def export_format(path: str | Path) -> tuple[str, bool]:
    """``(container, gzip)`` of an output path from its suffix.

    Raises
    ------
    ValidationError
        For a suffix that names no container (the message lists them).
    """
    suffixes = [s.lower() for s in Path(path).suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    last = suffixes[-2 if compressed else -1] if len(suffixes) > int(compressed) else ""
    fmt = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}.get(last)
    if fmt is None or (compressed and fmt == "parquet"):
        raise ValidationError(
            f"cannot tell the output format of {str(path)!r} from its suffix; use .json (a JSON array), .jsonl "
            f"(one record per line), either with .gz, or .parquet."
        )
    return fmt, compressed


def original_rows(records: Sequence[Any], indices: Any) -> list[Any]:
    """The source objects of ``records[indices]``, in the order of ``indices``.

    Parameters
    ----------
    records : sequence of InstructionRecord
        The dataset Z.
    indices : array-like of int, shape (k,)
        Absolute row indices into ``records`` (e.g. a selection in pick order).

    Returns
    -------
    list, length k
        Each record's :meth:`~diverseevol.data.InstructionRecord.as_original` (the very
        object it was loaded from).
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    n = len(records)
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise ValidationError(f"indices must lie in [0, {n}); got {bad[:5].tolist()}.")
    return [records[int(i)].as_original() for i in idx]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(
        f"a record holds a {type(obj).__name__} value, which JSON cannot hold; write the subset as .parquet instead."
    )


def _dumps(row: Any, i: int, indent: int | None) -> str:
    try:
        return json.dumps(row, ensure_ascii=False, indent=indent, default=_json_default, allow_nan=False)
    except TypeError as exc:
        raise DataFormatError(f"record {i} of the output: {exc}") from exc
    except ValueError as exc:  # NaN / infinity: JSON has no spelling for them
        found = _find(row, lambda v: isinstance(v, float) and not math.isfinite(v))
        where = f" (key {found[0]})" if found and found[0] else ""
        raise DataFormatError(
            f"record {i} of the output{where} holds {found[1] if found else 'a non-finite float'}, which JSON cannot "
            f"hold (Python would write the invalid token NaN / Infinity); write the subset as .parquet, or replace "
            f"the value (e.g. with None) in the source."
        ) from exc


def _array_item(text: str) -> str:
    """A record's source text as an element of the output array: a multi-line span keeps its own
    layout (indented like its closing line); a one-line text is indented by two spaces."""
    last = text.rsplit("\n", 1)
    if len(last) == 1:
        return "  " + text
    return last[1][: len(last[1]) - len(last[1].lstrip(" \t"))] + text


def _json_bytes(rows: Sequence[Any], fmt: str, texts: Sequence[str | None] | None = None) -> bytes:
    items = []
    for i, row in enumerate(rows):
        text = texts[i] if texts is not None else None
        if fmt == "jsonl":
            items.append(compact_json(text) if text is not None else _dumps(row, i, None))
        elif text is not None:
            items.append(_array_item(text))
        else:
            items.append("\n".join("  " + line for line in _dumps(row, i, 2).split("\n")))
    if fmt == "jsonl":
        out = "".join(item + "\n" for item in items)
    else:
        out = "[\n" + ",\n".join(items) + "\n]\n" if items else "[]\n"
    return out.encode("utf-8")


def write_records(path: str | Path, rows: Sequence[Any], *, source: str | Path | None = None,
                  indices: Any = None, texts: Sequence[str | None] | None = None) -> Path:
    """Write ``rows`` (source objects) to ``path`` in the container its suffix names, atomically.

    Parameters
    ----------
    path : str or Path
        ``.json``, ``.jsonl`` / ``.ndjson`` (optionally ``.gz``) or ``.parquet``; replaced whole.
    rows : sequence of mappings
        The records, in output order.
    source, indices : optional
        For a ``.parquet`` output from a Parquet input: the input file and the rows' indices in
        it; the rows are then taken from it with its exact schema.
    texts : sequence of str or None, optional
        For JSON / JSON-lines outputs: each row's source text (``None`` where there is none),
        written instead of ``json.dumps(row)``.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    fmt, compressed = export_format(path)
    if fmt == "parquet":
        return _write_parquet(path, rows, source, indices)
    if texts is not None and len(texts) != len(rows):
        raise ValidationError(f"texts must give one entry per row ({len(rows)}); got {len(texts)}.")
    data = _json_bytes(rows, fmt, texts)
    if compressed:
        data = gzip.compress(data, mtime=0)
    return atomic_write(path, lambda fh: fh.write(data))


def _is_parquet(source: str | Path | None) -> bool:
    if source is None:
        return False
    p = Path(source)
    if not p.is_file():
        return False
    with open(p, "rb") as fh:
        return fh.read(4) == b"PAR1"


def _write_parquet(path: Path, rows: Sequence[Any], source: str | Path | None, indices: Any) -> Path:
    pa = require("pyarrow", feature="writing Parquet files", extra="hf")
    pq = require("pyarrow.parquet", feature="writing Parquet files", extra="hf")
    if indices is not None and _is_parquet(source):
        table = pq.read_table(source).take(pa.array(np.asarray(indices, dtype=np.int64).reshape(-1)))
    else:
        keys: dict[str, None] = {}
        for r in rows:
            if not isinstance(r, Mapping):
                raise DataFormatError(f"a Parquet table needs records that are objects; got {type(r).__name__}.")
            keys.update(dict.fromkeys(map(str, r)))
        try:
            table = pa.table({k: [r.get(k) for r in rows] for k in keys})
        except OverflowError as exc:
            raise DataFormatError(_big_int_message(rows) or f"a value is out of Parquet's range ({exc}).") from exc
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataFormatError(
                f"the records cannot form a Parquet table ({exc}); write them as .json or .jsonl instead."
            ) from exc
    return atomic_write(path, lambda fh: pq.write_table(table, fh))


_INT64 = (-(2**63), 2**63 - 1)


def _find(value: Any, hit: Any, path: str = "") -> tuple[str, Any] | None:
    """``(key path, value)`` of the first value inside ``value`` for which ``hit`` holds, or None."""
    if hit(value):
        return path, value
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        found = _find(inner, hit, f"{path}[{key!r}]" if path else repr(key))
        if found:
            return found
    return None


def _big_int_message(rows: Sequence[Any]) -> str | None:
    """Which record holds an integer beyond int64 (Parquet's widest integer), for the error message."""
    for i, row in enumerate(rows):
        found = _find(row, lambda v: isinstance(v, int) and not isinstance(v, bool) and not _INT64[0] <= v <= _INT64[1])
        if found:
            return (f"record {i} of the output (key {found[0]}) holds the integer {found[1]}, beyond Parquet's int64 "
                    f"range; write the subset as .json or .jsonl (which keep it as written), or store it as a string.")
    return None


def write_subset(path: str | Path, records: Sequence[Any], indices: Any, *, source: str | Path | None = None) -> Path:
    """Write ``records[indices]`` as the user's original records, in the order of ``indices``: for
    JSON / JSON-lines outputs each record's source text when it has one (byte-exact), else its
    original object.

    Parameters
    ----------
    path : str or Path
        Output file; its suffix names the container (see the module docstring).
    records : sequence of InstructionRecord
        The dataset Z.
    indices : array-like of int, shape (k,)
        Absolute row indices into ``records``, e.g. ``select_subset(...).indices`` (pick order).
    source : str or Path, optional
        The file ``records`` were loaded from; a Parquet input gives a Parquet output its schema.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> from diverseevol.data import load_instructions
    >>> recs = load_instructions([{"instruction": "a", "output": "b", "id": 7}, {"instruction": "c", "output": "d"}])
    >>> original_rows(recs, [1, 0])
    [{'instruction': 'c', 'output': 'd'}, {'instruction': 'a', 'output': 'b', 'id': 7}]
    """
    rows = original_rows(records, indices)
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    texts = [getattr(records[int(i)], "source_text", None) for i in idx]
    return write_records(path, rows, source=source, indices=indices, texts=texts)


def dataset_info_entry(file_name: str, records: Sequence[Any]) -> dict[str, Any]:
    """The LLaMA-Factory ``dataset_info.json`` entry for an exported file of ``records``.

    Parameters
    ----------
    file_name : str
        The file as LLaMA-Factory should find it (relative to its ``dataset_dir``).
    records : sequence of InstructionRecord
        The exported records: the record format of the first
        (:meth:`~diverseevol.data.formats.RecordFormat.dataset_info_entry`) and the columns the
        records hold decide the entry.

    Returns
    -------
    dict
        E.g. ``{"file_name": "subset.json"}`` for Alpaca records, ``{"file_name": ...,
        "formatting": "sharegpt", "columns": {"messages": "conversations", "tools": "tools"}}``
        for ShareGPT records.
    """
    entry: dict[str, Any] = {"file_name": str(file_name)}
    if not records:
        return entry
    return {**entry, **format_of(records[0]).dataset_info_entry(records)}
