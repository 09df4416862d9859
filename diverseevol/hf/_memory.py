"""Give the memory a stage freed back to the system, so the next stage does not start on it.

PyTorch's CPU tensors come from the C library's ``malloc``. glibc serves blocks below its mmap
threshold from its heaps, and that threshold rises (up to 32 MB on 64-bit) each time a larger
block is freed, so after the first training step most activation buffers live in the heaps;
freed, they stay mapped in the process. Measured with SmolLM2-135M (LoRA, batch 8 x 256 tokens):
after one training step 4.6 GB resident, of which ``malloc_trim(0)`` returned 3.6 GB.

Within training the same heaps cost about 0.9 GB of fragmentation from the second step on (a
step's peak 4.7 GB against 3.75 GB for the first); setting ``MALLOC_MMAP_THRESHOLD_=131072`` in the
environment before Python starts keeps every step at the first one's peak, for about 40% more
training CPU time (page faults on fresh mappings). The library does not set it: the choice is
process-wide.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import sys

logger = logging.getLogger(__name__)

__all__ = ["release_freed_memory"]

_TRIM: object = None  # glibc's malloc_trim once looked up; False where there is none


def _malloc_trim() -> object:
    global _TRIM
    if _TRIM is None:
        _TRIM = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                trim = libc.malloc_trim  # glibc only (musl has none)
                trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
                _TRIM = trim
            except (OSError, AttributeError) as exc:
                logger.debug("no malloc_trim here: %s", exc)
    return _TRIM


def release_freed_memory() -> bool:
    """Collect garbage, then return the C heap's free pages to the system (glibc's ``malloc_trim(0)``).

    Returns
    -------
    bool
        Whether the C library released memory (False where there is no ``malloc_trim``:
        other systems or C libraries; garbage is collected either way).
    """
    gc.collect()
    trim = _malloc_trim()
    return bool(trim(0)) if trim else False
