"""Exact greedy K-Center over embeddings sharded across the ranks of a torch.distributed job.

Each rank holds some rows of Z (its own memory map, host array or device memory) and their
absolute row indices. Per pick, every rank takes the farthest of its own candidates (local
argmax of its running min-distance vector), the ranks exchange these (distance, index) pairs and
agree on the global farthest (ties to the lowest row index, as in the single-process kernel), and
the rank that holds the new center broadcasts its vector so every rank can update its own
candidates. The picks equal those of :func:`diverseevol.kcenter_select` on the whole of Z. On data
with a large common mean every rank takes distances relative to the same shift row
(:mod:`._shift`; the ranks sum their partial moments of the rule's sample).

Launch one process per GPU (or per CPU worker), e.g. on one node with 8 GPUs::

    torchrun --standalone --nproc_per_node 8 my_select.py

and on several nodes (run on each node, same rendezvous endpoint)::

    torchrun --nnodes 4 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 my_select.py

where ``my_select.py`` calls ``torch.distributed.init_process_group("nccl")`` (``"gloo"`` on CPUs),
opens its shard with :func:`load_shard` and calls :func:`kcenter_select_distributed`.
See docs/kcenter_scale.md and examples/kcenter_distributed.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np

from .._optional import require
from .._progress import progress_bar
from .._validation import RandomState, check_k, check_random_state, check_scalar
from ..comm import TorchCommunicator, rank_and_world, shard_slice
from ..errors import IndexValidationError, ValidationError
from . import _shift
from ._inputs import check_shard, empty_result, given_index_sets
from ._rowblocks import default_block_rows, draw_first_pick, normalize_rows, radius_from_sq
from ._torch import _TorchCandidates, cpu_threads, exact_float32, resolve_device
from .contract import METRICS, check_metric, check_options

__all__ = ["kcenter_select_distributed", "load_shard", "shard_range"]

logger = logging.getLogger(__name__)


def shard_range(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Row range ``[start, stop)`` of Z held by ``rank`` when N rows are split in contiguous, near-equal shards.

    The first ``n % world_size`` ranks get one extra row (:func:`diverseevol.comm.shard_slice`).
    """
    rows = shard_slice(n, rank, world_size)
    return rows.start, rows.stop


