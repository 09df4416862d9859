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
from typing import Any, Union

from .._files import parse_json
from .._optional import require
from ..errors import DataFileNotFoundError, DataFormatError, ValidationError
from .jsontext import read_json_array, read_json_lines

#: One record: (location, raw record, its source text or None).
Row = tuple[str, Any, Union[str, None]]

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


def iter_path(path: Path, file_type: str | None, encoding: str, duplicate_keys: str = "error") -> Iterator[Row]:
    """``(location, raw record, source text)`` of each record of the file or saved dataset at ``path``
    (the source text: the record's exact JSON text in a JSON / JSON-lines file, else ``None``).

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
    return _iter_file(path, fmt, encoding, duplicate_keys)


def _open_text(path: Path, encoding: str) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, newline="")
    return open(path, encoding=encoding, newline="")  # line breaks kept as written: records keep their text


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


def _iter_parquet(path: Path) -> Iterator[Row]:
    pq = require("pyarrow.parquet", feature="reading Parquet files", extra="hf")
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError family
        raise DataFormatError(f"{path}: cannot be read as Parquet ({exc}).") from exc
    return ((f"{path}: row {i}", rec, None) for i, rec in enumerate(rows))


def _iter_saved_dataset(path: Path) -> Iterator[Row]:
    datasets = require("datasets", feature="reading a save_to_disk directory", extra="hf")
    split_dir = _check_saved_dataset(path)
    try:
        ds = datasets.load_from_disk(str(split_dir))
        rows = list(ds)
    except Exception as exc:  # datasets / pyarrow raise many types for a damaged directory
        raise DataFormatError(
            f"{split_dir}: cannot be read as a save_to_disk directory ({type(exc).__name__}: {exc}); save it again "
            f"with Dataset.save_to_disk."
        ) from exc
    return ((f"{split_dir}: record {i}", rec, None) for i, rec in enumerate(rows))


def _read_json_file(path: Path, what: str) -> Any:
    try:
        return parse_json(path.read_text(encoding="utf-8"))
    except (UnicodeError, ValueError) as exc:
        raise DataFormatError(f"{path}: not valid JSON ({exc}); the {what} is damaged: save the dataset again "
                              f"with save_to_disk.") from None


def _check_saved_dataset(path: Path) -> Path:
    """The split directory to read, after checking the files ``save_to_disk`` wrote: ``state.json``
    (and ``dataset_dict.json``) parse, and every Arrow shard they list exists."""
    if (path / "dataset_dict.json").is_file():
        splits = _read_json_file(path / "dataset_dict.json", "DatasetDict index")
        splits = splits.get("splits") if isinstance(splits, Mapping) else None
        if not (isinstance(splits, list) and splits and all(isinstance(x, str) for x in splits)):
            raise DataFormatError(f"{path / 'dataset_dict.json'}: expected {{\"splits\": [names]}}; the DatasetDict "
                                  f"index is damaged: save the dataset again with save_to_disk.")
        if len(splits) != 1:
            raise DataFormatError(
                f"{path}: holds a DatasetDict with the splits {splits}; load one with "
                f"load_instructions({str(path / splits[0])!r}) or "
                f"load_instructions(datasets.load_from_disk({str(path)!r})[{splits[0]!r}])."
            )
        path = path / splits[0]
    state_file = path / "state.json"
    state = _read_json_file(state_file, "dataset state")
    files = state.get("_data_files") if isinstance(state, Mapping) else None
    names = [f.get("filename") for f in files if isinstance(f, Mapping)] if isinstance(files, list) else None
    if not names or not all(isinstance(n, str) for n in names):
        raise DataFormatError(f"{state_file}: expected an object whose '_data_files' lists the Arrow shards "
                              f"({{'filename': ...}}); the dataset state is damaged: save the dataset again.")
    for name in names:
        if not (path / name).is_file():
            raise DataFileNotFoundError(f"{path / name}: an Arrow shard that {state_file} lists is missing; copy the "
                                        f"whole directory again (or save the dataset again with save_to_disk).")
    return path


def _iter_file(path: Path, file_type: str | None, encoding: str, duplicate_keys: str) -> Iterator[Row]:
    fmt = file_type
    try:
        with _open_text(path, encoding) as fh:
            text = fh.read()
    except (UnicodeError, OSError, EOFError) as exc:
        raise DataFormatError(f"{path}: cannot be read as {encoding} text ({exc}).") from exc
    if text.startswith("\ufeff"):
        raise DataFormatError(
            f"{path}: starts with a UTF-8 byte-order mark (BOM), which JSON does not allow; read it with "
            f"encoding='utf-8-sig' (load_instructions(..., encoding='utf-8-sig'); encoding: utf-8-sig in a run "
            f"file's data section; --encoding utf-8-sig on the command line)."
        )
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
    read = read_json_array if fmt == "json" else read_json_lines
    return iter(read(text, str(path), duplicate_keys))
