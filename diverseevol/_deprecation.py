"""Old import paths: the one warning a module that only re-exports another module's names gives at import."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Collection
from typing import Any

__all__ = ["moved_names", "warn_old_home"]

#: How every old-home warning starts: ``"<old module> is deprecated"`` (tests turn it into an error).
MESSAGE_START = "{old} is deprecated"


def warn_old_home(old: str, new: str, names: str) -> None:
    """Issue the :class:`DeprecationWarning` of the old import path ``old``, naming ``new``.

    Call it at the top of the old module's body. The warning points at the line that imported
    the old module (the import machinery's frames are skipped), so it shows where to change the
    import.

    Parameters
    ----------
    old : str
        The old module, e.g. ``"diverseevol.loop"``.
    new : str
        Where its names live now, e.g. ``"diverseevol.run"``.
    names : str
        The names it re-exports, as the message should list them.
    """
    warnings.warn(
        f"{MESSAGE_START.format(old=old)} and will be removed in the next release; import {names} from "
        f"{new} instead.",
        DeprecationWarning,
        stacklevel=3,  # 1: here, 2: the old module's body, 3: its importer (importlib frames skipped)
    )


def moved_names(old: str, new: str, names: Collection[str], why: str = "") -> Callable[[str], Any]:
    """A module ``__getattr__`` for names that moved from module ``old`` to module ``new``.

    Each use of ``old.<name>`` warns (``DeprecationWarning`` naming ``new.<name>``) and returns the
    name from ``new``, imported by name when used: the new home may sit above the old one in the
    layers. Other names raise ``AttributeError`` as usual.

    Parameters
    ----------
    old, new : str
        Module names, e.g. ``"diverseevol.config"`` and ``"diverseevol.assemble_config"``.
    names : collection of str
        The names that moved.
    why : str, optional
        Put in brackets after the new path in the message.
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        reason = f" ({why})" if why else ""
        warnings.warn(
            f"{old}.{name} moved to {new}.{name}{reason}; import it from there (the old name will be removed in a "
            f"later release).",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(new), name)

    return __getattr__
