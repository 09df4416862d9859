"""K-Center backend on torch: exact float32 farthest-first on CUDA (or any torch device, CPU included).

On a GPU the candidates' embeddings are copied to device memory once (L2-normalised for cosine),
block by block, up to a memory budget; blocks beyond it are streamed from host memory (or from the
memory map) on every pick. On CPU nothing is copied: blocks are zero-copy views of ``emb``. Every
pick is one matrix-vector product per block, a clamped squared distance, an element-wise minimum
into one running min-distance vector held on the device, and an argmax (first maximum, so ties go
to the lowest row index). On data with a large common mean the distances are taken relative to a
shift row, as in the numpy kernel (:mod:`._shift`).

torch is imported inside the functions; this module loads with numpy alone.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._optional import require
from .._progress import progress_bar
from ..errors import BackendUnavailableError, ValidationError
from ._rowblocks import (
    RowBlock,
    default_block_rows,
    embedding_rows,
    plan_row_blocks,
    radius_from_sq,
    read_block,
)
from ._shift import choose_shift

__all__ = ["cpu_threads", "exact_float32", "farthest_first", "resolve_device"]

logger = logging.getLogger(__name__)

#: Fraction of the free device memory the resident candidate copy may use by default.
_DEVICE_MEMORY_FRACTION = 0.8
#: Largest resident chunk of candidates (one matrix-vector product per chunk per pick).
_DEVICE_CHUNK_BYTES = 1 << 30
#: Bound on one block of the pool-distance products.
_PRODUCT_BYTES = 64 << 20


def resolve_device(torch: Any, device: Any) -> Any:
    """Turn ``device`` (None, "auto", "cpu", "cuda", "cuda:1", a torch.device) into a usable torch.device.

    Raises
    ------
    BackendUnavailableError
        If a CUDA device is requested and torch sees no GPU (or not that many).
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValidationError(
            f"device for backend='torch' must be None, 'cpu', 'cuda' or 'cuda:<n>'; got {device!r} ({exc})."
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"backend='torch' with device={device!r} needs a CUDA GPU, but torch {torch.__version__} sees none "
                f"(torch.cuda.is_available() is False). Use device='cpu', device=None to choose automatically, "
                f"or install a CUDA build of torch on a GPU machine."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BackendUnavailableError(
                f"device={device!r} does not exist: torch sees {torch.cuda.device_count()} GPU(s)."
            )
    elif dev.type != "cpu":
        ok = getattr(getattr(torch.backends, dev.type, None), "is_available", lambda: False)()
        if not ok:
            raise BackendUnavailableError(f"device={device!r} is not available to torch {torch.__version__}.")
    return dev


@contextlib.contextmanager
def exact_float32(torch: Any) -> Iterator[None]:
    """Run torch float32 matrix products at full precision (no TF32/bf16 shortcuts), restoring the setting after.

    A user's ``torch.set_float32_matmul_precision("high")`` would otherwise let CUDA use TF32
    (10-bit mantissa) products and change the picks.
    """
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


@contextlib.contextmanager
def cpu_threads(torch: Any, dev: Any, n_threads: int | None) -> Iterator[None]:
    """On CPU, run with ``n_threads`` intra-op threads (default 1), restoring torch's setting after.

    Multi-threaded MKL matrix-vector products stall whenever another process holds a core: on the
    2-core development machine under load, 2 threads were 40x slower than 1 (11 s vs 0.27 s for a
    whole selection), while on an idle machine 2 threads were 2.5x faster. One thread is the safe
    default; pass ``n_threads`` to use more.
    """
    if dev.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads or 1))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class _Block:
    """One candidate block prepared for a device."""

    plan: RowBlock
    x: Any | None  # resident float32 (n, d) tensor of the block's candidates, or None when streamed
    sel: Any | None  # LongTensor of candidate offsets in the streamed slice, or None
    sq_norms: Any  # (n,) float32: squared norms of the (normalised, for cosine) candidates
    inv_norms: Any | None  # (n,) float32 1/||x|| for streamed cosine blocks, else None


