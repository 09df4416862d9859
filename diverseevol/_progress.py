"""Progress bars: tqdm when installed (auto notebook/terminal), a silent fallback otherwise."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from ._optional import is_available

T = TypeVar("T")


def progress_enabled(disable: bool | None = None) -> bool:
    """Progress bars are on unless disabled by argument or ``DIVERSEEVOL_PROGRESS=0``."""
    if disable is not None:
        return not disable
    return os.environ.get("DIVERSEEVOL_PROGRESS", "1") not in ("0", "false", "no", "off")


class _NullBar:
    def __init__(self, iterable: Iterable[Any] | None = None, **_: Any) -> None:
        self._iterable = iterable

    def __iter__(self) -> Iterator[Any]:
        return iter(self._iterable if self._iterable is not None else ())

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_description(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NullBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress_bar(iterable: Iterable[T] | None = None, *, disable: bool | None = None, **kwargs: Any) -> Any:
    """Return a tqdm bar over ``iterable`` (or a manual bar when ``iterable`` is None).

    Falls back to a no-op object with the same methods when tqdm is not installed or bars
    are disabled.
    """
    if not progress_enabled(disable) or not is_available("tqdm"):
        return _NullBar(iterable)
    from tqdm.auto import tqdm

    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
