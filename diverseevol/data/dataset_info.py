"""LLaMA-Factory's ``dataset_info.json``: load a dataset as one of its entries describes it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._files import parse_json
from ..errors import DataFileNotFoundError, DataFormatError, ValidationError
from .load import load_instructions
from .records import InstructionRecord, PathLike

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
        Further :func:`load_instructions` arguments (``on_duplicates``, ``encoding``...).

    Returns
    -------
    list of InstructionRecord
        Read with the entry's ``formatting`` (``alpaca`` when absent), ``columns`` and ``tags``.
    """
    if isinstance(dataset_info, Mapping):
        info, base = dataset_info, Path(root or ".")
    else:
        info_path = Path(dataset_info)
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
    if "file_name" not in entry:
        raise DataFormatError(
            f"dataset_info entry {name!r} has no 'file_name' (Hub and script datasets are not read here); "
            f"load the data with the datasets library and pass it to load_instructions."
        )
    formatting = entry.get("formatting", "alpaca")
    if formatting not in ("alpaca", "sharegpt", "openai"):
        raise DataFormatError(f"dataset_info entry {name!r}: unknown formatting {formatting!r}.")
    cols = entry.get("columns")
    tags = entry.get("tags")
    if formatting == "sharegpt" and tags and tags.get("role_tag") == "role":
        formatting = "openai"
    return load_instructions(base / entry["file_name"], format=formatting, columns=cols, tags=tags, **kwargs)
