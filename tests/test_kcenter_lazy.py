"""Lazy evaluation in the numpy K-Center kernel: exact (bit for bit), and it skips work where it may.

Two oracles: the float64 brute force of ``tests/kcenter_oracle.py`` (independent of the kernel) and
the kernel itself with ``prune=False, lazy=False``, which computes every distance (for float32 input,
where the brute force's float64 arithmetic may order near-ties differently).
"""

from __future__ import annotations

import os
import random
import zlib

import numpy as np
import pytest
from kcenter_oracle import kcenter_oracle

from diverseevol import kcenter_select
from diverseevol.errors import ValidationError
from diverseevol.kernels import _lazyeval, _numpy, _pruning


def _problem(rng: np.random.Generator, kind: str, n: int, d: int, dtype=np.float32) -> np.ndarray:
    if kind == "random":
        x = rng.standard_normal((n, d))
    elif kind == "clustered":
        x = (rng.standard_normal((6, d)) * 5)[rng.integers(0, 6, n)] + 0.1 * rng.standard_normal((n, d))
    elif kind == "duplicates":
        base = rng.standard_normal((max(2, n // 3), d))
        x = base[rng.integers(0, len(base), n)]
    else:  # a small integer grid: many exact ties between distinct rows
        x = rng.integers(-1, 2, (n, d)).astype(float)
        x[np.abs(x).sum(axis=1) == 0, 0] = 1.0  # no zero rows (cosine)
    return np.ascontiguousarray(x, dtype=dtype)


@pytest.fixture
def eager_lazy(monkeypatch):
    """Tiny lazy batches and thresholds, so that small problems use every lazy code path."""

    def set_(batch, fraction, cache_bytes):
        monkeypatch.setattr(_lazyeval, "_EPOCH_ROWS", 4 * batch)
        monkeypatch.setattr(_lazyeval, "_LAZY_BATCH", batch)
        monkeypatch.setattr(_lazyeval, "_LAZY_MAX_FRACTION", fraction)
        monkeypatch.setattr(_lazyeval, "_CENTER_CACHE_BYTES", cache_bytes)
        monkeypatch.setattr(_numpy, "_LAZY_MIN_NEED", 0.0)  # lazy="auto" is never turned off up front here

    return set_


#: Each run draws new problems (a fuzz test); a failure names its seed, and DIVERSEEVOL_FUZZ_SEED=<seed> replays it.
_FUZZ_BASE = int(os.environ.get("DIVERSEEVOL_FUZZ_SEED", random.randrange(2**32)))


@pytest.mark.parametrize("kind", ["random", "clustered", "duplicates", "grid"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("tuning", [(1, 1, 0), (2, 2, 1 << 30), (64, 8, 1 << 30)])
def test_lazy_is_bit_identical_to_the_full_computation(kind, metric, tuning, eager_lazy):
    eager_lazy(*tuning)
    rng = np.random.default_rng(zlib.crc32(repr((kind, metric, tuning)).encode()) ^ _FUZZ_BASE)
    lazy_runs = 0
    for trial in range(6):
        n = int(rng.integers(20, 400))
        d = int(rng.choice([2, 5, 24, 64]))
        x = _problem(rng, kind, n, d)
        pool = np.sort(rng.choice(n, int(rng.integers(0, n // 3)), replace=False))
        cand = None
        if trial % 3 == 0:
            rest = np.setdiff1d(np.arange(n), pool)
            cand = np.sort(rng.choice(rest, max(1, len(rest) // 2), replace=False))
        n_cand = n - len(pool) if cand is None else len(cand)
        k = int(rng.integers(1, min(n_cand, 120) + 1))
        common = dict(metric=metric, backend="numpy", return_radii=True, random_state=3, candidate_idx=cand)
        ref, ref_r = kcenter_select(x, pool, k, prune=False, lazy=False, **common)
        for prune, lazy in ((True, True), (False, True), ("auto", "auto")):
            stats: dict = {}
            got, got_r = kcenter_select(
                x, pool, k, prune=prune, lazy=lazy, stats=stats,
                block_rows=int(rng.choice([1, 7, 64])), max_copy_bytes=int(rng.choice([0, 1 << 30])), **common,
            )
            replay = f"DIVERSEEVOL_FUZZ_SEED={_FUZZ_BASE}, trial {trial}, prune={prune}, lazy={lazy}"
            np.testing.assert_array_equal(got, ref, err_msg=replay)
            np.testing.assert_array_equal(got_r, ref_r, err_msg=replay)
            if lazy is True:  # "auto" may hand the run to pruning, by a timed trial (so not asserted)
                assert stats["lazy"] is True, replay
            lazy_runs += lazy is True and stats["evaluations"] < stats["evaluations_unpruned"]
    assert lazy_runs > 0  # the lazy path did skip work in some runs (not only fallbacks)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_lazy_matches_the_brute_force_oracle(metric, eager_lazy):
    eager_lazy(2, 2, 1 << 30)
    rng = np.random.default_rng(5)
    # Cosine on the integer grid is left out: its exact ties come out of the two computations with
    # different rounding, so any two correct implementations may break them differently.
    for kind in ("random", "clustered", "duplicates") + (("grid",) if metric == "euclidean" else ()):
        x = _problem(rng, kind, 300, 6, dtype=np.float64)
        pool = np.sort(rng.choice(300, 10, replace=False))
        got, got_r = kcenter_select(x, pool, 80, metric=metric, backend="numpy", lazy=True, return_radii=True)
        want, want_r = kcenter_oracle(x, pool, None, 80, metric=metric)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(got_r, want_r, rtol=1e-9, atol=1e-12)


def test_lazy_skips_almost_all_work_on_isotropic_data():
    # Triangle-inequality pruning can skip nothing here (every group is hit by every center);
    # lazy evaluation only brings the few rows that could be the next pick up to date.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6000, 256)).astype(np.float32)
    pool = np.arange(30)
    stats_lazy: dict = {}
    stats_tri: dict = {}
    a = kcenter_select(x, pool, 60, backend="numpy", lazy=True, stats=stats_lazy)
    b = kcenter_select(x, pool, 60, backend="numpy", lazy=False, prune=True, stats=stats_tri)
    np.testing.assert_array_equal(a, b)
    assert stats_lazy["lazy"] and stats_lazy["lazy_fallbacks"] == 0
    assert stats_lazy["evaluations"] < 0.05 * stats_lazy["evaluations_unpruned"]
    assert stats_tri["evaluations"] + stats_tri["filtered_out"] > 0.5 * stats_tri["evaluations_unpruned"]


def test_lazy_falls_back_and_regroups_rows_exactly(monkeypatch):
    # With an empty pool every row starts at +inf, so the first picks fall back to full (triangle-
    # pruned) passes; early regrouping then permutes the rows under the lazy stamps.
    monkeypatch.setattr(_pruning, "_REORDER_FACTOR", 0.5)
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(25, 32)) * 10)[rng.integers(0, 25, 6000)] + rng.normal(size=(6000, 32))
    x = x.astype(np.float32)
    for pool in (np.array([], dtype=np.int64), np.arange(60)):
        stats: dict = {}
        ref = kcenter_select(x, pool, 150, prune=False, lazy=False, random_state=2, return_radii=True)
        got = kcenter_select(x, pool, 150, prune=True, lazy=True, random_state=2, return_radii=True, stats=stats)
        auto = kcenter_select(x, pool, 150, random_state=2, return_radii=True)  # adaptive: timing-driven path
        np.testing.assert_array_equal(auto[0], ref[0])
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
        assert stats["evaluations"] < 0.3 * stats["evaluations_unpruned"]
        if len(pool) == 0:
            assert stats["lazy_fallbacks"] >= 1
            assert stats["reorders"] >= 1


def test_lazy_on_a_streamed_memmap(tmp_path, eager_lazy):
    eager_lazy(8, 8, 1 << 30)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3000, 48)).astype(np.float32)
    path = tmp_path / "emb.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")
    cand = np.sort(rng.choice(np.arange(50, 3000), 1000, replace=False))  # sparse: streamed, not sliced
    stats: dict = {}
    got = kcenter_select(mm, np.arange(50), 40, candidate_idx=cand, lazy=True, stats=stats)
    ref = kcenter_select(x, np.arange(50), 40, candidate_idx=cand, prune=False, lazy=False)
    np.testing.assert_array_equal(got, ref)
    assert stats["layout"] == "stream"
    assert stats["evaluations"] < stats["evaluations_unpruned"]


def test_adaptive_mode_switches_to_full_passes_when_lazy_picks_cost_more(monkeypatch):
    # Full passes made to look free: the adaptive mode must give up lazy picks after its trial
    # picks (and retry later), and the result must not change.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20000, 16)).astype(np.float32)
    real_judge = _lazyeval.LazyState.judge

    def free_passes(self, seconds, pass_s, picks_left):
        real_judge(self, seconds, 0.0, picks_left)

    monkeypatch.setattr(_lazyeval.LazyState, "judge", free_passes)
    monkeypatch.setattr(_numpy, "_LAZY_MIN_NEED", 0.0)  # lazy="auto" is not turned off up front here
    stats: dict = {}
    got = kcenter_select(x, np.arange(10), 200, stats=stats, return_radii=True)
    ref = kcenter_select(x, np.arange(10), 200, prune=False, lazy=False, return_radii=True)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    assert stats["lazy_switches"] >= 2  # switched, retried lazily after the cool-down, switched again
    assert stats["evaluations"] + stats["filtered_out"] > 0.5 * stats["evaluations_unpruned"]
    forced: dict = {}
    kcenter_select(x, np.arange(10), 200, lazy=True, stats=forced)
    assert forced["lazy_switches"] == 0
    assert forced["evaluations"] < 0.2 * forced["evaluations_unpruned"]


def test_lazy_option_defaults_and_validation():
    x = np.random.default_rng(0).standard_normal((100, 4)).astype(np.float32)
    stats: dict = {}
    kcenter_select(x, np.arange(5), 5, stats=stats)
    assert stats["lazy"] is True and stats["lazy_adaptive"] is True
    kcenter_select(x, np.arange(5), 5, prune=False, stats=stats)
    assert stats["lazy"] is False  # prune=False computes every distance
    kcenter_select(x, np.arange(5), 5, prune=False, lazy=True, stats=stats)
    assert stats["lazy"] is True and stats["prune"] is False and stats["lazy_adaptive"] is False
    with pytest.raises(ValidationError, match="lazy must be 'auto', True or False"):
        kcenter_select(x, np.arange(5), 5, lazy="yes")


def test_auto_pruning_is_dropped_when_pruned_passes_cost_more(monkeypatch):
    monkeypatch.setattr(_pruning, "_PRUNE_LOSS", 0.0)  # every pruned pass "costs more" than a full read
    monkeypatch.setattr(_numpy, "_PRUNE_OVERHEAD_D", 0)  # no up-front drop at 24 columns: the timed trial decides
    rng = np.random.default_rng(4)
    x = (rng.normal(size=(30, 24)) * 8)[rng.integers(0, 30, 5000)] + rng.normal(size=(5000, 24))
    x = x.astype(np.float32)
    ref = kcenter_select(x, np.arange(20), 120, prune=False, lazy=False, return_radii=True)
    for prune, dropped in (("auto", True), (True, False)):
        stats: dict = {}
        got = kcenter_select(x, np.arange(20), 120, prune=prune, lazy=False, return_radii=True, stats=stats)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
        assert stats["prune_dropped"] is dropped


def _one_start_case(seed: int, n: int, d: int, n_clusters: int | None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if n_clusters is None:
        return rng.standard_normal((n, d)).astype(np.float32)
    centers = rng.normal(size=(n_clusters, d)) * 6
    return (centers[rng.integers(0, n_clusters, n)] + rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize(
    "case, overhead_d, prune_kept, lazy_kept",
    [
        ("clustered", None, True, False),  # pruning pays: kept, and lazy="auto" goes eager
        ("isotropic", None, False, True),  # every row needs work: pruning off, lazy kept
        ("clustered", 500, False, False),  # pruning cannot pay (limit 1 - 500/512) and the rows are structured
    ],
)
def test_one_start_decides_pruning_and_lazy_after_the_first_picks(case, overhead_d, prune_kept, lazy_kept, monkeypatch):
    # Without a pool there is no table to estimate from up front; the estimate is taken after
    # _PROBE_AFTER_PICKS picks (pending lazy picks are caught up when lazy goes), picks unchanged.
    monkeypatch.setattr(_pruning, "_PRUNE_LOSS", float("inf"))  # the timed trial never drops pruning first
    if overhead_d is not None:
        monkeypatch.setattr(_numpy, "_PRUNE_OVERHEAD_D", overhead_d)
    x = _one_start_case(7, 4000, 512, 6 if case == "clustered" else None)
    empty = np.empty(0, dtype=np.int64)
    ref = kcenter_select(x, empty, 60, prune=False, lazy=False, random_state=1, return_radii=True)
    stats: dict = {}
    got = kcenter_select(x, empty, 60, random_state=1, return_radii=True, stats=stats)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    assert np.isfinite(stats["need_estimate"])
    assert stats["prune"] is prune_kept
    assert stats["lazy"] is lazy_kept
    if case == "clustered":
        assert stats["need_estimate"] < 0.95
    else:
        assert stats["need_estimate"] > 0.95


@pytest.mark.parametrize("metric, offset", [("euclidean", 0.0), ("cosine", 0.0), ("euclidean", 400.0)])
def test_dropped_pruning_is_estimated_again_once_picks_cover_the_clusters(metric, offset, monkeypatch):
    # A 10-row pool covers few of 60 clusters, so the up-front estimate says pruning cannot pay at 320
    # columns; once the picks cover the clusters, a table rebuilt over pool + picks says it does, and the
    # rest of the run prunes. Oracle: every distance computed (prune=False), bit for bit.
    monkeypatch.setattr(_pruning, "_PRUNE_LOSS", float("inf"))  # the timed trial never drops pruning again
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(60, 320)) * 6
    x = (centers[rng.integers(0, 60, 6000)] + rng.normal(size=(6000, 320)) + offset).astype(np.float32)
    pool = np.arange(10)
    stats: dict = {}
    got = kcenter_select(x, pool, 240, metric=metric, return_radii=True, stats=stats)
    ref = kcenter_select(x, pool, 240, metric=metric, prune=False, lazy=False, return_radii=True)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    assert stats["reprobes"] >= 1
    assert stats["prune"] is True and stats["need_estimate"] < 1 - _numpy._PRUNE_OVERHEAD_D / 320
    assert stats["evaluations"] < 0.5 * stats["evaluations_unpruned"]
    assert stats["shift"] is (offset > 0)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("clustered", [True, False])
@pytest.mark.parametrize("block_bytes", [32 << 20, 20_000])
def test_sampled_need_share_matches_the_share_of_a_table_over_every_row(metric, clustered, block_bytes,
                                                                        monkeypatch):
    # Oracle: the share the full table measures (TrianglePruning over every row, the same probes), which the
    # sampled estimate stands in for when deciding whether building that table is worth it; 20,000 bytes reads the
    # centers in blocks of a few.
    from diverseevol.kernels._pooldist import pool_distances
    from diverseevol.kernels._rowstore import RowStore

    monkeypatch.setattr(_pruning, "_SAMPLE_BLOCK_BYTES", block_bytes)

    rng = np.random.default_rng(5)
    n, d = 12000, 96
    if clustered:
        x = (rng.normal(size=(80, d))[rng.integers(0, 80, n)] * 8 + rng.normal(size=(n, d))).astype(np.float32)
    else:
        x = rng.normal(size=(n, d)).astype(np.float32)
    cand = np.arange(n, dtype=np.int64)
    rows = RowStore(x, cand, cosine=metric == "cosine", block_rows=None, n_threads=1, max_copy_bytes=None)
    rows.set_shift(None)
    rows.compute_norms()
    for n_centers in (20, 60, 200):
        centers = np.sort(rng.choice(n, n_centers, replace=False)).astype(np.int64)
        mind, assign = pool_distances(rows, centers, cand, None)
        mind[centers] = -1
        table = _pruning.TrianglePruning(rows, mind, assign, centers, 10, adaptive=False)
        probes = np.argpartition(mind, n - 4)[n - 4 :]
        full = np.mean([np.count_nonzero(table.need_rows(*rows.center(int(p)), mind)) / np.count_nonzero(mind >= 0)
                        for p in probes])
        sampled = _pruning.sampled_need_share(rows, mind, centers, probes.astype(np.int64))
        assert sampled is not None and abs(sampled - full) < 0.04, (n_centers, sampled, full)


@pytest.mark.parametrize("margin", [0.05, float("inf")])
def test_an_estimate_again_builds_its_table_only_where_the_sample_says_it_may_pay(margin, monkeypatch):
    # Same data as above: at k/8 picks the sampled share is still above the limit, so no table over every row is
    # built (one GEMM of every row saved); at k/4 it is built and pruning resumes. Picks are the same either way.
    monkeypatch.setattr(_pruning, "_PRUNE_LOSS", float("inf"))
    monkeypatch.setattr(_numpy, "_REPROBE_SKIP_MARGIN", margin)
    tables: list[int] = []
    full_table = _numpy._pool_distances

    def spy(rows, centers, cand, nearest):
        tables.append(len(centers))
        return full_table(rows, centers, cand, nearest)

    monkeypatch.setattr(_numpy, "_pool_distances", spy)
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(60, 320)) * 6
    x = (centers[rng.integers(0, 60, 6000)] + rng.normal(size=(6000, 320))).astype(np.float32)
    pool = np.arange(10)
    ref = kcenter_select(x, pool, 240, prune=False, lazy=False, return_radii=True)
    tables.clear()
    stats: dict = {}
    got = kcenter_select(x, pool, 240, return_radii=True, stats=stats)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    assert stats["prune"] is True
    if margin == float("inf"):
        assert stats["reprobes_skipped"] == 0 and len(tables) == 1 + stats["reprobes"] >= 3
    else:
        assert stats["reprobes_skipped"] >= 1 and len(tables) == 1 + stats["reprobes"] == 2


def test_passes_stay_on_the_calling_thread_while_blas_threads_spin(monkeypatch):
    # After the initial GEMM, OpenBLAS's workers spin for about 0.1 s and hold the cores: passes in that
    # window run on the calling thread, later ones on the worker threads. Picks never depend on it.
    import threading

    from diverseevol.kernels import _rowstore

    monkeypatch.setattr(_rowstore, "_BLAS_SINGLE_THREADED", False)
    x = np.random.default_rng(0).standard_normal((3000, 32)).astype(np.float32)
    store = _rowstore.RowStore(
        x, np.arange(3000), cosine=False, block_rows=None, n_threads=2, max_copy_bytes=None
    )
    try:
        me = threading.get_ident()
        monkeypatch.setattr(_rowstore, "_BLAS_SPIN_S", 60.0)
        store.after_blas()
        assert store.jobs_for(10**9) == 1
        assert set(store.map(lambda _: threading.get_ident(), list(range(6)))) == {me}
        monkeypatch.setattr(_rowstore, "_BLAS_SPIN_S", 0.0)
        store.after_blas()
        assert store.jobs_for(10**9) == 2
        assert me not in set(store.map(lambda _: threading.get_ident(), list(range(6))))
    finally:
        store.close()
    monkeypatch.setattr(_rowstore, "_BLAS_SPIN_S", 60.0)
    ref = kcenter_select(x, np.arange(5), 40, n_threads=2, return_radii=True)
    monkeypatch.setattr(_rowstore, "_BLAS_SPIN_S", 0.0)
    got = kcenter_select(x, np.arange(5), 40, n_threads=2, return_radii=True)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
