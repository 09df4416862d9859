"""Every multi-process helper in one place: communicators, rank lookup, sharding, device rule.

- :class:`LocalCommunicator`: the default, one process (numpy only).
- :class:`TorchCommunicator`: a small ``torch.distributed`` wrapper for ``torchrun`` /
  ``accelerate launch`` runs (torch is imported when it is used, never at module import).
- :func:`resolve_communicator`: the communicator the loop uses (``WORLD_SIZE > 1`` gives
  :meth:`TorchCommunicator.from_env`); :func:`active_communicator`: the one the Hugging Face
  parts shard over (None in a single process).
- :func:`run_on_rank0`: run a function on rank 0 and give its result (or its exception) to every rank.
- :func:`rank_and_world`: this process's rank and the number of processes.
- :func:`shard_slice`: which items a rank holds (contiguous blocks or strided).
- :func:`rank_device` and :func:`collective_device`: which torch device a rank computes on, and
  where the tensors of its collectives live.
- :func:`gather_rows`: assemble a full array from every rank's rows.
- :func:`launched_communicator`: the communicator of one command under a launcher, its process
  group released at the end when the command created it.

This is a base module: it imports numpy, the error types, the protocols and the optional-dependency
gate, nothing above them (never ``diverseevol.hf``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

from .errors import ValidationError
from .protocols import Communicator

__all__ = [
    "LocalCommunicator",
    "TorchCommunicator",
    "active_communicator",
    "collective_device",
    "gather_rows",
    "launched_communicator",
    "rank_and_world",
    "rank_device",
    "resolve_communicator",
    "run_on_rank0",
    "shard_slice",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


# ---- rank lookup ------------------------------------------------------------------------------------


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValidationError(
            f"the environment variable {name} must be an integer (as set by torchrun / accelerate launch); "
            f"got {raw!r}. Unset it for a single-process run."
        ) from None


def _initialised_dist() -> Any:
    """``torch.distributed`` when a process group is initialised, else None (never imports torch)."""
    if sys.modules.get("torch") is None:  # a process group exists only once torch is loaded
        return None
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def rank_and_world(group: Any = None) -> tuple[int, int]:
    """This process's rank and the number of processes.

    From the initialised ``torch.distributed`` process group when there is one, else from the
    launcher's environment variables ``RANK`` and ``WORLD_SIZE`` (``torchrun`` and
    ``accelerate launch`` set both); without them, rank 0 of 1. torch is not imported here.

    Parameters
    ----------
    group : ProcessGroup, optional
        A ``torch.distributed`` group (default: the world group). Only used with an initialised
        process group.

    Returns
    -------
    rank, world_size : int
        ``0 <= rank < world_size``.

    Raises
    ------
    ValidationError
        If ``RANK`` or ``WORLD_SIZE`` is not an integer, or the pair is inconsistent.
    """
    dist = _initialised_dist()
    if dist is not None:
        return int(dist.get_rank(group)), int(dist.get_world_size(group))
    rank, world = _env_int("RANK", 0), _env_int("WORLD_SIZE", 1)
    if world < 1 or not 0 <= rank < world:
        raise ValidationError(
            f"the environment must give 0 <= RANK < WORLD_SIZE; got RANK={rank}, WORLD_SIZE={world}. "
            "Start the processes with torchrun / accelerate launch, or unset both for one process."
        )
    return rank, world


def _local_rank() -> int:
    """This process's index on its node (``LOCAL_RANK``, default 0)."""
    return _env_int("LOCAL_RANK", 0)


# ---- device rule ------------------------------------------------------------------------------------


def rank_device() -> Any:
    """The torch device this process computes on: ``cuda:LOCAL_RANK`` when CUDA is available, else CPU.

    ``LOCAL_RANK`` is taken modulo the number of visible GPUs (one GPU per process is visible
    when the launcher restricts ``CUDA_VISIBLE_DEVICES``).

    Returns
    -------
    torch.device
    """
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", _local_rank() % torch.cuda.device_count())
    return torch.device("cpu")


