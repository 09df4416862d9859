"""Old home of the run directory and the file helpers.

:class:`RunDirectory` lives in :mod:`diverseevol.run.directory`; the atomic-write, JSON/npy and
redaction helpers live in :mod:`diverseevol._files`. Kept so that old imports keep working.
"""

from __future__ import annotations

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
