"""File types: a path -> ``(location, raw record)`` pairs (JSON, JSON lines, Parquet, a save_to_disk directory).

The file type is told apart from the record shape: ``file_type=`` names it (one of
:data:`FILE_TYPES`), else it comes from the suffix (``.json``, ``.jsonl`` / ``.ndjson``, each
optionally ``.gz``; ``.parquet`` / ``.pq``), the content (gzip and Parquet magic bytes; ``[`` or
``{`` first) or the directory (``state.json``: written by ``datasets.Dataset.save_to_disk``).
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .._files import parse_json
from .._optional import require
from ..errors import DataFileNotFoundError, DataFormatError, ValidationError

__all__ = ["FILE_TYPES", "check_encoding", "file_type_names", "file_type_summaries", "iter_path"]

#: The file types ``file_type=`` may name, with one line each.
FILE_TYPES: Mapping[str, str] = {
    "json": "a JSON array of records (.json, optionally .json.gz)",
    "jsonl": "JSON lines: one record per line (.jsonl, .ndjson, optionally .gz)",
    "parquet": "a Parquet table (.parquet; needs pyarrow)",
    "dataset": "a directory written by datasets' Dataset.save_to_disk (needs datasets)",
}


def file_type_names() -> tuple[str, ...]:
    """The file types ``file_type=`` may name."""
    return tuple(FILE_TYPES)


def file_type_summaries() -> dict[str, str]:
    """``{file type: one-line description}`` (for help texts)."""
    return dict(FILE_TYPES)


def check_file_type(file_type: Any) -> None:
    """``file_type`` is ``None`` or one of :data:`FILE_TYPES`."""
    if file_type is not None and file_type not in FILE_TYPES:
        raise ValidationError(
            f"file_type must be one of {list(FILE_TYPES)} or None (from the suffix and content); got {file_type!r}."
        )


def check_encoding(encoding: Any) -> None:
    """``encoding`` names a text codec Python knows."""
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise ValidationError(
            f"encoding must name a text codec Python knows (e.g. 'utf-8', 'utf-8-sig', 'latin-1'); got {encoding!r}."
        ) from None


def iter_path(path: Path, file_type: str | None, encoding: str) -> Iterator[tuple[str, Any]]:
    """``(location, raw record)`` pairs of the file or saved dataset at ``path``.

    Raises
    ------
    DataFileNotFoundError
        When ``path`` does not exist.
    DataFormatError
        When it cannot be read as ``file_type`` (or as any, when that is not given).
    """
    if not path.exists():
        raise DataFileNotFoundError(f"No such data file: {path}. Check the path (relative paths start at {Path.cwd()}).")
    if path.is_dir():
        if _is_saved_dataset(path) and file_type in (None, "dataset"):
            return _iter_saved_dataset(path)
        raise DataFormatError(
            f"{path}: is a directory but not one written by datasets' save_to_disk (no state.json); pass a "
            f".json, .jsonl or .parquet file."
            if not _is_saved_dataset(path) else f"{path}: is a save_to_disk directory, not a {file_type} file."
        )
    if file_type == "dataset":
        raise DataFormatError(f"{path}: file_type='dataset' names a save_to_disk directory; this is a file.")
    fmt = file_type or _infer_type(path)
    if fmt is None and _has_parquet_magic(path):
        fmt = "parquet"
    if fmt == "parquet":
        return _iter_parquet(path)
    return _iter_file(path, fmt, encoding)


def _open_text(path: Path, encoding: str) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding)
    return open(path, encoding=encoding)


def _infer_type(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".gzip"):
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in (".jsonl", ".ndjson"):
        return "jsonl"
    if last == ".json":
        return "json"
    if last in (".parquet", ".pq"):
        return "parquet"
    return None


def _is_saved_dataset(path: Path) -> bool:
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def _has_parquet_magic(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


def _iter_parquet(path: Path) -> Iterator[tuple[str, Any]]:
    pq = require("pyarrow.parquet", feature="reading Parquet files", extra="hf")
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError family
        raise DataFormatError(f"{path}: cannot be read as Parquet ({exc}).") from exc
    return ((f"{path}: row {i}", rec) for i, rec in enumerate(rows))


def _iter_saved_dataset(path: Path) -> Iterator[tuple[str, Any]]:
    datasets = require("datasets", feature="reading a save_to_disk directory", extra="hf")
    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, Mapping):  # DatasetDict
        splits = list(ds)
        if len(splits) != 1:
            raise DataFormatError(
                f"{path}: holds a DatasetDict with the splits {splits}; load one with "
                f"load_instructions(datasets.load_from_disk({str(path)!r})[{splits[0]!r}])."
            )
        ds = ds[splits[0]]
    return ((f"{path}: record {i}", rec) for i, rec in enumerate(ds))


def _iter_file(path: Path, file_type: str | None, encoding: str) -> Iterator[tuple[str, Any]]:
    fmt = file_type
    try:
        with _open_text(path, encoding) as fh:
            text = fh.read()
    except (UnicodeError, OSError, EOFError) as exc:
        raise DataFormatError(f"{path}: cannot be read as {encoding} text ({exc}).") from exc
    head = text.lstrip()[:1]
    if fmt is None:
        if head == "[":
            fmt = "json"
        elif head == "{":
            fmt = "jsonl"
        else:
            raise DataFormatError(
                f"{path}: cannot tell the file type from the suffix or the content (starts with {head!r}); "
                f"pass file_type='json' (an array of objects) or file_type='jsonl' (one object per line)."
            )
    if fmt == "json" and head == "{":
        # A .json file holding JSON lines is common (e.g. Dolly copies); a single object is not a dataset.
        try:
            obj = parse_json(text)
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
        obj = parse_json(text)
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
            rec = parse_json(line)  # deep nesting: JSONDecodeError, not RecursionError
        except json.JSONDecodeError as exc:
            raise DataFormatError(
                f"{path}: line {lineno}: invalid JSON at column {exc.colno}: {exc.msg}. Each line must hold "
                f"one JSON object (JSON lines); for a JSON array use a .json file or file_type='json'."
            ) from exc
        yield f"{path}: line {lineno}", rec