def collective_device(backend: str) -> Any:
    """Where tensors passed to ``backend``'s collectives must live.

    NCCL works on GPU memory: this process's current CUDA device (which
    :meth:`TorchCommunicator.from_env` sets to :func:`rank_device`); every other backend (gloo,
    mpi) works on host memory: CPU.

    Parameters
    ----------
    backend : str
        The process group's backend, e.g. ``"nccl"`` or ``"gloo"``.

    Returns
    -------
    torch.device
    """
    import torch

    if "nccl" in str(backend).lower():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# ---- sharding ---------------------------------------------------------------------------------------


def shard_slice(n: int, rank: int, world_size: int, *, strided: bool = False) -> slice:
    """The positions ``0 .. n - 1`` that rank ``rank`` holds when n items are split over the ranks.

    Every position belongs to exactly one rank and the shares' sizes differ by at most 1.

    Parameters
    ----------
    n : int
        Number of items.
    rank, world_size : int
        ``0 <= rank < world_size``.
    strided : bool, default False
        False: contiguous blocks, the first ``n % world_size`` ranks one item longer (rows of a
        memory-mapped Z stay one slice). True: every ``world_size``-th position starting at
        ``rank``, so the shares of a length-sorted order get similar lengths.

    Returns
    -------
    slice
        Apply it to anything of length n (an array, a memory map, ``range(n)``); on a
        ``numpy.memmap`` the result is still a memory map.

    Raises
    ------
    ValidationError
        If ``n < 0``, ``world_size < 1`` or ``rank`` is not in ``[0, world_size)``.
    """
    n, rank, world_size = int(n), int(rank), int(world_size)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValidationError(f"rank must be in [0, world_size); got rank={rank}, world_size={world_size}.")
    if n < 0:
        raise ValidationError(f"n must be a non-negative number of items; got {n}.")
    if strided:
        return slice(rank, n, world_size)
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


# ---- communicators ----------------------------------------------------------------------------------


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


