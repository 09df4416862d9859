"""In-memory sources -> ``(location, raw record)`` pairs: lists of mappings, datasets.Dataset, DataFrame."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import DataFormatError, ValidationError
from .records import InstructionRecord

__all__ = ["iter_memory"]


def iter_memory(source: Any) -> tuple[str, Iterable[tuple[str, Any, None]] | None]:
    """``(label, (location, raw record, None) triples)`` of an in-memory source; ``None`` when the
    source already holds :class:`InstructionRecord` objects.

    Raises
    ------
    DataFormatError
        For a single mapping or a ``DatasetDict`` (one split is needed).
    ValidationError
        For anything that is not a sequence of records, a Dataset or a DataFrame.
    """
    cls = type(source)
    module = cls.__module__ or ""
    if module.startswith("pandas") and cls.__name__ == "DataFrame":
        columns = [str(c) for c in source.columns]
        label = "DataFrame"
        return label, (
            (f"{label}: row {i}", dict(zip(columns, values)), None)
            for i, values in enumerate(source.itertuples(index=False, name=None))
        )
    if module.startswith("datasets") and cls.__name__ in ("Dataset", "IterableDataset"):
        label = "datasets.Dataset"
        return label, ((f"{label}: record {i}", rec, None) for i, rec in enumerate(source))
    if module.startswith("datasets") and cls.__name__ == "DatasetDict":
        raise DataFormatError(
            f"load_instructions expects one split; got a DatasetDict with the splits {list(source)}. Pass "
            f"e.g. dataset_dict[{next(iter(source), 'train')!r}]."
        )
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
    return "records", ((f"record {i}", rec, None) for i, rec in enumerate(items))
