"""Sharded K-Center on torch.distributed: same picks as the single-process kernel.

Two real CPU processes (gloo) are started through the documented launchers (torchrun and the
example's own spawner); argument checks run in-process on a one-rank gloo group.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = torch.distributed
if not (dist.is_available() and dist.is_gloo_available()):  # pragma: no cover
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

from diverseevol.errors import IndexValidationError, PoolExhaustedError, ValidationError
from diverseevol.kernels import _torch
from diverseevol.kernels.distributed import kcenter_select_distributed, load_shard, shard_range

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "kcenter_distributed.py"


def _reference(x, pool, k, metric, seed):
    cand = np.setdiff1d(np.arange(len(x)), pool)
    first = None if len(pool) else int(cand[np.random.default_rng(seed).integers(len(cand))])
    return _torch.farthest_first(x, pool, cand, k, metric=metric, first_pick=first, progress=False)[0]


def _example_data(n, d, seed):
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        import kcenter_distributed as ex
    finally:
        sys.path.pop(0)
    return ex.make_data(n, d, seed)


def test_torchrun_two_gloo_ranks_memmap_shards(tmp_path):
    out, emb = tmp_path / "picks.npy", tmp_path / "z.npy"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(EXAMPLE),
        "--records",
        "3000",
        "--dim",
        "24",
        "--pool",
        "50",
        "--k",
        "60",
        "--emb",
        str(emb),
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    picks = np.load(out)
    x = np.load(emb)
    pool = np.sort(np.random.default_rng(1).choice(3000, size=50, replace=False))
    np.testing.assert_array_equal(picks, _reference(x, pool, 60, "euclidean", 0))
    assert "2 ranks" in proc.stdout


def test_spawned_two_ranks_strided_shards_cosine_empty_pool(tmp_path):
    out = tmp_path / "picks.npy"
    cmd = [
        sys.executable,
        str(EXAMPLE),
        "--records",
        "2000",
        "--dim",
        "16",
        "--pool",
        "0",
        "--k",
        "40",
        "--metric",
        "cosine",
        "--strided",
        "--seed",
        "5",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    x = _example_data(2000, 16, 5)
    np.testing.assert_array_equal(np.load(out), _reference(x, np.empty(0, dtype=np.int64), 40, "cosine", 5))


def test_shard_range_partitions_rows():
    n, w = 10, 3
    ranges = [shard_range(n, r, w) for r in range(w)]
    assert ranges == [(0, 4), (4, 7), (7, 10)]
    with pytest.raises(ValidationError):
        shard_range(n, 3, 3)


def test_load_shard_memory_maps_rows(tmp_path):
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    np.save(tmp_path / "z.npy", x)
    emb, idx = load_shard(str(tmp_path / "z.npy"), rank=1, world_size=3)
    assert isinstance(emb, np.memmap)
    np.testing.assert_array_equal(idx, [4, 5, 6])
    np.testing.assert_array_equal(emb, x[4:7])


def test_requires_an_initialised_group():
    if dist.is_initialized():  # pragma: no cover
        pytest.skip("a process group is already initialised in this process")
    with pytest.raises(ValidationError, match="init_process_group"):
        kcenter_select_distributed(np.zeros((3, 2)), [0, 1, 2], [0], 1)


@pytest.fixture
def one_rank_group(tmp_path):
    if dist.is_initialized():  # pragma: no cover
        pytest.skip("a process group is already initialised in this process")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_single_rank_unsorted_shard_matches_reference(one_rank_group):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    perm = rng.permutation(300)  # rows held in a shuffled order
    pool = np.array([3, 50, 120])
    cand = np.setdiff1d(np.arange(300), pool)[::2]
    picks, radii = kcenter_select_distributed(
        x[perm], perm, pool, 25, candidate_idx=cand, return_radii=True, block_rows=16
    )
    want_p, want_r = _torch.farthest_first(
        x, pool, cand, 25, metric="euclidean", first_pick=None, progress=False
    )
    np.testing.assert_array_equal(picks, want_p)
    np.testing.assert_allclose(radii, want_r, rtol=1e-5)


def test_single_rank_validation(one_rank_group):
    x = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    idx = np.arange(20)
    with pytest.raises(ValidationError, match="one absolute row index per row"):
        kcenter_select_distributed(x, idx[:5], [0], 2)
    with pytest.raises(IndexValidationError, match="pool row"):
        kcenter_select_distributed(x[10:], idx[10:], [5], 2)
    with pytest.raises(PoolExhaustedError):
        kcenter_select_distributed(x, idx, [0, 1], 19)
    with pytest.raises(ValidationError, match="metric"):
        kcenter_select_distributed(x, idx, [0], 2, metric="l1")
    assert kcenter_select_distributed(x, idx, [0], 0).shape == (0,)


def test_load_shard_default_rank_from_launcher_environment(tmp_path, monkeypatch):
    if dist.is_initialized():  # pragma: no cover
        pytest.skip("a process group is already initialised in this process")
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    np.save(tmp_path / "z.npy", x)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    emb, idx = load_shard(str(tmp_path / "z.npy"))  # no process group: RANK / WORLD_SIZE decide
    np.testing.assert_array_equal(idx, [7, 8, 9])
    np.testing.assert_array_equal(emb, x[7:])