class TorchCommunicator:
    """Collective operations over a ``torch.distributed`` process group (by default the world group).

    Parameters
    ----------
    group : ProcessGroup, optional
        The group to work in; ranks (``rank``, ``src``) are ranks within it. Default: the world group.

    Attributes
    ----------
    rank : int
        This process's rank in the group, ``0 .. world_size - 1``.
    world_size : int
        Number of processes in the group.
    backend : str
        ``"gloo"`` or ``"nccl"`` (or whatever the existing group uses).
    device : torch.device
        Where the tensors of the collectives live (:func:`collective_device` of ``backend``).
    """

    def __init__(self, group: Any = None) -> None:
        dist = _initialised_dist()
        if dist is None:
            raise RuntimeError(
                "torch.distributed is not initialised; use TorchCommunicator.from_env() inside a "
                "process started by torchrun / accelerate launch."
            )
        self._dist = dist
        self.group = group
        self.rank, self.world_size = rank_and_world(group)
        self.backend = str(dist.get_backend(group))
        self.device = collective_device(self.backend)

    def _global_rank(self, group_rank: int) -> int:
        """The world rank of ``group_rank`` (what torch's ``src=`` takes)."""
        return group_rank if self.group is None else int(self._dist.get_global_rank(self.group, group_rank))

    def __repr__(self) -> str:
        return f"TorchCommunicator(rank={self.rank}, world_size={self.world_size}, backend={self.backend!r})"

    @classmethod
    def from_env(cls, backend: str | None = None) -> TorchCommunicator:
        """Initialise the default process group from the launcher's environment if needed.

        Reads ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` (set by ``torchrun`` and
        ``accelerate launch``). ``backend`` defaults to ``nccl`` when CUDA is available (each
        process then uses :func:`rank_device`, ``cuda:LOCAL_RANK``) and ``gloo`` otherwise.
        """
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            if backend is None:
                backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(rank_device())
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

    def barrier(self) -> None:
        """Wait until every process reaches this point."""
        self._dist.barrier(group=self.group)

    def broadcast_object(self, obj: Any = None, src: int = 0) -> Any:
        """Return rank ``src``'s ``obj`` on every rank (picklable objects, e.g. index arrays)."""
        box = [obj if self.rank == src else None]
        self._dist.broadcast_object_list(box, src=self._global_rank(src), group=self.group)
        return box[0]

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Return the list of every rank's ``obj``, indexed by rank."""
        out: list[Any] = [None] * self.world_size
        self._dist.all_gather_object(out, obj, group=self.group)
        return out

    # ---- numeric collectives (numpy in, numpy out; the tensors live on ``device``) ------------

    def all_gather_values(self, values: Any) -> np.ndarray:
        """Every rank's ``values`` (a few numbers, as many on every rank) as float64 rows.

        Parameters
        ----------
        values : sequence of float, length m
            This rank's numbers; m must be equal on every rank.

        Returns
        -------
        numpy.ndarray of float64, shape (world_size, len(values))
            Row ``r`` holds rank ``r``'s values; the same on every rank.
        """
        import torch

        t = torch.as_tensor(np.asarray(values, dtype=np.float64), device=self.device)
        out = [torch.empty_like(t) for _ in range(self.world_size)]
        self._dist.all_gather(out, t, group=self.group)
        return torch.stack(out).cpu().numpy()

    def all_reduce_sum(self, array: np.ndarray) -> np.ndarray:
        """The element-wise sum of every rank's ``array``, on every rank.

        Parameters
        ----------
        array : numpy.ndarray, any shape
            This rank's part; the same shape and dtype on every rank.

        Returns
        -------
        numpy.ndarray, the shape and dtype of ``array``
            The sum over the ranks (exactly a rank's values where only that rank is non-zero).
        """
        import torch

        t = torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
        self._dist.all_reduce(t, op=self._dist.ReduceOp.SUM, group=self.group)
        return t.cpu().numpy()

    def broadcast_array(self, array: np.ndarray, src: int) -> np.ndarray:
        """Rank ``src``'s ``array`` on every rank.

        Parameters
        ----------
        array : numpy.ndarray, any shape
            On rank ``src`` the values to send; on the others any array of the same shape and dtype.
        src : int
            The sending rank, in the group.

        Returns
        -------
        numpy.ndarray, the shape and dtype of ``array``
            Rank ``src``'s values.
        """
        import torch

        t = torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
        self._dist.broadcast(t, src=self._global_rank(src), group=self.group)
        return t.cpu().numpy()

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
        dev = self.device
        pad_rows = np.zeros((width, *tail), dtype=local_rows.dtype)
        pad_rows[: local_rows.shape[0]] = local_rows
        pad_idx = np.full(width, -1, dtype=np.int64)
        pad_idx[: local_idx.shape[0]] = local_idx
        rows_t = torch.from_numpy(pad_rows).to(dev)
        idx_t = torch.from_numpy(pad_idx).to(dev)
        got_rows = [torch.empty_like(rows_t) for _ in range(self.world_size)]
        got_idx = [torch.empty_like(idx_t) for _ in range(self.world_size)]
        self._dist.all_gather(got_rows, rows_t, group=self.group)
        self._dist.all_gather(got_idx, idx_t, group=self.group)
        for r in range(self.world_size):
            c = counts[r]
            out[got_idx[r][:c].cpu().numpy()] = got_rows[r][:c].cpu().numpy()
        return out


def _check_communicator(comm: Any) -> None:
    for attr in ("rank", "world_size", "broadcast_object", "barrier"):
        if not hasattr(comm, attr):
            raise ValidationError(
                f"comm must provide rank, world_size, broadcast_object(obj, src=0) and barrier(); "
                f"{type(comm).__name__} has no {attr!r}. See diverseevol.protocols.Communicator."
            )


