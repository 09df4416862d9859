"""release_freed_memory: the heap pages a stage freed go back to the system (glibc Linux)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from diverseevol.hf._memory import _malloc_trim, release_freed_memory


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not _malloc_trim(), reason="needs glibc's malloc_trim (Linux)")
def test_freed_heap_blocks_are_returned():
    # Freeing one large mmapped block raises glibc's mmap threshold, so the 2 MB blocks below come from the
    # heap; the last one, still alive, pins the heap's top, so freeing the others alone returns nothing.
    big = np.ones(24 << 20, dtype=np.uint8)
    del big
    blocks = [np.ones(2 << 20, dtype=np.uint8) for _ in range(120)]  # 240 MB, touched
    keep = blocks[-1]
    del blocks
    before = _rss_mb()
    assert release_freed_memory() is True
    after = _rss_mb()
    assert before - after > 150, (before, after)
    assert keep.sum() == 2 << 20
