"""Deprecated old home of :class:`TorchCommunicator` and the sharding helpers; they live in :mod:`diverseevol.comm`.

Importing it warns (:class:`DeprecationWarning`); it will be removed in the next release.
``shard_indices(order, rank, world)`` is ``order[shard_slice(len(order), rank, world, strided=True)]``
with :func:`diverseevol.comm.shard_slice`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._deprecation import warn_old_home
from ..comm import TorchCommunicator, active_communicator, shard_slice
from ..comm import gather_rows as gather_rows  # old import path, not in __all__

__all__ = ["TorchCommunicator", "active_communicator", "shard_indices"]

warn_old_home(
    "diverseevol.hf.distributed",
    "diverseevol.comm",
    "TorchCommunicator, active_communicator, gather_rows and shard_slice (strided=True for shard_indices)",
)


def shard_indices(order: Sequence[int] | np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Rank ``rank``'s share of ``order``: ``order[shard_slice(len(order), rank, world_size, strided=True)]``.

    Returns
    -------
    numpy.ndarray of int64, shape (about len(order) / world_size,)
        The items of ``order`` (positions in the caller's index space) at positions
        ``rank, rank + world_size, ...``.
    """
    items = np.asarray(order, dtype=np.int64)
    return items[shard_slice(len(items), rank, world_size, strided=True)]