def resolve_communicator(comm: Communicator | None) -> Communicator:
    """Return ``comm``, or the communicator the environment asks for.

    With ``comm=None`` and more than one process (:func:`rank_and_world`: the environment
    variable ``WORLD_SIZE`` greater than 1, as set by ``torchrun`` / ``accelerate launch``, or an
    initialised process group of several ranks), returns :meth:`TorchCommunicator.from_env`
    (needs torch, nothing else); otherwise a :class:`LocalCommunicator`.

    Raises
    ------
    ValidationError
        If ``comm`` lacks a member of :class:`diverseevol.protocols.Communicator`, or
        ``RANK`` / ``WORLD_SIZE`` are not integers with ``0 <= RANK < WORLD_SIZE``.
    OptionalDependencyError
        If ``WORLD_SIZE > 1`` and torch is not installed.
    """
    if comm is not None:
        _check_communicator(comm)
        return comm
    _, world = rank_and_world()
    if world > 1:
        from ._optional import require

        require("torch", feature=f"a multi-process run (WORLD_SIZE={world})", extra="hf")
        torch_comm = TorchCommunicator.from_env()
        logger.info("multi-process run: rank %d of %d", torch_comm.rank, torch_comm.world_size)
        return torch_comm
    return LocalCommunicator()


@contextmanager
def launched_communicator() -> Iterator[Communicator]:
    """:func:`resolve_communicator` for one command; at the end, the process group it created is destroyed.

    Under ``torchrun`` / ``accelerate launch`` (``WORLD_SIZE > 1``) the block gets a
    :class:`TorchCommunicator` of the world group, initialised here unless it already was; after the
    block (also after an exception) a group initialised here is destroyed, so the process exits
    cleanly. In one process it gets a :class:`LocalCommunicator` and torch is not imported.

    Yields
    ------
    Communicator

    Raises
    ------
    ValidationError, OptionalDependencyError
        As :func:`resolve_communicator`.
    """
    created = _initialised_dist() is None and rank_and_world()[1] > 1
    comm = resolve_communicator(None)
    try:
        yield comm
    finally:
        dist = _initialised_dist() if created else None
        if dist is not None:
            dist.destroy_process_group()


def active_communicator(comm: Any = None) -> Any:
    """The communicator to shard work over, or None for a single process.

    Returns ``comm`` when it has more than one rank (None when it has one), else a
    :class:`TorchCommunicator` when an initialised process group has more than one rank, else None.
    """
    if comm is not None:
        return comm if getattr(comm, "world_size", 1) > 1 else None
    dist = _initialised_dist()
    if dist is not None and dist.get_world_size() > 1:
        return TorchCommunicator()
    return None


# ---- rank-0 work and gathering ----------------------------------------------------------------------


def run_on_rank0(comm: Communicator, fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and give its result (or its exception) to every rank.

    Every rank must call this at the same point. On rank 0 an exception from ``fn`` is sent to
    the other ranks (which raise it) and then re-raised.

    Parameters
    ----------
    comm : Communicator
    fn : callable
        No arguments; its return value and exceptions must be picklable under several processes.

    Returns
    -------
    object
        ``fn()``'s value, on every rank.
    """
    if comm.world_size == 1:
        return fn()
    if comm.rank == 0:
        try:
            value = fn()
        except BaseException as exc:
            comm.broadcast_object((False, exc), src=0)
            raise
        comm.broadcast_object((True, value), src=0)
        return value
    ok, value = comm.broadcast_object(None, src=0)
    if not ok:
        raise value
    return value


def gather_rows(
    comm: Any, local_idx: np.ndarray, local_rows: np.ndarray, n_total: int, *, out: np.ndarray | None = None
) -> np.ndarray:
    """Assemble the full ``(n_total, ...)`` array from every rank's rows, in original row order.

    Parameters
    ----------
    comm : TorchCommunicator or None
        None (a single process, whose ``local_idx`` covers every row): the rows are placed
        into ``out`` or a new array. Otherwise :meth:`TorchCommunicator.all_gather_rows`.
    local_idx : numpy.ndarray of int, shape (m,)
        Absolute row positions (into the full array) of this rank's rows.
    local_rows : numpy.ndarray, shape (m, ...)
    n_total : int
    out : numpy.ndarray, optional
        Written in place instead of a new array.

    Returns
    -------
    numpy.ndarray, shape (n_total, ...)
    """
    if comm is not None:
        return comm.all_gather_rows(local_idx, local_rows, n_total, out=out)
    if out is None:
        out = np.empty((n_total, *local_rows.shape[1:]), dtype=local_rows.dtype)
    out[local_idx] = local_rows
    return out
