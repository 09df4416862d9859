"""LLaMA-Factory's ``dataset_info.json``: load a dataset as one of its entries describes it.

An entry names a local file (``file_name``), its ``formatting`` (``alpaca``, the default, or
``sharegpt``; OpenAI messages are ShareGPT with other ``tags``), its ``columns`` and its
``tags``. Multimodal entries (``images`` / ``videos`` / ``audios`` columns) are read for their
text; the media columns stay in each record's :attr:`~InstructionRecord.original`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from .._files import parse_json
from ..errors import DataFileNotFoundError, DataFormatError, ValidationError
from .formats import record_format_names, record_formats
from .load import check_load_options, read_records
from .records import InstructionRecord

__all__ = ["DatasetInfoSource", "dataset_info_source", "load_dataset_info"]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class DatasetInfoSource:
    """What one ``dataset_info.json`` entry says about its data.

    Attributes
    ----------
    path : Path
        The data file (``file_name`` resolved against the root).
    family : str or None
        The entry's LLaMA-Factory ``formatting`` (``"alpaca"``, ``"sharegpt"``): the record
        format is detected among the formats of that formatting.
    format : str or None
        A record format named directly (a ``formatting`` that is a registered format's name).
    columns, tags : dict or None
        The entry's ``columns`` and ``tags``.
    """

    path: Path
    family: str | None
    format: str | None
    columns: dict[str, Any] | None
    tags: dict[str, Any] | None


def dataset_info_source(dataset_info: PathLike | Mapping[str, Any], name: str, *,
                        root: PathLike | None = None) -> DatasetInfoSource:
    """Read and check entry ``name`` of a ``dataset_info.json`` (the data itself is not read).

    Parameters
    ----------
    dataset_info : path or mapping
        The ``dataset_info.json`` file, or its parsed content.
    name : str
        The entry.
    root : path, optional
        Directory of the entry's ``file_name``; default the directory of ``dataset_info`` (the
        current directory for a mapping).

    Returns
    -------
    DatasetInfoSource

    Raises
    ------
    DataFileNotFoundError
        When the ``dataset_info`` file does not exist.
    DataFormatError
        When the file is not a JSON object of entries, or the entry is malformed (naming the key).
    ValidationError
        When there is no entry ``name``.
    """
    if isinstance(dataset_info, Mapping):
        info, base, label = dataset_info, Path(root or "."), "dataset_info"
    else:
        info_path = Path(dataset_info)
        label = str(info_path)
        try:
            info = parse_json(info_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataFileNotFoundError(f"No such dataset_info file: {info_path}.") from None
        except (UnicodeError, ValueError) as exc:
            raise DataFormatError(f"{info_path}: not a JSON dataset_info file ({exc}).") from None
        if not isinstance(info, Mapping):
            raise DataFormatError(f"{info_path}: dataset_info must be a JSON object of entries; got {type(info).__name__}.")
        base = Path(root) if root is not None else info_path.parent
    if name not in info:
        raise ValidationError(f"dataset_info has no entry {name!r}; its entries are {sorted(info)}.")
    entry = info[name]
    where = f"{label}: entry {name!r}"
    if not isinstance(entry, Mapping):
        raise DataFormatError(f"{where} must be a JSON object with 'file_name' (and 'formatting', 'columns', "
                              f"'tags'); got {type(entry).__name__} ({entry!r:.60}).")
    if "file_name" not in entry:
        raise DataFormatError(
            f"{where} has no 'file_name' (Hub and script datasets are not read here); "
            f"load the data with the datasets library and pass it to load_instructions."
        )
    if not isinstance(entry["file_name"], str):
        raise DataFormatError(f"{where}: 'file_name' must be a string (a file beside dataset_info.json); got "
                              f"{type(entry['file_name']).__name__}.")
    for key in ("columns", "tags"):
        if entry.get(key) is not None and not isinstance(entry[key], Mapping):
            raise DataFormatError(f"{where}: {key!r} must be a JSON object of names, as in LLaMA-Factory's "
                                  f"dataset_info.json; got {type(entry[key]).__name__} ({entry[key]!r:.60}).")
    formatting = entry.get("formatting", "alpaca")
    families = {f.lf_formatting for f in record_formats().values()}
    if not isinstance(formatting, str) or (formatting not in families and formatting not in record_format_names()):
        raise DataFormatError(f"{where}: unknown formatting {formatting!r}; LLaMA-Factory's are {sorted(families)}.")
    family = formatting if formatting in families else None
    return DatasetInfoSource(base / entry["file_name"], family, None if family else formatting,
                             entry.get("columns"), entry.get("tags"))


def load_dataset_info(
    dataset_info: PathLike | Mapping[str, Any], name: str, *, root: PathLike | None = None, **kwargs: Any
) -> list[InstructionRecord]:
    """Load dataset ``name`` as described by a LLaMA-Factory ``dataset_info.json``.

    Parameters
    ----------
    dataset_info : path or mapping
        The ``dataset_info.json`` file, or its parsed content.
    name : str
        The entry to load.
    root : path, optional
        Directory of the entry's ``file_name``; default the directory of ``dataset_info``
        (the current directory for a mapping).
    **kwargs
        Further :func:`load_instructions` arguments (``on_duplicates``, ``encoding``, ``format``...).

    Returns
    -------
    list of InstructionRecord
        Read with the entry's ``formatting`` (``alpaca`` when absent), ``columns`` and ``tags``.
    """
    src = dataset_info_source(dataset_info, name, root=root)
    given = sorted(set(kwargs) & {"columns", "tags", "fields"})
    if given:
        raise ValidationError(f"load_dataset_info: the entry {name!r} gives the column and tag names; do not pass "
                              f"{given} (or call load_instructions on its file instead).")
    kwargs.setdefault("format", src.format)
    options = check_load_options(columns=src.columns, tags=src.tags, stacklevel=3, **kwargs)
    return read_records(src.path, options, family=src.family if options.format is None else None)
