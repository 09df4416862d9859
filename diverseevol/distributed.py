"""Communicators for multi-process runs; the default is a single local process (numpy only)."""

from __future__ import annotations

import logging
import os
from typing import Any

from .errors import ValidationError
from .protocols import Communicator

__all__ = ["LocalCommunicator", "resolve_communicator"]

logger = logging.getLogger(__name__)


class LocalCommunicator:
    """The one-process communicator: rank 0 of 1, broadcasts return their argument.

    Attributes
    ----------
    rank : int
        Always 0.
    world_size : int
        Always 1.
    """

    rank: int = 0
    world_size: int = 1

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """Return ``obj`` unchanged."""
        if src != 0:
            raise ValidationError(f"src must be 0 in a single-process run; got {src}.")
        return obj

    def barrier(self) -> None:
        """Return immediately."""

    def __repr__(self) -> str:
        return "LocalCommunicator(rank=0, world_size=1)"


def resolve_communicator(comm: Communicator | None) -> Communicator:
    """Return ``comm``, or the communicator the environment asks for.

    With ``comm=None`` and the environment variable ``WORLD_SIZE`` greater than 1 (as set by
    ``torchrun`` / ``accelerate launch``), returns
    ``diverseevol.hf.distributed.TorchCommunicator.from_env()`` (needs the ``hf`` extra);
    otherwise a :class:`LocalCommunicator`.
    """
    if comm is not None:
        for attr in ("rank", "world_size", "broadcast_object", "barrier"):
            if not hasattr(comm, attr):
                raise ValidationError(
                    f"comm must provide rank, world_size, broadcast_object(obj, src=0) and barrier(); "
                    f"{type(comm).__name__} has no {attr!r}. See diverseevol.protocols.Communicator."
                )
        return comm
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        world = 1
    if world > 1:
        from ._optional import require

        module = require(
            "diverseevol.hf.distributed", feature=f"a multi-process run (WORLD_SIZE={world})", extra="hf"
        )
        comm = module.TorchCommunicator.from_env()
        logger.info("multi-process run: rank %d of %d", comm.rank, comm.world_size)
        return comm
    return LocalCommunicator()
