"""Reading one value of a raw record: missing values, strings, lists (numpy arrays from Parquet and pandas)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import DataFormatError

__all__ = ["as_list", "is_list_like", "is_missing", "meta_of", "short", "text_field"]


def is_missing(value: Any) -> bool:
    """``None`` or a float NaN (pandas' and Parquet's empty cell)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def is_list_like(value: Any) -> bool:
    """A list, a tuple, or a one-dimensional array (pandas and pyarrow hand lists over as numpy arrays)."""
    return isinstance(value, (list, tuple)) or (hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1)


def as_list(value: Any) -> Any:
    """``value`` as a list when it is list-like; any other value unchanged."""
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()
    return list(value) if isinstance(value, (list, tuple)) else value


def short(value: Any, n: int = 60) -> str:
    """``repr(value)`` cut to ``n`` characters, for messages."""
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def text_field(rec: Mapping[str, Any], key: str, where: str, *, required: bool) -> str:
    """The string under ``key``; ``""`` for a missing optional one.

    Raises
    ------
    DataFormatError
        Naming ``where`` and ``key``: a required field missing or null, or a value that is no string.
    """
    if key not in rec or is_missing(rec[key]):
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
            f"{where}: the field {key!r} must be a string; got {type(value).__name__} ({short(value)})."
        )
    return value


def meta_of(rec: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any] | None:
    """The fields ``names`` that ``rec`` holds (not missing), or ``None`` when there are none."""
    return {m: rec[m] for m in names if m in rec and not is_missing(rec[m])} or None
