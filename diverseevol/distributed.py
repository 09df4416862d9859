"""Deprecated old home of the communicators; everything multi-process lives in :mod:`diverseevol.comm`.

Importing it warns (:class:`DeprecationWarning`); it will be removed in the next release.
"""

from __future__ import annotations

from ._deprecation import warn_old_home
from .comm import LocalCommunicator, resolve_communicator

__all__ = ["LocalCommunicator", "resolve_communicator"]

warn_old_home("diverseevol.distributed", "diverseevol.comm", "LocalCommunicator and resolve_communicator")
