"""Registry of K-Center compute backends and the ``"auto"`` choice.

Each backend module exposes ``farthest_first(emb, pool_idx, candidate_idx, k, *, metric, first_pick, **options)``
returning ``(picks, radii)``; see :mod:`diverseevol.kernels.kcenter` for the contract. What each backend
is, needs and accepts (its options) is declared once in :mod:`diverseevol.kernels.contract`, with
:func:`available_backends` and :func:`installed_backends` (re-exported here).

Backends
--------
``"numpy"``
    The exact reference: precomputed squared norms and one BLAS matrix-vector product per block per
    pick. The fastest CPU choice (a pick costs about one read of the candidates' embeddings).
``"faiss"``
    Exact FAISS k=1 search (CPU, or GPU with faiss-gpu) for the initial distance of every candidate
    to the pool, then numpy picks. Options: ``device`` (None, "cpu", "gpu").
``"torch"``
    Exact float32 on a torch device: CUDA when available (candidates copied to the GPU once), else
    CPU (zero-copy views). Options: ``device``, ``max_device_bytes``.

The ``"auto"`` rule is cheap: for small problems, or on a Linux machine without GPU device nodes
(``/dev/nvidia*``, ``/dev/kfd``), it imports neither torch nor faiss. When the problem is large
(``n_candidates * d >= AUTO_GPU_MIN_WORK``) and a GPU is usable, it picks torch on CUDA (or faiss
on GPU when torch cannot use the GPU). Without a GPU: faiss on CPU when the pool is large
(``n_pool >= AUTO_FAISS_MIN_POOL``, where FAISS computes the initial distances faster) and faiss is
installed, else numpy, the fastest CPU kernel otherwise (see docs/kcenter_scale.md). The choice is
logged at INFO level.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from .._optional import is_available, require
from .contract import BACKENDS, available_backends, check_backend_name, installed_backends

__all__ = [
    "AUTO_FAISS_MIN_POOL",
    "AUTO_GPU_MIN_WORK",
    "available_backends",
    "installed_backends",
    "resolve_backend",
]

logger = logging.getLogger(__name__)

#: Pool size from which "auto" uses faiss on CPU for the initial distances (measured: 0.6-0.9x the
#: numpy time at |pool| = 10,000, 2-3x slower at |pool| = 100, on 52,002 x 1,024).
AUTO_FAISS_MIN_POOL = 5_000

#: ``n_candidates * d`` from which "auto" considers a GPU (about 10,000 x 1,024): below it the
#: transfer and start-up cost more than the numpy kernel's whole run.
AUTO_GPU_MIN_WORK = 10_000_000


def _load(name: str) -> Callable[..., Any]:
    spec = BACKENDS[name]
    if spec.package is not None:
        require(spec.package, feature=f"backend={name!r}", extra=spec.extra)
    return importlib.import_module(spec.module).farthest_first  # type: ignore[no-any-return]


def _gpu_driver_present() -> bool:
    """Cheap check for a GPU driver (Linux device nodes); True elsewhere, where only torch can tell."""
    if not sys.platform.startswith("linux"):
        return True
    return any(
        os.path.exists(p)
        for p in ("/dev/nvidia0", "/dev/nvidiactl", "/proc/driver/nvidia/version", "/dev/kfd")
    )


def _import_if_gpu_possible(package: str) -> Any | None:
    """``package`` imported, or None when it is missing or no GPU driver exists (then it is not imported)."""
    if package not in sys.modules and (not is_available(package) or not _gpu_driver_present()):
        return None
    try:
        return importlib.import_module(package)
    except ImportError:  # pragma: no cover - broken install
        return None


def _torch_cuda_usable() -> bool:
    torch = _import_if_gpu_possible("torch")
    return torch is not None and bool(torch.cuda.is_available())


def _faiss_gpu_usable() -> bool:
    faiss = _import_if_gpu_possible("faiss")
    get = getattr(faiss, "get_num_gpus", None)
    return bool(get is not None and get() > 0)


def choose_auto(
    *, n_candidates: int, n_pool: int, d: int, is_memmap: bool
) -> tuple[str, dict[str, Any], str]:
    """The ``"auto"`` rule: ``(backend name, options, reason)``; see the module docstring."""
    work = int(n_candidates) * int(d)
    if work < AUTO_GPU_MIN_WORK:
        return "numpy", {}, f"small problem ({n_candidates} candidates x d={d} < {AUTO_GPU_MIN_WORK:,})"
    if _torch_cuda_usable():
        return (
            "torch",
            {"device": "cuda"},
            f"{n_candidates} candidates x d={d} and a CUDA GPU visible to torch",
        )
    if _faiss_gpu_usable():
        return (
            "faiss",
            {"device": "gpu"},
            f"{n_candidates} candidates x d={d}, a GPU visible to faiss-gpu, torch CUDA unavailable",
        )
    if n_pool >= AUTO_FAISS_MIN_POOL and is_available("faiss"):
        return (
            "faiss",
            {"device": "cpu"},
            f"no GPU usable; a large pool ({n_pool} rows): FAISS search is faster for the initial distances",
        )
    where = "memory-mapped " if is_memmap else ""
    return "numpy", {}, f"no GPU usable; numpy GEMV streaming of {where}embeddings is the fastest CPU kernel"


def resolve_backend(
    requested: str,
    *,
    n_candidates: int = 0,
    n_pool: int = 0,
    d: int = 0,
    is_memmap: bool = False,
) -> tuple[str, Callable[..., Any]]:
    """Return ``(name, farthest_first)`` for ``requested``.

    Parameters
    ----------
    requested : str
        ``"auto"`` or one of :func:`available_backends`.
    n_candidates, n_pool, d : int
        Problem sizes, used by ``"auto"``.
    is_memmap : bool
        Whether the embeddings are memory-mapped (used by ``"auto"``).

    Returns
    -------
    name : str
        The backend that will run.
    farthest_first : callable
        Its kernel; for ``"auto"`` with options bound (e.g. ``device="cuda"``).

    Raises
    ------
    ValidationError
        Unknown backend name.
    OptionalDependencyError
        The backend's package (faiss, torch) is not installed; the message names the extra.
    """
    check_backend_name(requested)
    if requested != "auto":
        return requested, _load(requested)
    name, options, reason = choose_auto(n_candidates=n_candidates, n_pool=n_pool, d=d, is_memmap=is_memmap)
    fn = _load(name)
    if options:
        fn = functools.partial(fn, **options)
    logger.info("kcenter backend='auto' chose %r%s: %s", name, f" {options}" if options else "", reason)
    return name, fn
