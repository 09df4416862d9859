"""The faiss and torch K-Center backends, the "auto" choice, and the approximate mode.

Oracle: the brute-force greedy K-Center of kcenter_oracle.py (full float64 distance matrix). Where the
numpy reference kernel exists, the backends are also compared with it (faiss bit for bit).
"""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diverseevol.errors import BackendUnavailableError, OptionalDependencyError, ValidationError
from diverseevol.kernels import backends
from diverseevol.kernels._rowblocks import plan_row_blocks

torch = pytest.importorskip("torch")
faiss = pytest.importorskip("faiss")
torch.set_num_threads(1)

from kcenter_oracle import kcenter_oracle

from diverseevol.kernels import _faiss, _torch
from diverseevol.kernels.approximate import kcenter_select_approximate
from diverseevol.kernels.kcenter import kcenter_select

HAS_CUDA = torch.cuda.is_available()
HAS_FAISS_GPU = getattr(faiss, "get_num_gpus", lambda: 0)() > 0
BACKENDS = {"faiss": _faiss.farthest_first, "torch": _torch.farthest_first}


def make_case(seed, n=400, d=12, n_pool=25, cand_frac=0.8):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    pool = np.sort(rng.choice(n, n_pool, replace=False)).astype(np.int64)
    rest = np.setdiff1d(np.arange(n), pool)
    cand = np.sort(rest[rng.random(len(rest)) < cand_frac]).astype(np.int64)
    return x, pool, cand


@pytest.mark.parametrize("name", sorted(BACKENDS))
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("with_pool", [True, False])
@pytest.mark.parametrize("block_rows", [None, 5, 64])
def test_backend_matches_bruteforce_oracle(name, metric, with_pool, block_rows):
    x, pool, cand = make_case(1 + with_pool)
    if not with_pool:
        pool = pool[:0]
    first = None if with_pool else int(cand[7])
    want_p, want_r = kcenter_oracle(x, pool, cand, 30, metric, first)
    picks, radii = BACKENDS[name](
        x, pool, cand, 30, metric=metric, first_pick=first, block_rows=block_rows, progress=False
    )
    assert picks.dtype == np.int64 and radii.dtype == np.float64
    np.testing.assert_array_equal(picks, want_p)
    np.testing.assert_allclose(radii, want_r, rtol=1e-4, atol=1e-5)
    assert np.all(np.diff(radii[np.isfinite(radii)]) <= 1e-6)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_backend_reads_memmap_and_float64(name, tmp_path):
    x, pool, cand = make_case(3, n=600, d=20)
    path = tmp_path / "z.npy"
    np.save(path, x.astype(np.float64))
    mm = np.load(path, mmap_mode="r")
    want_p, _ = kcenter_oracle(x.astype(np.float64), pool, cand, 25, "euclidean")
    picks, _ = BACKENDS[name](
        mm, pool, cand, 25, metric="euclidean", first_pick=None, block_rows=50, progress=False
    )
    np.testing.assert_array_equal(picks, want_p)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_backend_sparse_candidates_from_memmap_cosine(name, tmp_path):
    # 20% of the rows are candidates: blocks are gathered, not sliced.
    x, pool, cand = make_case(4, n=800, d=12, n_pool=30, cand_frac=0.2)
    path = tmp_path / "z.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")
    want_p, want_r = kcenter_oracle(x, pool, cand, 30, "cosine")
    picks, radii = BACKENDS[name](
        mm, pool, cand, 30, metric="cosine", first_pick=None, block_rows=16, progress=False
    )
    np.testing.assert_array_equal(picks, want_p)
    np.testing.assert_allclose(radii, want_r, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_faiss_bit_identical_to_numpy_reference(dtype, metric):
    _numpy = pytest.importorskip("diverseevol.kernels._numpy")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2500, 48)).astype(dtype)
    x[1800:1810] = x[100:110]  # exact duplicates: ties must go to the lowest index in both
    pool = np.sort(rng.choice(2500, 150, replace=False))
    pool = pool[~np.isin(pool, np.arange(100, 110))]
    cand = np.setdiff1d(np.arange(2500), pool)
    want_p, want_r = _numpy.farthest_first(x, pool, cand, 300, metric=metric, first_pick=None, prune=False)
    picks, radii = _faiss.farthest_first(x, pool, cand, 300, metric=metric, first_pick=None, progress=False)
    np.testing.assert_array_equal(picks, want_p)
    np.testing.assert_array_equal(radii, want_r)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_torch_cpu_same_picks_as_numpy_reference(metric):
    _numpy = pytest.importorskip("diverseevol.kernels._numpy")
    rng = np.random.default_rng(6)
    x = rng.normal(size=(3000, 64)).astype(np.float32)
    cand = np.sort(rng.choice(3000, 2000, replace=False))
    want_p, want_r = _numpy.farthest_first(
        x, cand[:0], cand, 200, metric=metric, first_pick=int(cand[3]), prune=False
    )
    picks, radii = _torch.farthest_first(
        x, cand[:0], cand, 200, metric=metric, first_pick=int(cand[3]), progress=False
    )
    np.testing.assert_array_equal(picks, want_p)
    np.testing.assert_allclose(radii[1:], want_r[1:], rtol=1e-5)


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_public_kcenter_select_routes_to_backend(backend):
    kcenter = pytest.importorskip("diverseevol.kernels.kcenter")
    x, pool, cand = make_case(8, n=700, d=16)
    want = kcenter.kcenter_select(x, pool, 40, candidate_idx=cand, backend="numpy")
    got = kcenter.kcenter_select(x, pool, 40, candidate_idx=cand, backend=backend, progress=False)
    np.testing.assert_array_equal(got, want)
    # empty pool: the first pick comes from random_state in kcenter_select, the same for every backend
    want = kcenter.kcenter_select(x, [], 10, backend="numpy", random_state=4)
    got = kcenter.kcenter_select(x, [], 10, backend=backend, random_state=4, progress=False)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("budget_rows", [0, 70, 10_000])
