"""Several processes (``torchrun`` / ``accelerate launch``): a small ``torch.distributed`` wrapper.

:class:`TorchCommunicator` is what :class:`diverseevol.EvolutionLoop` uses to broadcast rank 0's
selection; the embedder, scorer and generator use :func:`active_communicator` to shard records
across processes and gather the results back in the original order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["TorchCommunicator", "active_communicator", "shard_indices"]


class TorchCommunicator:
    """Collective operations over the default ``torch.distributed`` process group.

    Attributes
    ----------
    rank : int
        This process's rank, ``0 .. world_size - 1``.
    world_size : int
        Number of processes.
    backend : str
        ``"gloo"`` or ``"nccl"`` (or whatever the existing group uses).
    """

    def __init__(self) -> None:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError(
                "torch.distributed is not initialised; use TorchCommunicator.from_env() inside a "
                "process started by torchrun / accelerate launch."
            )
        self._dist = dist
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.backend = str(dist.get_backend())

    def __repr__(self) -> str:
        return f"TorchCommunicator(rank={self.rank}, world_size={self.world_size}, backend={self.backend!r})"

    @classmethod
    def from_env(cls, backend: str | None = None) -> TorchCommunicator:
        """Initialise the default process group from the launcher's environment if needed.

        Reads ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` (set by ``torchrun`` and
        ``accelerate launch``). ``backend`` defaults to ``nccl`` when CUDA is available (each
        process then uses ``cuda:LOCAL_RANK``) and ``gloo`` otherwise.
        """
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            if backend is None:
                backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group(backend=backend)
            logger.info(
                "initialised torch.distributed (%s), rank %d of %d",
                backend,
                dist.get_rank(),
                dist.get_world_size(),
            )
        return cls()

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0."""
        return self.rank == 0

    @property
    def _device(self) -> Any:
        import torch

        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def barrier(self) -> None:
        """Wait until every process reaches this point."""
        self._dist.barrier()

    def broadcast_object(self, obj: Any = None, src: int = 0) -> Any:
        """Return rank ``src``'s ``obj`` on every rank (picklable objects, e.g. index arrays)."""
        box = [obj if self.rank == src else None]
        self._dist.broadcast_object_list(box, src=src)
        return box[0]

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Return the list of every rank's ``obj``, indexed by rank."""
        out: list[Any] = [None] * self.world_size
        self._dist.all_gather_object(out, obj)
        return out

    def all_gather_rows(
        self, local_idx: np.ndarray, local_rows: np.ndarray, n_total: int, *, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Assemble a full ``(n_total, ...)`` array from every rank's rows.

        Parameters
        ----------
        local_idx : numpy.ndarray of int, shape (m,)
            Absolute row positions (into the full array) of this rank's rows. The ranks' index
            sets must be disjoint and cover ``0 .. n_total - 1``.
        local_rows : numpy.ndarray, shape (m, ...)
        n_total : int
        out : numpy.ndarray, optional
            Written in place (e.g. a memmap) instead of a new array.

        Returns
        -------
        numpy.ndarray, shape (n_total, ...)
            The same on every rank.
        """
        import torch

        local_idx = np.asarray(local_idx, dtype=np.int64)
        local_rows = np.ascontiguousarray(local_rows)
        counts = self.all_gather_object(int(local_idx.shape[0]))
        width = max(counts) if counts else 0
        tail = local_rows.shape[1:]
        if out is None:
            out = np.empty((n_total, *tail), dtype=local_rows.dtype)
        dev = self._device
        pad_rows = np.zeros((width, *tail), dtype=local_rows.dtype)
        pad_rows[: local_rows.shape[0]] = local_rows
        pad_idx = np.full(width, -1, dtype=np.int64)
        pad_idx[: local_idx.shape[0]] = local_idx
        rows_t = torch.from_numpy(pad_rows).to(dev)
        idx_t = torch.from_numpy(pad_idx).to(dev)
        got_rows = [torch.empty_like(rows_t) for _ in range(self.world_size)]
        got_idx = [torch.empty_like(idx_t) for _ in range(self.world_size)]
        self._dist.all_gather(got_rows, rows_t)
        self._dist.all_gather(got_idx, idx_t)
        for r in range(self.world_size):
            c = counts[r]
            out[got_idx[r][:c].cpu().numpy()] = got_rows[r][:c].cpu().numpy()
        return out


def active_communicator(comm: Any = None) -> Any:
    """Return ``comm``, else a :class:`TorchCommunicator` when a process group with > 1 ranks exists, else None."""
    if comm is not None:
        return comm if getattr(comm, "world_size", 1) > 1 else None
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return None
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return TorchCommunicator()
    return None


def gather_rows(
    comm: Any, local_idx: np.ndarray, local_rows: np.ndarray, n_total: int, *, out: np.ndarray | None = None
) -> np.ndarray:
    """:meth:`TorchCommunicator.all_gather_rows` over ``comm``; without one (a single process,
    whose ``local_idx`` covers every row) the rows are placed into ``out`` or a new array."""
    if comm is not None:
        return comm.all_gather_rows(local_idx, local_rows, n_total, out=out)
    if out is None:
        out = np.empty((n_total, *local_rows.shape[1:]), dtype=local_rows.dtype)
    out[local_idx] = local_rows
    return out


def shard_indices(order: Sequence[int] | np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Rank ``rank``'s share of ``order``: every ``world_size``-th item, so shards of a
    length-sorted order get similar lengths. Returns absolute positions, int64."""
    return np.asarray(order, dtype=np.int64)[rank::world_size]
