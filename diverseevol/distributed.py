"""Old home of the communicators; everything multi-process now lives in :mod:`diverseevol.comm`.

Kept so that ``from diverseevol.distributed import LocalCommunicator, resolve_communicator``
keeps working; new code imports from :mod:`diverseevol.comm`.
"""

from __future__ import annotations

from .comm import LocalCommunicator, resolve_communicator

__all__ = ["LocalCommunicator", "resolve_communicator"]