def test_torch_resident_chunks_and_streamed_rest(monkeypatch, metric, budget_rows):
    # The resident-copy path (what a GPU uses) exercised on CPU: several chunks, then streamed blocks.
    monkeypatch.setattr(_torch, "_DEVICE_CHUNK_BYTES", 25 * 16 * 4)
    x, pool, cand = make_case(9, n=500, d=16)
    want_p, want_r = kcenter_oracle(x, pool, cand, 20, metric)
    picks, radii = _torch.farthest_first(
        x,
        pool,
        cand,
        20,
        metric=metric,
        first_pick=None,
        block_rows=8,
        max_device_bytes=budget_rows * 16 * 4,
        progress=False,
    )
    np.testing.assert_array_equal(picks, want_p)
    np.testing.assert_allclose(radii, want_r, rtol=1e-4, atol=1e-5)


def test_torch_forces_full_float32_precision_and_restores_it():
    x, pool, cand = make_case(10, n=300, d=16)
    want_p, _ = kcenter_oracle(x, pool, cand, 15, "euclidean")
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")  # a user setting that allows bf16/TF32 products
    try:
        picks, _ = _torch.farthest_first(
            x, pool, cand, 15, metric="euclidean", first_pick=None, progress=False
        )
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(before)
    np.testing.assert_array_equal(picks, want_p)


def test_torch_cpu_threads_are_restored():
    x, pool, cand = make_case(13, n=300, d=16)
    before = torch.get_num_threads()
    picks, _ = _torch.farthest_first(x, pool, cand, 10, metric="euclidean", first_pick=None, n_threads=2)
    assert torch.get_num_threads() == before
    np.testing.assert_array_equal(picks, kcenter_oracle(x, pool, cand, 10, "euclidean")[0])
    with pytest.raises(ValidationError, match="n_threads"):  # checked once, at the public boundary
        kcenter_select(x, pool, 10, candidate_idx=cand, backend="torch", n_threads=0)


def test_plan_row_blocks_tiles_candidates():
    rng = np.random.default_rng(0)
    cand = np.sort(rng.choice(10_000, 3000, replace=False))
    cand = np.concatenate([np.arange(20_000, 30_000), cand + 40_000])  # dense run + sparse tail
    blocks = plan_row_blocks(cand, 1000)
    assert blocks[0].pos_start == 0 and blocks[-1].pos_end == len(cand)
    assert all(a.pos_end == b.pos_start for a, b in itertools.pairwise(blocks))
    kinds = set()
    for b in blocks:
        if b.rows is not None:
            kinds.add("gather")
            np.testing.assert_array_equal(b.rows, cand[b.pos_start : b.pos_end])
        else:
            rows = np.arange(b.row_start, b.row_end)
            got = rows if b.local is None else rows[b.local]
            kinds.add("slice" if b.local is None else "masked")
            np.testing.assert_array_equal(got, cand[b.pos_start : b.pos_end])
        assert b.row_end - b.row_start <= 1000 or b.rows is not None
    assert kinds == {"slice", "gather"}


# ----------------------------------------------------------------------------- auto and errors


