"""The shifted distance arithmetic (diverseevol.kernels._shift) on data with a large common mean.

Oracle: a float64 farthest-point loop written here (direct differences, ties to the lowest index).
With a shared offset of 30x the spread, float32 ``|x|^2 + |c|^2 - 2 x.c`` leaves the float64 greedy
order within the first picks; the shifted form keeps it for every pick, on every backend.
"""

from __future__ import annotations

import numpy as np
import pytest

from diverseevol import kcenter_select
from diverseevol.kernels import _shift

N, D, K = 4000, 64, 200


def offset_data(n: int = N, d: int = D, offset: float = 30.0, seed: int = 0) -> np.ndarray:
    """Clustered rows (30 clusters) plus a shared offset of norm ``offset`` x their RMS distance to the mean."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((30, d)) * 2)[rng.integers(0, 30, n)] + rng.standard_normal((n, d))
    spread = np.sqrt(((x - x.mean(0)) ** 2).sum(1).mean())
    u = rng.standard_normal(d)
    return (x + u / np.linalg.norm(u) * offset * spread).astype(np.float32)


def greedy_f64(x: np.ndarray, pool: np.ndarray, k: int, first: int | None) -> np.ndarray:
    """Float64 farthest-first: the pool (or ``first``) as the initial centers, then k picks."""
    x = x.astype(np.float64)
    mind = np.full(len(x), np.inf)
    picks: list[int] = [] if len(pool) else [int(first)]  # type: ignore[arg-type]
    for c in [*pool, *picks]:
        mind = np.minimum(mind, ((x - x[c]) ** 2).sum(1))
        mind[c] = -1
    while len(picks) < k:
        c = int(np.argmax(mind))  # first maximum: the lowest index
        picks.append(c)
        mind = np.minimum(mind, ((x - x[c]) ** 2).sum(1))
        mind[c] = -1
    return np.array(picks, dtype=np.int64)


def first_difference(a: np.ndarray, b: np.ndarray) -> int | None:
    diff = np.flatnonzero(a != b)
    return int(diff[0]) if len(diff) else None


@pytest.fixture
def plain(monkeypatch):
    """Run with the shift rule disabled: the old arithmetic."""
    return lambda: monkeypatch.setattr(_shift, "SHIFT_RATIO", np.inf)


def _runners():
    torch = pytest.importorskip("torch")
    from diverseevol.kernels import _torch

    torch.set_num_threads(1)

    def numpy_default(x, pool, cand, first):
        return kcenter_select(x, pool, K, backend="numpy", random_state=0)

    def numpy_every(x, pool, cand, first):
        return kcenter_select(x, pool, K, backend="numpy", random_state=0, prune=False)

    def numpy_stream(x, pool, cand, first):
        return kcenter_select(x, pool, K, backend="numpy", random_state=0, prune=True, lazy=True, max_copy_bytes=0,
                              block_rows=256)

    def faiss(x, pool, cand, first):
        pytest.importorskip("faiss")
        return kcenter_select(x, pool, K, backend="faiss", random_state=0)

    def torch_cpu(x, pool, cand, first):
        return _torch.farthest_first(x, pool, cand, K, metric="euclidean", first_pick=first, progress=False,
                                     block_rows=512)[0]

    return {"numpy": numpy_default, "numpy_every": numpy_every, "numpy_stream": numpy_stream, "faiss": faiss,
            "torch": torch_cpu}


@pytest.mark.parametrize("backend", ["numpy", "numpy_every", "numpy_stream", "faiss", "torch"])
@pytest.mark.parametrize("n_pool", [0, 20])
def test_shift_keeps_the_float64_order_where_the_plain_formula_leaves_it(backend, n_pool, plain):
    x = offset_data()
    pool = np.arange(0, N, N // 20)[:n_pool].astype(np.int64)
    cand = np.setdiff1d(np.arange(N), pool)
    first = None if n_pool else int(cand[np.random.default_rng(0).integers(len(cand))])  # random_state=0's draw
    want = greedy_f64(x, pool, K, first)
    run = _runners()[backend]
    new = run(x, pool, cand, first)
    assert first_difference(new, want) is None
    plain()
    old = run(x, pool, cand, first)
    assert first_difference(old, want) is not None  # the old arithmetic does leave the float64 order


def test_shift_in_the_sharded_kernel(tmp_path, plain):
    torch = pytest.importorskip("torch")
    dist = torch.distributed
    if not (dist.is_available() and dist.is_gloo_available()) or dist.is_initialized():  # pragma: no cover
        pytest.skip("needs gloo and no process group yet")
    from diverseevol.kernels.distributed import kcenter_select_distributed

    x = offset_data()
    pool = np.arange(0, N, N // 20).astype(np.int64)
    want = greedy_f64(x, pool, K, None)
    path = tmp_path / "z.npy"
    np.save(path, x)
    emb = np.load(path, mmap_mode="r")  # memmapped: shifted block by block
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        new = kcenter_select_distributed(emb, np.arange(N), pool, K, block_rows=512)
        plain()
        old = kcenter_select_distributed(emb, np.arange(N), pool, K, block_rows=512)
    finally:
        dist.destroy_process_group()
    assert first_difference(new, want) is None
    assert first_difference(old, want) is not None


def test_shift_on_a_memmap_streamed_equals_in_memory(tmp_path):
    x = offset_data(n=1500, d=24)
    path = tmp_path / "z.npy"
    np.save(path, x)
    pool = np.arange(0, 1500, 100)
    stats: dict = {}
    got = kcenter_select(str(path), pool, 80, backend="numpy", return_radii=True, stats=stats, block_rows=64)
    assert stats["shift"] is True and stats["layout"] in ("span", "stream")
    want = kcenter_select(x, pool, 80, backend="numpy", return_radii=True, prune=False)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_rule_does_not_engage_on_centered_data(metric):
    x = offset_data(offset=30.0)
    centered = x - x.mean(axis=0)
    pool, cand = np.arange(10), np.arange(10, N)
    assert _shift.choose_shift(centered, pool, cand, metric, None) is None
    # ... nor on data whose mean norm is about half its spread
    assert _shift.choose_shift(offset_data(offset=0.5), pool, cand, metric, None) is None
    want = 0 if metric == "euclidean" else None  # the lowest pool row, euclidean only
    assert _shift.choose_shift(x, pool, cand, metric, None) == want
    stats: dict = {}
    kcenter_select(centered, pool, 5, backend="numpy", metric=metric, stats=stats)
    assert stats["shift"] is False
    kcenter_select(x, pool, 5, backend="numpy", metric=metric, stats=stats)
    assert stats["shift"] is (metric == "euclidean")


def test_shifted_duplicates_tie_exactly_and_pruning_is_bit_identical():
    # Exact duplicates of centers are at distance exactly 0 with the shifted constant 2 c.w - |w|^2.
    base = offset_data(n=300, d=16)
    x = np.concatenate([base, base[:100]])
    pool = np.array([0, 5, 7])
    ref, ref_r = kcenter_select(x, pool, 320, backend="numpy", prune=False, lazy=False, return_radii=True,
                                stats=(stats := {}))
    assert stats["shift"] is True
    assert np.all(ref_r[300 - len(pool) :] == 0)  # every distinct row picked: the rest are duplicates
    for prune, lazy in ((True, True), ("auto", "auto"), (True, False)):
        got, got_r = kcenter_select(x, pool, 320, backend="numpy", prune=prune, lazy=lazy, block_rows=7,
                                    return_radii=True)
        np.testing.assert_array_equal(got, ref)
        np.testing.assert_array_equal(got_r, ref_r)


def test_sample_is_defined_by_absolute_index():
    idx = np.arange(100_000)
    mask = _shift.in_sample(idx, len(idx))
    assert 1500 < mask.sum() < 2600
    # a shard sees the same sample among its own rows
    np.testing.assert_array_equal(_shift.in_sample(idx[37_000:61_000], len(idx)), mask[37_000:61_000])
    assert _shift.in_sample(idx[:50], 50).all()