class _TorchCandidates:
    """The candidates of Z on one device: resident blocks plus blocks streamed on each use."""

    def __init__(
        self,
        torch: Any,
        emb: np.ndarray,
        candidate_idx: np.ndarray,
        dev: Any,
        *,
        metric: str,
        block_rows: int,
        max_device_bytes: int | None,
        shift: np.ndarray | None = None,
    ) -> None:
        self.torch = torch
        self.emb = emb
        self.dev = dev
        self.metric = metric
        # Shifted arithmetic (euclidean, see diverseevol.kernels._shift): the float32 shift row s on the device.
        self.shift = None if shift is None or metric == "cosine" else torch.from_numpy(
            np.ascontiguousarray(shift, dtype=np.float32)).to(dev)
        self.blocks: list[_Block] = []
        budget = self._budget(max_device_bytes)
        d = emb.shape[1]
        m = len(candidate_idx)
        pos = 0
        if dev.type != "cpu" or budget > 0:
            # Large resident chunks keep the per-pick kernel launches few (one product per chunk).
            chunk_rows = max(block_rows, _DEVICE_CHUNK_BYTES // (4 * d))
            while pos < m and budget >= 4 * d:
                take = int(min(m - pos, chunk_rows, budget // (4 * d)))
                self.blocks.append(self._resident(candidate_idx, pos, take, block_rows))
                budget -= 4 * take * d
                pos += take
        self.n_resident = pos
        for p in plan_row_blocks(candidate_idx[pos:], block_rows):
            shifted = RowBlock(p.pos_start + pos, p.pos_end + pos, p.row_start, p.row_end, p.local, p.rows)
            self.blocks.append(self._streamed(shifted))
        if self.n_resident:
            logger.info(
                "torch backend on %s: %d of %d candidates resident (%.1f MiB), the rest streamed per pick",
                dev,
                self.n_resident,
                m,
                4 * self.n_resident * d / 2**20,
            )

    def _resident(self, candidate_idx: np.ndarray, pos: int, take: int, block_rows: int) -> _Block:
        """Copy candidates ``[pos, pos + take)`` to the device (unit rows for cosine), block by block."""
        torch = self.torch
        rows = candidate_idx[pos : pos + take]
        d = self.emb.shape[1]
        x = torch.empty((take, d), dtype=torch.float32, device=self.dev)
        sq = torch.empty(take, dtype=torch.float32, device=self.dev)
        for s in range(0, take, block_rows):
            part = torch.from_numpy(
                embedding_rows(self.emb, rows[s : s + block_rows], normalize=self.metric == "cosine")
            )
            xs = x[s : s + block_rows]
            xs.copy_(part)
            sq[s : s + block_rows] = self._sq_norms(xs)
        plan = RowBlock(pos, pos + take, int(rows[0]), int(rows[-1]) + 1, None, rows)
        return _Block(plan, x, None, sq, None)

    def _budget(self, max_device_bytes: int | None) -> float:
        if max_device_bytes is not None:
            return float(max_device_bytes)
        if self.dev.type == "cuda":
            free, _ = self.torch.cuda.mem_get_info(self.dev)
            return _DEVICE_MEMORY_FRACTION * free
        return 0.0

    def _host_tensor(self, plan: RowBlock) -> tuple[Any, Any | None]:
        x, local = read_block(self.emb, plan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # read-only memmaps: we never write through the view
            t = self.torch.from_numpy(x)
        if self.dev.type != "cpu":
            t = t.to(self.dev, non_blocking=True)
        sel = None if local is None else self.torch.from_numpy(local).to(self.dev)
        return t, sel

    def _streamed(self, plan: RowBlock) -> _Block:
        torch = self.torch
        x, sel = self._host_tensor(plan)
        xs = x if sel is None else x.index_select(0, sel)
        nrm2 = self._sq_norms(xs)
        inv = None
        if self.metric == "cosine":
            nrm = nrm2.sqrt()
            inv = 1.0 / torch.where(nrm == 0, torch.ones_like(nrm), nrm)
            xhat = xs * inv[:, None]
            nrm2 = (xhat * xhat).sum(dim=1)
        return _Block(plan, None, sel, nrm2, inv)

    def _sq_norms(self, xs: Any) -> Any:
        """Squared norms of a block's rows: ``|x|^2``, or ``|x - s|^2`` when shifted (one block-sized temporary)."""
        if self.shift is not None:
            xs = xs - self.shift
        return (xs * xs).sum(dim=1)

    def as_centers(self, pv: Any) -> tuple[Any, Any]:
        """Rows ``pv`` (q, d) as centers: the vectors the candidates' products are taken with, and each one's constant.

        Plain: ``pv`` and ``|p|^2``. Shifted: ``w = p - s`` and ``2 p.w - |w|^2``, so that the squared
        distance is ``sq_norms + constant - 2 x.w`` either way.
        """
        if self.shift is None:
            return pv, (pv * pv).sum(dim=1)
        w = pv - self.shift
        return w, 2.0 * (pv * w).sum(dim=1) - (w * w).sum(dim=1)

    def block_dots(self, b: _Block, vec: Any) -> Any:
        """``candidates @ vec`` for one block: (n,) dot products with a (d,) vector."""
        if b.x is not None:
            return b.x @ vec
        x, sel = self._host_tensor(b.plan)
        out = x @ vec
        if sel is not None:
            out = out.index_select(0, sel)
        if b.inv_norms is not None:
            out = out * b.inv_norms
        return out

    def block_products(self, b: _Block, mat: Any) -> Iterator[tuple[int, int, Any]]:
        """``candidates @ mat`` for a (d, q) matrix in row pieces: yields ``(start, stop, (stop - start, q))``.

        ``start, stop`` are offsets inside the block; pieces keep the product under about 64 MiB.
        """
        if b.x is None:
            out = self.block_dots(b, mat) if b.inv_norms is None else self._streamed_products(b, mat)
            yield 0, b.plan.n, out
            return
        step = max(1, _PRODUCT_BYTES // (4 * max(1, mat.shape[1])))
        for s in range(0, b.plan.n, step):
            yield s, min(b.plan.n, s + step), b.x[s : s + step] @ mat

    def _streamed_products(self, b: _Block, mat: Any) -> Any:
        x, sel = self._host_tensor(b.plan)
        out = x @ mat
        if sel is not None:
            out = out.index_select(0, sel)
        return out * b.inv_norms[:, None]

    def lower_to_rows(self, mind: Any, pv: Any) -> None:
        """Lower ``mind`` (m,) to each candidate's squared distance to its nearest row of ``pv`` (q, d).

        ``pv`` is a float32 tensor on the device (unit rows for cosine), e.g. a chunk of the pool.
        """
        torch = self.torch
        pv, p_sq = self.as_centers(pv)
        pt = pv.T.contiguous()
        for b in self.blocks:
            for s, e, g in self.block_products(b, pt):
                dist = (b.sq_norms[s:e, None] + p_sq[None, :]).sub_(g, alpha=2.0).clamp_min_(0.0)
                seg = mind[b.plan.pos_start + s : b.plan.pos_start + e]
                torch.minimum(seg, dist.min(dim=1).values, out=seg)

    def lower_to_center(self, mind: Any, c: Any) -> None:
        """Lower ``mind`` (m,) to each candidate's squared distance to the new center ``c`` (d,) on the device."""
        torch = self.torch
        w, c_sq = self.as_centers(c[None, :])
        c, c_sq = w[0], c_sq[0]
        for b in self.blocks:
            dots = self.block_dots(b, c)
            dist = (b.sq_norms + c_sq).sub_(dots, alpha=2.0).clamp_min_(0.0)
            seg = mind[b.plan.pos_start : b.plan.pos_end]
            torch.minimum(seg, dist, out=seg)


def farthest_first(
    emb: np.ndarray,
    pool_idx: np.ndarray,
    candidate_idx: np.ndarray,
    k: int,
    *,
    metric: str,
    first_pick: int | None,
    device: Any = None,
    block_rows: int | None = None,
    max_device_bytes: int | None = None,
    pool_chunk_rows: int = 1024,
    n_threads: int | None = None,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact greedy K-Center in float32 torch; see :mod:`diverseevol.kernels.kcenter` for the contract.

    The arguments before ``device`` follow the backend contract (checked by the caller).

    Parameters
    ----------
    device : str or torch.device, optional
        None: CUDA when available, else CPU. "cuda" without a GPU raises
        :class:`~diverseevol.errors.BackendUnavailableError`.
    block_rows : int, optional
        Rows per block (default: about 16 MiB of float32).
    max_device_bytes : int, optional
        Memory for the resident copy of the candidates on the device (float32, unit rows for cosine);
        candidates beyond it are streamed from ``emb`` on every pick. Default: 80% of the free GPU
        memory; 0 on CPU, where blocks are zero-copy views of ``emb``.
    pool_chunk_rows : int
        Pool rows per matrix product in the initial distance pass.
    n_threads : int, optional
        CPU only: torch intra-op threads during the call (default 1, see :func:`cpu_threads`);
        the previous setting is restored afterwards.
    progress : bool, optional
        Show a progress bar over the picks.

    Returns
    -------
    picks : ndarray of int64, shape (k,)
        Absolute row indices into Z in pick order.
    radii : ndarray of float64, shape (k,)
        Each pick's distance to its nearest earlier center (pool included) when picked.
    """
    torch = require("torch", feature="backend='torch'", extra="gpu")
    dev = resolve_device(torch, device)
    d = emb.shape[1]
    s_row = choose_shift(emb, pool_idx, candidate_idx, metric, first_pick)
    with torch.no_grad(), exact_float32(torch), cpu_threads(torch, dev, n_threads):
        cands = _TorchCandidates(
            torch,
            emb,
            candidate_idx,
            dev,
            metric=metric,
            block_rows=int(block_rows or default_block_rows(d)),
            max_device_bytes=max_device_bytes,
            shift=None if s_row is None else np.asarray(emb[s_row], dtype=np.float32),
        )
        mind = torch.full((len(candidate_idx),), float("inf"), dtype=torch.float32, device=dev)
        normalize = metric == "cosine"
        for start in range(0, len(pool_idx), pool_chunk_rows):
            pv = torch.from_numpy(
                embedding_rows(emb, pool_idx[start : start + pool_chunk_rows], normalize=normalize)
            )
            cands.lower_to_rows(mind, pv.to(dev))

        picks = np.empty(k, dtype=np.int64)
        radii = np.empty(k, dtype=np.float64)
        for j in progress_bar(
            range(k), disable=None if progress is None else not progress, desc="k-center picks"
        ):
            if j == 0 and not len(pool_idx):
                pos = int(np.searchsorted(candidate_idx, first_pick))
                radii[j] = np.inf
            else:
                pos = int(torch.argmax(mind))
                radii[j] = radius_from_sq(float(mind[pos]), metric)
            picks[j] = candidate_idx[pos]
            mind[pos] = -1.0
            if j == k - 1:
                break
            c = torch.from_numpy(embedding_rows(emb, picks[j : j + 1], normalize=normalize)[0]).to(dev)
            cands.lower_to_center(mind, c)
    return picks, radii