def test_registry_lists_backends():
    assert backends.available_backends() == ["faiss", "numpy", "torch"]
    assert set(backends.installed_backends()) == {"faiss", "numpy", "torch"}


def test_unknown_backend_names_the_choices():
    with pytest.raises(ValidationError, match="'auto' or one of"):
        backends.resolve_backend("cupy", n_candidates=10, n_pool=0, d=2, is_memmap=False)


def test_auto_small_problem_is_numpy_and_logged(caplog):
    with caplog.at_level(logging.INFO, logger="diverseevol.kernels.backends"):
        name, _ = backends.resolve_backend("auto", n_candidates=1000, n_pool=10, d=16, is_memmap=False)
    assert name == "numpy"
    assert "chose 'numpy'" in caplog.text and "small problem" in caplog.text


def test_auto_large_problem_without_gpu_is_numpy(monkeypatch, caplog):
    monkeypatch.setattr(backends, "_torch_cuda_usable", lambda: False)
    monkeypatch.setattr(backends, "_faiss_gpu_usable", lambda: False)
    with caplog.at_level(logging.INFO, logger="diverseevol.kernels.backends"):
        name, _ = backends.resolve_backend("auto", n_candidates=52_002, n_pool=100, d=4096, is_memmap=True)
    assert name == "numpy" and "no GPU usable" in caplog.text


def test_auto_large_pool_without_gpu_uses_faiss_cpu(monkeypatch, caplog):
    monkeypatch.setattr(backends, "_torch_cuda_usable", lambda: False)
    monkeypatch.setattr(backends, "_faiss_gpu_usable", lambda: False)
    with caplog.at_level(logging.INFO, logger="diverseevol.kernels.backends"):
        name, fn = backends.resolve_backend(
            "auto", n_candidates=52_002, n_pool=10_000, d=1024, is_memmap=False
        )
    assert name == "faiss" and fn.keywords == {"device": "cpu"} and "large pool" in caplog.text
    monkeypatch.setattr(backends, "is_available", lambda module: module != "faiss")
    name, _ = backends.resolve_backend("auto", n_candidates=52_002, n_pool=10_000, d=1024, is_memmap=False)
    assert name == "numpy"


def test_auto_large_problem_with_gpu_prefers_torch_cuda(monkeypatch):
    monkeypatch.setattr(backends, "_torch_cuda_usable", lambda: True)
    name, fn = backends.resolve_backend("auto", n_candidates=1_000_000, n_pool=100, d=1024, is_memmap=False)
    assert name == "torch" and fn.keywords == {"device": "cuda"}
    monkeypatch.setattr(backends, "_torch_cuda_usable", lambda: False)
    monkeypatch.setattr(backends, "_faiss_gpu_usable", lambda: True)
    name, fn = backends.resolve_backend("auto", n_candidates=1_000_000, n_pool=100, d=1024, is_memmap=False)
    assert name == "faiss" and fn.keywords == {"device": "gpu"}


def test_missing_package_names_the_extra(monkeypatch):
    import diverseevol._optional as opt

    real = opt.importlib.import_module

    def fake_import(name, *a, **k):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real(name, *a, **k)

    monkeypatch.setattr(opt.importlib, "import_module", fake_import)
    with pytest.raises(OptionalDependencyError, match=r"diverseevol\[faiss\]"):
        backends.resolve_backend("faiss", n_candidates=10, n_pool=0, d=2, is_memmap=False)


@pytest.mark.skipif(HAS_CUDA, reason="checks the error raised without a GPU")
def test_torch_cuda_without_gpu_is_backend_unavailable():
    x, pool, cand = make_case(0, n=50, d=4)
    with pytest.raises(BackendUnavailableError, match="needs a CUDA GPU"):
        _torch.farthest_first(x, pool, cand, 3, metric="euclidean", first_pick=None, device="cuda")


@pytest.mark.skipif(HAS_FAISS_GPU, reason="checks the error raised without faiss-gpu")
def test_faiss_gpu_without_gpu_is_backend_unavailable():
    x, pool, cand = make_case(0, n=50, d=4)
    with pytest.raises(BackendUnavailableError, match="0 GPUs"):
        _faiss.farthest_first(x, pool, cand, 3, metric="euclidean", first_pick=None, device="gpu")


