"""Deprecated old home of the run directory and the file helpers.

:class:`RunDirectory` lives in :mod:`diverseevol.run.directory` (also exported by
:mod:`diverseevol.run`); the atomic-write, JSON/npy and redaction helpers live in
:mod:`diverseevol._files`. Importing this module warns (:class:`DeprecationWarning`); it will be
removed in the next release.
"""

from __future__ import annotations

from ._deprecation import warn_old_home
from ._files import (
    REDACTED,
    atomic_write,
    read_json,
    read_npy,
    redact_secrets,
    to_jsonable,
    write_json,
    write_npy,
)
from .run.directory import FORMAT, FORMAT_VERSION, RunDirectory

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "REDACTED",
    "RunDirectory",
    "atomic_write",
    "read_json",
    "read_npy",
    "redact_secrets",
    "to_jsonable",
    "write_json",
    "write_npy",
]

warn_old_home(
    "diverseevol.rundir",
    "diverseevol.run.directory",
    "RunDirectory, FORMAT and FORMAT_VERSION (the file helpers from diverseevol._files)",
)