def load_shard(
    path: str, rank: int | None = None, world_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Memory-map this rank's contiguous shard of a ``.npy`` file of Z's embeddings.

    Parameters
    ----------
    path : str
        A ``.npy`` file of shape (N, d).
    rank, world_size : int, optional
        Default: :func:`diverseevol.comm.rank_and_world` (the initialised torch.distributed
        process group, else the launcher's ``RANK`` and ``WORLD_SIZE``).

    Returns
    -------
    local_emb : np.memmap of shape (n_local, d)
        Rows ``[start, stop)`` of Z (read lazily).
    local_idx : ndarray of int64, shape (n_local,)
        Their absolute row indices into Z.
    """
    if rank is None or world_size is None:
        rank, world_size = rank_and_world()
    full = np.load(path, mmap_mode="r")
    rows = shard_slice(full.shape[0], rank, world_size)
    return full[rows], np.arange(rows.start, rows.stop, dtype=np.int64)


def _checksum(idx: np.ndarray) -> float:
    # Order-sensitive fingerprint that fits a float64 exactly enough to compare across ranks.
    if idx.size == 0:
        return 0.0
    w = (np.arange(idx.size, dtype=np.float64) % 1000.0) + 1.0
    return float(np.sum((idx.astype(np.float64) % 1_000_003.0) * w) % 2**52)


# ---- argument checking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Selection:
    """The checked arguments, agreed by every rank; the ``local_*`` fields are this rank's own.

    Attributes
    ----------
    emb : ndarray or np.memmap, shape (n_local, d)
        This rank's rows of Z.
    lidx : ndarray of int64, shape (n_local,)
        Absolute row indices into Z of ``emb``'s rows.
    n_total : int
        1 + the largest absolute row index held by any rank.
    pool : ndarray of int64, shape (p,)
        Absolute row indices into Z of the pool, sorted ascending.
    cand_global : ndarray of int64, shape (m,), or None
        Absolute row indices into Z of the candidates, sorted ascending (None: every row not in the pool).
    k : int
    n_cand : int
        Number of candidates over all ranks.
    local_pos : ndarray of int64
        Positions in ``emb`` of this rank's candidates, in ascending absolute index.
    local_abs : ndarray of int64
        Absolute row indices into Z of the same candidates.
    first_pick_holders : int
        Number of ranks holding ``first_pick`` as a candidate (0 when it is None).
    """

    emb: Any
    lidx: np.ndarray
    n_total: int
    pool: np.ndarray
    cand_global: np.ndarray | None
    k: int
    n_cand: int
    local_pos: np.ndarray
    local_abs: np.ndarray
    first_pick_holders: int


def _require_process_group() -> Any:
    """torch, when a ``torch.distributed`` process group is initialised."""
    torch = require("torch", feature="kcenter_select_distributed", extra="gpu")
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        raise ValidationError(
            "kcenter_select_distributed needs an initialised torch.distributed process group; got none. "
            "Launch with `torchrun --nproc_per_node N script.py` and call "
            "torch.distributed.init_process_group('nccl' or 'gloo') first."
        )
    return torch


def _check_shard(comm: TorchCommunicator, local_emb: Any, local_idx: Any) -> tuple[Any, np.ndarray, int]:
    """This rank's rows and their absolute indices, checked; and N (agreed over the ranks)."""
    emb, lidx = check_shard(local_emb, local_idx)
    n_local, d = emb.shape
    sizes = comm.all_gather_values([float(d), float(n_local), float(lidx.max() + 1 if n_local else 0)])
    if np.any(sizes[:, 0] != d):
        raise ValidationError(
            f"local_emb must have the same d on every rank; got {sizes[:, 0].astype(int).tolist()}."
        )
    return emb, lidx, int(sizes[:, 2].max())


def _check_selection(
    comm: TorchCommunicator,
    local_emb: Any,
    local_idx: Any,
    pool_idx: Any,
    candidate_idx: Any,
    k: Any,
    metric: str,
    first_pick: int | None,
) -> _Selection:
    """Check every argument and that the ranks agree on them and hold every pool and candidate row once."""
    emb, lidx, n_total = _check_shard(comm, local_emb, local_idx)
    pool, cand_global = given_index_sets(n_total, pool_idx, candidate_idx)
    k = check_scalar(k, "k", int, min_val=0)

    order, in_pool, is_cand = _local_membership(lidx, pool, cand_global)
    local_abs = lidx[order][is_cand]
    first_local = -1.0
    if first_pick is not None:
        first_local = 1.0 if np.any(local_abs == int(first_pick)) else 0.0

    agree = comm.all_gather_values(
        [
            float(k),
            float(len(pool)),
            _checksum(pool),
            float(METRICS.index(metric)),
            -1.0 if cand_global is None else float(len(cand_global)),
            0.0 if cand_global is None else _checksum(cand_global),
            -1.0 if first_pick is None else float(first_pick),
            float(in_pool.sum()),
            float(len(local_abs)),
            first_local,
        ]
    )
    n_cand = _check_agreement(agree, len(pool), cand_global)
    check_k(k, n_cand)
    return _Selection(
        emb=emb,
        lidx=lidx,
        n_total=n_total,
        pool=pool,
        cand_global=cand_global,
        k=k,
        n_cand=n_cand,
        local_pos=order[is_cand],
        local_abs=local_abs,
        first_pick_holders=int(agree[:, 9].sum()),
    )


def _local_membership(
    lidx: np.ndarray, pool: np.ndarray, cand_global: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which of this rank's rows are pool members and candidates.

    Returns
    -------
    order : ndarray of int64, shape (n_local,)
        Positions in ``local_emb`` sorted by absolute row index (stable).
    in_pool, is_cand : ndarray of bool, shape (n_local,)
        For ``lidx[order]``: pool member, candidate (``cand_global`` is disjoint from ``pool``, checked).
    """
    order = np.argsort(lidx, kind="stable")
    sorted_rows = lidx[order]
    in_pool = np.isin(sorted_rows, pool, assume_unique=True)
    if cand_global is None:
        return order, in_pool, ~in_pool
    return order, in_pool, np.isin(sorted_rows, cand_global, assume_unique=True)


def _check_agreement(agree: np.ndarray, n_pool: int, cand_global: np.ndarray | None) -> int:
    """Raise unless the ranks' gathered argument summaries agree; return the number of candidates."""
    if np.any(agree[:, :7] != agree[0, :7]):
        raise ValidationError(
            "k, pool_idx, candidate_idx, metric and first_pick must be identical on every rank; they differ "
            f"(per-rank k={agree[:, 0].astype(int).tolist()}, |pool|={agree[:, 1].astype(int).tolist()})."
        )
    if int(agree[:, 7].sum()) != n_pool:
        raise IndexValidationError(
            f"every pool row must be held by exactly one rank; the ranks hold {int(agree[:, 7].sum())} of the "
            f"{n_pool} pool rows. Check the shards' local_idx."
        )
    n_cand = int(agree[:, 8].sum())
    if cand_global is not None and n_cand != len(cand_global):
        raise IndexValidationError(
            f"every candidate row must be held by exactly one rank; the ranks hold {n_cand} of {len(cand_global)}."
        )
    return n_cand


def _agree_first_pick(comm: TorchCommunicator, sel: _Selection, first_pick: int | None, random_state: RandomState) -> int:
    """The first center (absolute row index into Z) when the pool is empty.

    ``first_pick`` when given, else drawn on rank 0 as the single-process kernel draws it and broadcast.
    """
    if first_pick is not None:
        if sel.first_pick_holders != 1:
            raise IndexValidationError(f"first_pick={first_pick} is not a candidate held by any rank.")
        return int(first_pick)
    cand_global = sel.cand_global
    if cand_global is None:
        if sel.n_cand == sel.n_total:  # shards cover Z: the candidates are all rows 0..N-1
            cand_global = np.arange(sel.n_total, dtype=np.int64)
        else:
            cand_global = np.sort(np.concatenate(comm.all_gather_object(sel.local_abs)))
    choice = np.zeros(1, dtype=np.float64)
    if comm.rank == 0:
        choice[0] = float(draw_first_pick(check_random_state(random_state), cand_global))
    return int(comm.broadcast_array(choice, 0)[0])


def _agree_shift(comm: TorchCommunicator, sel: _Selection, metric: str, first: int | None) -> np.ndarray | None:
    """The shift row's float32 vector when the rule of :mod:`._shift` engages, else None (same on every rank).

    The rule's sample is defined by absolute row index, so the ranks' partial moments of their own
    sampled pool and candidate rows sum to those a single-process run computes (up to the order of
    the float64 additions).
    """
    if metric != "euclidean":
        return None
    d = sel.emb.shape[1]
    n_used = sel.n_cand + len(sel.pool)
    own_pool = np.flatnonzero(np.isin(sel.lidx, sel.pool, assume_unique=True))  # positions in emb
    positions = np.concatenate([own_pool, sel.local_pos])
    absolute = sel.lidx[positions]
    m = _shift.moments(sel.emb, np.sort(positions[_shift.in_sample(absolute, n_used)]))
    if not _shift.engages(comm.all_reduce_sum(m)):
        return None
    row = _shift.shift_row(sel.pool, first)
    buf = np.zeros(d, dtype=np.float32)
    hit = np.flatnonzero(sel.lidx == row)
    if len(hit):
        buf[:] = np.asarray(sel.emb[int(hit[0])], dtype=np.float32)
    return comm.all_reduce_sum(buf)  # the row lives on exactly one rank: the sum is that row, exactly


# ---- the sharded state ------------------------------------------------------------------------------


class _ShardState:
    """This rank's candidates and their running min squared distance to the centers so far.

    Slot ``s`` is this rank's ``s``-th candidate (ascending position in ``emb``); ``mind[s]`` is
    its squared distance to the nearest center, -1 once it was picked.
    """

    def __init__(
        self,
        torch: Any,
        comm: TorchCommunicator,
        sel: _Selection,
        dev: Any,
        *,
        metric: str,
        block_rows: int,
        max_device_bytes: int | None,
        shift: np.ndarray | None = None,
    ) -> None:
        self.comm, self.torch, self.emb, self.dev, self.metric = comm, torch, sel.emb, dev, metric
        # Only ascending-sorted local candidates can be streamed as row slices; otherwise gather them once.
        local_pos = sel.local_pos
        self.plan_rows = np.sort(local_pos) if np.any(np.diff(local_pos) < 0) else local_pos
        self.cands = _TorchCandidates(
            torch,
            self.emb,
            self.plan_rows,
            dev,
            metric=metric,
            block_rows=block_rows,
            max_device_bytes=max_device_bytes,
            shift=shift,
        )
        abs_rows = sel.lidx[self.plan_rows]
        self.abs_of_slot = torch.from_numpy(abs_rows.copy()).to(dev)  # absolute index of each slot
        self.sorted_slots = bool(np.all(np.diff(abs_rows) > 0))
        self.mind = torch.full((len(self.plan_rows),), float("inf"), dtype=torch.float32, device=dev)

    def lower_to_pool(self, pool: np.ndarray, lidx: np.ndarray, *, chunk_rows: int = 1024) -> None:
        """Lower ``mind`` to the squared distance to the nearest pool member.

        Pool vectors (absolute row indices ``pool`` into Z; ``lidx`` as in :class:`_Selection`) are
        assembled chunk by chunk from the ranks that hold them.
        """
        torch, comm = self.torch, self.comm
        d = self.emb.shape[1]
        sorter = np.argsort(lidx, kind="stable")
        for start in range(0, len(pool), chunk_rows):
            rows = pool[start : start + chunk_rows]
            buf = np.zeros((len(rows), d), dtype=np.float32)
            mine = np.isin(rows, lidx)
            if mine.any():
                where = sorter[np.searchsorted(lidx, rows[mine], sorter=sorter)]  # positions in local_emb
                buf[mine] = np.asarray(self.emb[where], dtype=np.float32)
            pv_np = comm.all_reduce_sum(buf)  # each pool row lives on exactly one rank: the sum is that row, exactly
            if self.metric == "cosine":
                pv_np = normalize_rows(pv_np)
            self.cands.lower_to_rows(self.mind, torch.from_numpy(np.ascontiguousarray(pv_np)).to(self.dev))

    def local_best(self) -> tuple[float, int]:
        """This rank's farthest candidate: (squared distance, slot); (-inf, -1) if none is left.

        Ties go to the lowest absolute index.
        """
        torch, mind = self.torch, self.mind
        if mind.numel() == 0:
            return float("-inf"), -1
        slot = int(torch.argmax(mind))
        best = float(mind[slot])
        if best < 0:
            return float("-inf"), -1
        if not self.sorted_slots:
            ties = torch.nonzero(mind == mind[slot]).flatten()
            if ties.numel() > 1:
                slot = int(ties[torch.argmin(self.abs_of_slot[ties])])
        return best, slot

    def slot_of(self, pick: int) -> int:
        """The slot holding absolute row ``pick``, or -1 when another rank holds it."""
        hit = self.torch.nonzero(self.abs_of_slot == pick)
        return int(hit[0, 0]) if hit.numel() else -1

    def retire(self, slot: int) -> None:
        """Mark a picked slot so it is never the farthest again."""
        self.mind[slot] = -1.0

    def center_row(self, slot: int) -> np.ndarray:
        """The stored float32 vector, shape (d,), of the candidate in ``slot``."""
        return np.asarray(self.emb[int(self.plan_rows[slot])], dtype=np.float32).copy()

    def lower_to_center(self, center: np.ndarray) -> None:
        """Lower ``mind`` by the distances to a new center, given as a float32 vector of shape (d,)."""
        if self.metric == "cosine":
            center = normalize_rows(center[None, :])[0]
        center_t = self.torch.from_numpy(np.ascontiguousarray(center)).to(self.dev)
        self.cands.lower_to_center(self.mind, center_t)


# ---- the per-pick agreement -------------------------------------------------------------------------


def _agree_pick(comm: TorchCommunicator, shard: _ShardState) -> tuple[int, float, int, int]:
    """The global farthest candidate: (absolute index, squared distance, owner rank, owner's slot or -1).

    Ties go to the lowest absolute row index, as in the single-process kernel.
    """
    best, slot = shard.local_best()
    gathered = comm.all_gather_values([best, float(shard.abs_of_slot[slot]) if slot >= 0 else float("inf")])
    top = gathered[:, 0].max()
    winners = np.flatnonzero(gathered[:, 0] == top)
    owner = int(winners[np.argmin(gathered[winners, 1])])
    return int(gathered[owner, 1]), float(top), owner, (slot if owner == comm.rank else -1)


def _locate_pick(comm: TorchCommunicator, shard: _ShardState, pick: int) -> tuple[int, int]:
    """The rank holding the given absolute row ``pick``, and its slot there (-1 on other ranks)."""
    owner_slot = shard.slot_of(pick)
    owner_flags = comm.all_gather_values([1.0 if owner_slot >= 0 else 0.0])
    return int(np.flatnonzero(owner_flags[:, 0])[0]), owner_slot


def _share_center(comm: TorchCommunicator, shard: _ShardState, owner: int, owner_slot: int) -> np.ndarray:
    """The new center's float32 vector, shape (d,), sent by its owner to every rank."""
    mine = owner == comm.rank
    center = shard.center_row(owner_slot) if mine else np.empty(shard.emb.shape[1], dtype=np.float32)
    return comm.broadcast_array(center, owner)


def _farthest_first(
    comm: TorchCommunicator, shard: _ShardState, k: int, first_pick: int | None, *, progress: bool | None
) -> tuple[np.ndarray, np.ndarray]:
    """k picks (absolute indices into Z) and their radii; ``first_pick`` (pool empty) is the first center."""
    picks = np.empty(k, dtype=np.int64)
    radii = np.empty(k, dtype=np.float64)
    show = progress if comm.rank == 0 else False
    for j in progress_bar(range(k), disable=None if show is None else not show, desc="k-center picks"):
        if j == 0 and first_pick is not None:
            pick, radius = int(first_pick), np.inf
            owner, owner_slot = _locate_pick(comm, shard, pick)
        else:
            pick, top, owner, owner_slot = _agree_pick(comm, shard)
            radius = radius_from_sq(top, shard.metric)
        picks[j], radii[j] = pick, radius
        if owner == comm.rank:
            shard.retire(owner_slot)
        if j == k - 1:
            break
        shard.lower_to_center(_share_center(comm, shard, owner, owner_slot))
    return picks, radii


# ---- public entry point -----------------------------------------------------------------------------


@overload
def kcenter_select_distributed(
    local_emb: Any, local_idx: Any, pool_idx: Any, k: int, *, return_radii: Literal[False] = ..., **kw: Any
) -> np.ndarray: ...


@overload
def kcenter_select_distributed(
    local_emb: Any, local_idx: Any, pool_idx: Any, k: int, *, return_radii: Literal[True], **kw: Any
) -> tuple[np.ndarray, np.ndarray]: ...


def kcenter_select_distributed(
    local_emb: Any,
    local_idx: Any,
    pool_idx: Any,
    k: int,
    *,
    candidate_idx: Any = None,
    metric: str = "euclidean",
    random_state: RandomState = None,
    first_pick: int | None = None,
    device: Any = None,
    group: Any = None,
    return_radii: bool = False,
    block_rows: int | None = None,
    max_device_bytes: int | None = None,
    n_threads: int | None = None,
    progress: bool | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Exact greedy K-Center (farthest-first) over Z sharded across a torch.distributed process group.

    Call it on every rank of the group with the same ``pool_idx``, ``k``, ``candidate_idx``,
    ``metric`` and ``random_state``; every rank gets the same picks, equal to those of
    ``kcenter_select(Z, pool_idx, k, ...)`` on the whole of Z (the same first pick is drawn when
    the pool is empty).

    Parameters
    ----------
    local_emb : array-like of shape (n_local, d)
        This rank's rows of Z: ndarray, ``np.memmap`` (streamed, never loaded whole) or anything
        numpy can convert. d must be equal on every rank.
    local_idx : array-like of int, shape (n_local,)
        Absolute row indices into Z of ``local_emb``'s rows, distinct, and disjoint across ranks
        (each record of Z lives on exactly one rank). Sorted ascending is fastest.
    pool_idx : array-like of int, shape (p,)
        Absolute row indices into Z of the training pool; every pool row must be held by some rank.
    k : int
        Number of records to select.
    candidate_idx : array-like of int, shape (m,), optional
        Absolute row indices into Z that may be picked (default: every row held by a rank, minus the pool).
    metric : {"euclidean", "cosine"}
        Distance; cosine works on L2-normalised rows and reports 1 - cosine similarity.
    random_state : int, Generator or None
        Draws the first center when ``pool_idx`` is empty (drawn on rank 0 and broadcast).
    first_pick : int, optional
        Absolute row index of the first center when ``pool_idx`` is empty; overrides ``random_state``.
    device : str or torch.device, optional
        Where this rank computes: None uses ``cuda`` (the current device) for an NCCL group, else CPU.
    group : ProcessGroup, optional
        Default: the world group.
    return_radii : bool
        Also return each pick's distance to its nearest earlier center (+inf for a drawn first pick).
    block_rows, max_device_bytes, n_threads : int, optional
        As for ``backend="torch"``: rows per block, device memory for the resident copy of the
        shard, CPU threads per rank (default 1).
    progress : bool, optional
        Progress bar over the picks on rank 0.

    Returns
    -------
    picks : ndarray of int64, shape (k,)
        Absolute row indices into Z, in pick order (identical on every rank).
    radii : ndarray of float64, shape (k,)
        Only with ``return_radii=True``.

    Raises
    ------
    ValidationError
        No initialised process group, arguments that differ between ranks, bad metric or shapes.
    IndexValidationError
        Out-of-range or duplicate indices, pool or candidate rows held by no rank, overlap of pool and candidates.
    PoolExhaustedError
        ``k`` larger than the number of candidates.
    """
    torch = _require_process_group()
    check_metric(metric)
    options = check_options(  # the options of backend="torch", checked as there
        "torch",
        {"block_rows": block_rows, "max_device_bytes": max_device_bytes, "n_threads": n_threads, "progress": progress},
    )
    comm = TorchCommunicator(group)
    sel = _check_selection(comm, local_emb, local_idx, pool_idx, candidate_idx, k, metric, first_pick)
    if sel.k == 0:
        return empty_result(return_radii)

    dev = resolve_device(
        torch, device if device is not None else (comm.device if comm.device.type == "cuda" else "cpu")
    )
    first = _agree_first_pick(comm, sel, first_pick, random_state) if len(sel.pool) == 0 else None
    shift = _agree_shift(comm, sel, metric, first)
    with torch.no_grad(), exact_float32(torch), cpu_threads(torch, dev, options["n_threads"]):
        shard = _ShardState(
            torch,
            comm,
            sel,
            dev,
            metric=metric,
            block_rows=options["block_rows"] or default_block_rows(sel.emb.shape[1]),
            max_device_bytes=options["max_device_bytes"],
            shift=shift,
        )
        shard.lower_to_pool(sel.pool, sel.lidx)
        picks, radii = _farthest_first(comm, shard, sel.k, first, progress=options["progress"])
    return (picks, radii) if return_radii else picks
