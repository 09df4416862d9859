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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_write
from ._optional import require
from .data.formats import format_of
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


def _json_bytes(rows: Sequence[Any], fmt: str) -> bytes:
    try:
        if fmt == "json":
            text = json.dumps(list(rows), ensure_ascii=False, indent=2, default=_json_default) + "\n"
        else:
            text = "".join(json.dumps(r, ensure_ascii=False, default=_json_default) + "\n" for r in rows)
    except TypeError as exc:
        raise DataFormatError(str(exc)) from exc
    return text.encode("utf-8")


def write_records(path: str | Path, rows: Sequence[Any], *, source: str | Path | None = None,
                  indices: Any = None) -> Path:
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

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    fmt, compressed = export_format(path)
    if fmt == "parquet":
        return _write_parquet(path, rows, source, indices)
    data = _json_bytes(rows, fmt)
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


def _big_int_message(rows: Sequence[Any]) -> str | None:
    """Which record holds an integer beyond int64 (Parquet's widest integer), for the error message."""

    def find(value: Any, path: str) -> tuple[str, int] | None:
        if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
            return path, value
        items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
        for key, inner in items:
            found = find(inner, f"{path}[{key!r}]" if path else repr(key))
            if found:
                return found
        return None

    for i, row in enumerate(rows):
        found = find(row, "")
        if found:
            return (f"record {i} of the output (key {found[0]}) holds the integer {found[1]}, beyond Parquet's int64 "
                    f"range; write the subset as .json or .jsonl (which keep it as written), or store it as a string.")
    return None


def write_subset(path: str | Path, records: Sequence[Any], indices: Any, *, source: str | Path | None = None) -> Path:
    """Write ``records[indices]`` as the user's original objects, in the order of ``indices``.

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
    return write_records(path, rows, source=source, indices=indices)


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
