"""kcenter_select on np.memmap and .npy paths: same picks as in memory, bounded reads."""

from __future__ import annotations

import numpy as np
import pytest

from diverseevol import kcenter_select
from diverseevol.errors import NonFiniteEmbeddingError, ValidationError


@pytest.fixture()
def saved(tmp_path):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(12, 24)) * 6
    emb = (centers[rng.integers(0, 12, 5000)] + rng.normal(size=(5000, 24))).astype(np.float32)
    path = tmp_path / "emb.npy"
    np.save(path, emb)
    return emb, path


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("pool", [np.arange(0, 5000, 50), np.array([], dtype=np.int64)])
def test_memmap_and_path_match_in_memory(saved, metric, pool):
    emb, path = saved
    ref, ref_r = kcenter_select(emb, pool, 80, metric=metric, random_state=1, return_radii=True)
    mm = np.load(path, mmap_mode="r")
    for source in (mm, str(path), path):
        got, got_r = kcenter_select(source, pool, 80, metric=metric, random_state=1, return_radii=True)
        np.testing.assert_array_equal(got, ref)
        np.testing.assert_array_equal(got_r, ref_r)


@pytest.mark.parametrize("opts", [{}, {"max_copy_bytes": 0}, {"max_copy_bytes": 1 << 30}, {"prune": True}])
def test_sparse_candidates_from_memmap(saved, opts):
    emb, path = saved
    pool = np.arange(7, 5000, 211)
    cand = np.setdiff1d(np.arange(3, 5000, 4), pool)  # sparse: gathered, copied or streamed
    ref = kcenter_select(emb, pool, 50, candidate_idx=cand, prune=False)
    stats: dict = {}
    got = kcenter_select(np.load(path, mmap_mode="r"), pool, 50, candidate_idx=cand, stats=stats, **opts)
    np.testing.assert_array_equal(got, ref)
    if opts.get("max_copy_bytes") == 0 or not opts:
        assert stats["layout"] == "stream"  # memmaps are never copied unless allowed


def test_memmap_is_not_copied_by_default(saved):
    _, path = saved
    stats: dict = {}
    kcenter_select(path, np.arange(10), 5, stats=stats)
    assert stats["layout"] == "span"


def test_float16_memmap(tmp_path):
    emb = np.random.default_rng(2).normal(size=(800, 16)).astype(np.float16)
    path = tmp_path / "h.npy"
    np.save(path, emb)
    ref = kcenter_select(emb.astype(np.float32), np.arange(5), 20)
    np.testing.assert_array_equal(kcenter_select(path, np.arange(5), 20), ref)


def test_nonfinite_row_in_memmap(tmp_path):
    emb = np.random.default_rng(3).normal(size=(300, 4)).astype(np.float32)
    emb[123, 2] = np.nan
    path = tmp_path / "n.npy"
    np.save(path, emb)
    with pytest.raises(NonFiniteEmbeddingError, match="row 123"):
        kcenter_select(path, [0], 3)
    # not used -> fine
    kcenter_select(path, [0], 3, candidate_idx=np.arange(1, 100))


def test_npy_with_wrong_shape(tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, np.zeros(10, dtype=np.float32))
    with pytest.raises(ValidationError, match="2-D"):
        kcenter_select(path, [0], 1)
