"""Old import paths: the one warning a module that only re-exports another module's names gives at import."""

from __future__ import annotations

import warnings

__all__ = ["warn_old_home"]

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
