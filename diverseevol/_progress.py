"""Progress bars: tqdm when installed (auto notebook/terminal), a silent fallback otherwise.

One switch decides whether any bar of the library is shown (ours, and the Hugging Face trainer's,
weight loading/saving and generation bars, which ask :func:`show_progress`):

- ``DIVERSEEVOL_PROGRESS=0`` (or ``false``/``no``/``off``) hides every bar, whatever a caller asks
  (the CLI's ``--no-progress`` sets it);
- a caller's ``progress=False`` / ``disable=True`` hides its bar;
- otherwise bars are shown when stderr is a terminal or a notebook, and hidden when it is a file
  or a pipe (logs, CI), unless forced with ``DIVERSEEVOL_PROGRESS=1`` (or ``true``/``yes``/``on``/
  ``force``/``always``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from ._optional import is_available

T = TypeVar("T")

__all__ = ["ENV_VAR", "progress_bar", "progress_enabled", "show_progress"]

#: The environment variable that switches every progress bar off (``0``) or forces it on (``1``).
ENV_VAR = "DIVERSEEVOL_PROGRESS"
_OFF = ("0", "false", "no", "off")
_FORCE = ("1", "true", "yes", "on", "force", "always")


def _stderr_is_interactive() -> bool:
    stream = sys.stderr
    if stream is None:
        return False
    if type(stream).__module__.startswith("ipykernel"):  # Jupyter: tqdm.auto draws a widget
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or exotic streams
        return False


def show_progress(requested: bool | None = True) -> bool:
    """Whether a bar should be shown, by the library's one rule (see the module docstring).

    Parameters
    ----------
    requested : bool or None, default True
        What the caller asks for (e.g. a ``progress=`` argument); False always hides, True and
        None defer to ``DIVERSEEVOL_PROGRESS`` and to whether stderr is interactive.
    """
    setting = os.environ.get(ENV_VAR, "").strip().lower()
    if setting in _OFF or requested is False:
        return False
    if setting in _FORCE:
        return True
    return _stderr_is_interactive()


def progress_enabled(disable: bool | None = None) -> bool:
    """Progress bars are on unless disabled by argument, by ``DIVERSEEVOL_PROGRESS=0``, or by a
    non-interactive stderr (see :func:`show_progress`).

    ``disable=False`` is a request, not a force: it does not override ``DIVERSEEVOL_PROGRESS=0``
    (a size rule such as k-center's "large problems show a bar" passes it).
    """
    return show_progress(False if disable else True)


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