def test_backend_modules_import_without_torch_or_faiss():
    code = textwrap.dedent(
        """
        import json, sys
        import diverseevol.kernels.backends, diverseevol.kernels._faiss, diverseevol.kernels._torch
        import diverseevol.kernels.approximate, diverseevol.kernels.distributed
        from diverseevol.kernels.backends import resolve_backend
        resolve_backend("auto", n_candidates=1000, n_pool=10, d=64, is_memmap=False)
        print(json.dumps(sorted(m for m in ("torch", "faiss") if m in sys.modules)))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


# ----------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_torch_cuda_matches_oracle(metric):
    x, pool, cand = make_case(11, n=800, d=32)
    want_p, want_r = kcenter_oracle(x, pool, cand, 50, metric)
    picks, radii = _torch.farthest_first(
        x, pool, cand, 50, metric=metric, first_pick=None, device="cuda", progress=False
    )
    np.testing.assert_array_equal(picks, want_p)
    np.testing.assert_allclose(radii, want_r, rtol=1e-4, atol=1e-5)
    # a tiny device budget: resident part plus streamed blocks
    picks, _ = _torch.farthest_first(
        x,
        pool,
        cand,
        50,
        metric=metric,
        first_pick=None,
        device="cuda",
        block_rows=64,
        max_device_bytes=64 * 32 * 4 * 3,
        progress=False,
    )
    np.testing.assert_array_equal(picks, want_p)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_FAISS_GPU, reason="needs faiss-gpu and a GPU")
def test_faiss_gpu_matches_oracle():
    x, pool, cand = make_case(12, n=800, d=32)
    want_p, _ = kcenter_oracle(x, pool, cand, 50, "euclidean")
    picks, _ = _faiss.farthest_first(
        x, pool, cand, 50, metric="euclidean", first_pick=None, device="gpu", progress=False
    )
    np.testing.assert_array_equal(picks, want_p)


# ----------------------------------------------------------------------------- approximate mode


def clustered(seed, n=6000, d=16, n_clusters=40):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_clusters, d)) * 4
    return (centers[rng.integers(n_clusters, size=n)] + rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("n_pool", [0, 40])
def test_approximate_without_probe_cap_is_exact(metric, n_pool):
    x = clustered(0, n=1500)
    rng = np.random.default_rng(1)
    pool = np.sort(rng.choice(len(x), n_pool, replace=False))
    cand = np.setdiff1d(np.arange(len(x)), pool)
    first = None if n_pool else int(cand[np.random.default_rng(7).integers(len(cand))])
    want_p, want_r = _faiss.farthest_first(x, pool, cand, 60, metric=metric, first_pick=first, progress=False)
    picks, radii = kcenter_select_approximate(
        x,
        pool,
        60,
        metric=metric,
        random_state=7,
        n_probe=None,
        n_cells=30,
        return_radii=True,
        progress=False,
    )
    np.testing.assert_array_equal(picks, want_p)
    np.testing.assert_allclose(radii, want_r, rtol=1e-4)


@pytest.mark.parametrize("offset", [0.0, 300.0])
def test_approximate_projected_kmeans_without_cap_is_exact(offset):
    # k-means on an 8-d projection of 96-d rows, far from the origin (large norms, small distances):
    # the full-space radii keep the pruning bound valid, so n_probe=None stays exact.
    x = clustered(5, n=1200, d=96) + np.float32(offset)
    pool = np.arange(0, 1200, 60)
    cand = np.setdiff1d(np.arange(1200), pool)
    want_p, _ = _faiss.farthest_first(x, pool, cand, 80, metric="euclidean", first_pick=None, progress=False)
    picks = kcenter_select_approximate(x, pool, 80, n_probe=None, n_cells=25, kmeans_dim=8, random_state=0)
    np.testing.assert_array_equal(picks, want_p)


def test_approximate_capped_is_valid_deterministic_and_close():
    x = clustered(2)
    pool = np.arange(0, 6000, 100)
    cand = np.setdiff1d(np.arange(len(x)), pool)
    kw = {"random_state": 3, "n_probe": 4, "n_cells": 60, "progress": False}
    a = kcenter_select_approximate(x, pool, 150, **kw)
    b = kcenter_select_approximate(x, pool, 150, **kw)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == 150 and np.isin(a, cand).all()
    exact, _ = _faiss.farthest_first(x, pool, cand, 150, metric="euclidean", first_pick=None, progress=False)

    def cover(sel):
        centers = x[np.concatenate([pool, sel])].astype(np.float64)
        d2 = ((x[:, None, :].astype(np.float64) - centers[None]) ** 2).sum(-1)
        return np.sqrt(d2.min(axis=1).max())

    # the approximate selection covers Z almost as well as the exact one (2-approximation bound: < 2x)
    assert cover(a) <= 1.25 * cover(exact)
    assert len(np.intersect1d(a, exact)) >= 0.3 * 150


def test_approximate_ivf_init_runs_and_respects_candidates():
    x = clustered(4, n=4000)
    pool = np.arange(0, 4000, 2)  # a large pool: IVF over 2000 vectors
    cand = np.arange(1, 4000, 4)
    picks = kcenter_select_approximate(
        x, pool, 30, candidate_idx=cand, init="ivf", random_state=0, progress=False
    )
    assert len(np.unique(picks)) == 30 and np.isin(picks, cand).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"metric": "manhattan"}, "metric"),
        ({"init": "hnsw"}, "init"),
        ({"n_probe": 0}, "n_probe"),
    ],
)
def test_approximate_validates(kwargs, match):
    x = clustered(0, n=100)
    with pytest.raises(ValidationError, match=match):
        kcenter_select_approximate(x, [0, 1], 5, **kwargs)


def test_approximate_cosine_rejects_zero_rows():
    x = clustered(0, n=200)
    x[7] = 0
    with pytest.raises(ValidationError, match="row 7 is all zeros"):
        kcenter_select_approximate(x, [0, 1], 5, metric="cosine")
    with pytest.raises(ValidationError, match="pool row 7"):
        kcenter_select_approximate(x, [7, 1], 5, metric="cosine")


def test_approximate_k_zero_and_exhaustion():
    x = clustered(0, n=50)
    assert kcenter_select_approximate(x, [0], 0).shape == (0,)
    from diverseevol.errors import PoolExhaustedError

    with pytest.raises(PoolExhaustedError):
        kcenter_select_approximate(x, np.arange(10), 41)
    all_picks = kcenter_select_approximate(x, np.arange(10), 40, random_state=0, n_cells=5, n_probe=1)
    np.testing.assert_array_equal(np.sort(all_picks), np.arange(10, 50))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 60),
    d=st.integers(1, 6),
    pool_frac=st.floats(0.0, 0.5),
    data=st.data(),
)
def test_exact_backends_agree_on_tie_heavy_integer_data(seed, n, d, pool_frac, data):
    # Small integer coordinates: every float32 distance is exact, so exact ties abound and the
    # lowest-index rule decides; all exact kernels must then agree pick for pick.
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(n, d)).astype(np.float32)
    n_pool = int(pool_frac * n)
    pool = np.sort(rng.choice(n, n_pool, replace=False)).astype(np.int64)
    cand = np.setdiff1d(np.arange(n), pool)
    k = data.draw(st.integers(1, len(cand)))
    first = None if n_pool else int(cand[data.draw(st.integers(0, len(cand) - 1))])
    want_p, want_r = kcenter_oracle(x, pool, cand, k, "euclidean", first)
    for name, fn in BACKENDS.items():
        picks, radii = fn(
            x, pool, cand, k, metric="euclidean", first_pick=first, block_rows=7, progress=False
        )
        np.testing.assert_array_equal(picks, want_p, err_msg=name)
        np.testing.assert_allclose(radii, want_r, rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_approximate_gathered_rows_without_cap_is_exact(metric, tmp_path):
    # No cell-ordered copy (memory map): updated cells are gathered from emb on each pick.
    x = clustered(6, n=1500)
    np.save(tmp_path / "z.npy", x)
    mm = np.load(tmp_path / "z.npy", mmap_mode="r")
    pool = np.arange(0, 1500, 50)
    cand = np.setdiff1d(np.arange(1500), pool)
    want_p, _ = _faiss.farthest_first(x, pool, cand, 70, metric=metric, first_pick=None, progress=False)
    picks = kcenter_select_approximate(mm, pool, 70, metric=metric, n_probe=None, n_cells=30, random_state=1)
    np.testing.assert_array_equal(picks, want_p)
    from_path = kcenter_select_approximate(
        str(tmp_path / "z.npy"), pool, 70, metric=metric, n_probe=None, n_cells=30
    )
    np.testing.assert_array_equal(from_path, want_p)
    capped = kcenter_select_approximate(mm, pool, 70, metric=metric, n_probe=3, n_cells=30, random_state=1)
    assert len(np.unique(capped)) == 70 and np.isin(capped, cand).all()


def test_torch_cpu_on_larger_random_data_matches_oracle():
    x, pool, cand = make_case(21, n=900, d=24, n_pool=5, cand_frac=0.5)
    want_p, _ = kcenter_oracle(x, pool, cand, 80, "cosine")
    picks, _ = _torch.farthest_first(
        x, pool, cand, 80, metric="cosine", first_pick=None, block_rows=100, progress=False
    )
    np.testing.assert_array_equal(picks, want_p)
