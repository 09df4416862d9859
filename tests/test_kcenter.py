"""kcenter_select against a brute-force oracle, tie rules, pruning exactness and every bad input."""

from __future__ import annotations

import numpy as np
import pytest
from kcenter_oracle import kcenter_oracle

from diverseevol import kcenter_select
from diverseevol.errors import (
    DiverseEvolError,
    IndexValidationError,
    NonFiniteEmbeddingError,
    PoolExhaustedError,
    ValidationError,
)


def _case(seed, n, d, dtype, pool_size, cand_frac):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, d)).astype(dtype)
    perm = rng.permutation(n)
    pool = perm[:pool_size]
    rest = perm[pool_size:]
    cand = None if cand_frac is None else rest[: max(1, int(len(rest) * cand_frac))]
    return emb, pool, cand


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("pool_size", [0, 1, 7])
@pytest.mark.parametrize("cand_frac", [None, 0.4])
def test_matches_bruteforce_oracle(metric, dtype, pool_size, cand_frac):
    emb, pool, cand = _case(11 + pool_size, 60, 5, dtype, pool_size, cand_frac)
    cand_eff = np.setdiff1d(np.arange(60), pool) if cand is None else cand
    k = min(12, len(cand_eff))
    picks, radii = kcenter_select(
        emb, pool, k, candidate_idx=cand, metric=metric, random_state=5, return_radii=True, block_rows=8
    )
    exp_picks, exp_radii = kcenter_oracle(emb, pool, cand_eff, k, metric, first_pick=picks[0])
    np.testing.assert_array_equal(picks, exp_picks)
    tol = 1e-9 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(radii, exp_radii, rtol=tol, atol=tol)
    assert picks.dtype == np.int64 and radii.dtype == np.float64


def test_empty_pool_first_pick_comes_from_random_state():
    emb, _, _ = _case(0, 50, 3, np.float64, 0, None)
    cand = np.arange(10, 50, 2)
    picks, radii = kcenter_select(emb, [], 3, candidate_idx=cand, random_state=123, return_radii=True)
    expected_first = cand[np.random.default_rng(123).integers(len(cand))]
    assert picks[0] == expected_first
    assert np.isinf(radii[0]) and np.all(np.isfinite(radii[1:]))
    again = kcenter_select(emb, [], 3, candidate_idx=cand[::-1], random_state=np.random.default_rng(123))
    np.testing.assert_array_equal(picks, again)


def test_ties_go_to_lowest_index_hand_computed():
    emb = np.array([[0.0], [-1.0], [1.0], [5.0], [-5.0]])
    # From center 0: rows 3 and 4 tie at 5 -> 3 first; then rows 1, 2 tie at 1 -> 1, then 2.
    picks, radii = kcenter_select(emb, [0], 4, return_radii=True)
    np.testing.assert_array_equal(picks, [3, 4, 1, 2])
    np.testing.assert_array_equal(radii, [5.0, 5.0, 1.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("prune", [False, True])
def test_integer_grid_ties_match_oracle(dtype, prune):
    g = np.arange(-3, 4)
    emb = np.stack(np.meshgrid(g, g, g), -1).reshape(-1, 3).astype(dtype)  # exact arithmetic: real ties
    pool = [0, 100, 200]
    picks = kcenter_select(emb, pool, 40, prune=prune, block_rows=16)
    exp, _ = kcenter_oracle(emb, pool, np.setdiff1d(np.arange(len(emb)), pool), 40, "euclidean")
    np.testing.assert_array_equal(picks, exp)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_duplicate_rows_tie_to_lowest_index(metric, dtype):
    rng = np.random.default_rng(3)
    base = rng.normal(size=(15, 6))
    emb = base[rng.integers(0, 15, size=70)].astype(dtype)  # many exact duplicates, scattered
    picks = kcenter_select(emb, [0, 1], 20, metric=metric, block_rows=8)
    exp, _ = kcenter_oracle(emb, [0, 1], np.arange(2, 70), 20, metric)
    np.testing.assert_array_equal(picks, exp)
    # after the distinct rows are covered, duplicates come out lowest index first
    assert len(set(picks.tolist())) == 20


def _clustered(seed, n, d, n_clusters, spread=10.0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_clusters, d)) * spread
    labels = rng.integers(0, n_clusters, size=n)
    return (centers[labels] + rng.normal(size=(n, d))).astype(dtype)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("pool_size", [0, 60])
def test_pruning_is_exact_and_saves_work_on_clusters(metric, pool_size, monkeypatch):
    from diverseevol.kernels import _pruning

    monkeypatch.setattr(_pruning, "_REORDER_FACTOR", 0.5)  # regroup early: exercise the permuted layout
    emb = _clustered(1, 6000, 32, 25)
    stats_off, stats_on = {}, {}
    ref, ref_r = kcenter_select(
        emb, np.arange(pool_size), 150, metric=metric, prune=False, random_state=2, return_radii=True,
        stats=stats_off,
    )
    got, got_r = kcenter_select(
        emb, np.arange(pool_size), 150, metric=metric, prune=True, lazy=False, random_state=2, return_radii=True,
        stats=stats_on,
    )
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got_r, ref_r)
    assert stats_on["evaluations"] < 0.5 * stats_on["evaluations_unpruned"]
    assert stats_on["reorders"] >= 1  # rows regrouped by nearest center (non-sorted layout exercised)
    # every pair considered: by the row rule or ruled out by a filtered pass
    assert stats_off["evaluations"] + stats_off["filtered_out"] == stats_off["evaluations_unpruned"]


@pytest.mark.parametrize("seed", range(3))
def test_pruning_is_exact_on_random_and_tie_heavy_data(seed):
    rng = np.random.default_rng(seed)
    random_emb = rng.normal(size=(3000, 24)).astype(np.float32)
    ties = rng.integers(-2, 3, size=(3000, 4)).astype(np.float32)  # 625 distinct points, many duplicates
    for emb in (random_emb, ties):
        for pool in (np.arange(20), np.array([], dtype=np.int64)):
            a = kcenter_select(emb, pool, 200, prune=False, random_state=seed, block_rows=32)
            b = kcenter_select(emb, pool, 200, prune=True, random_state=seed, block_rows=32)
            np.testing.assert_array_equal(a, b)


def _pruned_one_start_run_matches_full(between, **kw) -> None:
    """An eager pruned one-start run on clustered rows (options ``kw``), its picks and radii checked bit for bit
    against ``prune=False``; ``between()`` runs after the reference run (to reset the caller's spies)."""
    emb = _clustered(3, 8000, 48, 40)
    none = np.array([], dtype=np.int64)
    ref, ref_r = kcenter_select(emb, none, 120, prune=False, random_state=3, return_radii=True)
    between()
    got, got_r = kcenter_select(emb, none, 120, prune=True, lazy=False, random_state=3, return_radii=True, **kw)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got_r, ref_r)


@pytest.mark.parametrize("share", [0.7, 99.0])
def test_costly_pruned_passes_run_as_one_full_pass_with_the_same_bits(share, monkeypatch):
    """A pruned plan costing at least ``_FULL_PASS_SHARE`` of a full pass (ranges + gathers) runs as one full pass."""
    from diverseevol.kernels import _numpy as kn
    from diverseevol.kernels import _pruning

    monkeypatch.setattr(kn, "_FULL_PASS_SHARE", share)
    events: list[tuple] = []
    plan, update = _pruning.TrianglePruning.plan, kn._Selector._update

    def plan_spy(self, need, tile):
        work, rows, cost = plan(self, need, tile)
        events.append(("plan", len(work) + len(rows), cost, len(need)))
        return work, rows, cost

    def update_spy(self, c, cf, work, track, rows=None):
        events.append(("update", list(work), 0 if rows is None else len(rows), self.rows.n_phys))
        return update(self, c, cf, work, track, rows)

    monkeypatch.setattr(_pruning.TrianglePruning, "plan", plan_spy)
    monkeypatch.setattr(kn._Selector, "_update", update_spy)
    _pruned_one_start_run_matches_full(events.clear, block_rows=256)
    pairs = [(a, b) for a, b in zip(events, events[1:]) if a[0] == "plan" and b[0] == "update"]
    costly = [(a, b) for a, b in pairs if a[2] >= 0.7 * b[3] and a[1] > 1]
    cheap = [(a, b) for a, b in pairs if a[2] < 0.7 * b[3]]
    assert costly and cheap  # both kinds of pass occur in this run
    for a, b in costly:
        assert (b[1] == [(0, b[3])] and b[2] == 0) is (share < 1)  # whole only under the rule
    for a, b in cheap:
        assert b[1] != [(0, b[3])] or b[2] > 0 or a[1] == 1  # cheap plans stay pruned


def test_gathered_rows_go_in_one_job_per_thread_not_per_tile(monkeypatch):
    """The rows a pass gathers (pruned or filtered) are cut into one job per thread, at most ``gather_rows`` (1 MiB)
    each, not into tiles: 32-row jobs made each gathered row cost several contiguous ones. Bits stay a full pass's."""
    from diverseevol.kernels import _rowstore

    calls: list[list[int]] = []
    stores: list = []
    mapper = _rowstore.RowStore.map

    def map_spy(self, fn, items, *, caller=False):
        stores.append(self)
        calls.append([len(it) for it in items if isinstance(it, np.ndarray)])
        return mapper(self, fn, items, caller=caller)

    monkeypatch.setattr(_rowstore.RowStore, "map", map_spy)
    _pruned_one_start_run_matches_full(calls.clear, block_rows=32, n_threads=2)
    store = stores[-1]
    assert store.tile == 32 and store.gather_rows == (1 << 20) // (48 * store.itemsize)
    gathered = [c for c in calls if c]
    assert any(sum(c) > 4 * store.tile for c in gathered)  # passes that 32-row jobs would have cut into many
    for c in gathered:
        assert len(c) <= store.n_threads and max(c) <= store.gather_rows


def test_gathered_rows_without_regrouping_are_exact():
    emb = _clustered(5, 8000, 24, 40)
    ref = kcenter_select(emb, np.arange(50), 120, prune=False)
    stats: dict = {}
    got = kcenter_select(emb, np.arange(50), 120, prune=True, stats=stats, block_rows=256)
    np.testing.assert_array_equal(got, ref)
    assert stats["reorders"] == 0 and stats["evaluations"] < 0.3 * stats["evaluations_unpruned"]


def test_layouts_and_threads_agree():
    emb = _clustered(4, 4000, 20, 10, dtype=np.float32)
    pool = np.arange(0, 4000, 97)
    sparse = np.setdiff1d(np.arange(0, 4000, 5), pool)
    ref = kcenter_select(emb, pool, 60, candidate_idx=sparse, n_threads=1, prune=False)
    for opts in (
        {"n_threads": 2},
        {"max_copy_bytes": 0},  # gathered blocks ("stream" layout)
        {"prune": True, "block_rows": 7},
        {"prune": True, "max_copy_bytes": 0},
    ):
        stats: dict = {}
        got = kcenter_select(emb, pool, 60, candidate_idx=sparse, stats=stats, **opts)
        np.testing.assert_array_equal(got, ref, err_msg=str(opts))
    fortran = np.asfortranarray(emb)
    np.testing.assert_array_equal(kcenter_select(fortran, pool, 60, candidate_idx=sparse), ref)


def test_float16_input_computed_in_float32():
    emb = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float16)
    picks = kcenter_select(emb, [0, 1, 2], 10)
    exp = kcenter_select(emb.astype(np.float32), [0, 1, 2], 10)
    np.testing.assert_array_equal(picks, exp)


def test_cosine_equals_euclidean_on_normalised_rows():
    emb = np.random.default_rng(8).normal(size=(300, 10)) * np.random.default_rng(9).uniform(0.1, 10, (300, 1))
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    cos, cos_r = kcenter_select(emb, [3, 4], 25, metric="cosine", return_radii=True)
    euc, euc_r = kcenter_select(unit, [3, 4], 25, return_radii=True)
    np.testing.assert_array_equal(cos, euc)
    np.testing.assert_allclose(cos_r, euc_r**2 / 2, rtol=1e-9)


def test_whole_candidate_set_and_k_zero():
    emb = np.random.default_rng(0).normal(size=(30, 4))
    picks = kcenter_select(emb, np.arange(10), 20)
    assert sorted(picks.tolist()) == list(range(10, 30))
    nan_emb = np.full((30, 4), np.nan)
    out = kcenter_select(nan_emb, [0], 0)  # k = 0 never touches the data
    assert out.shape == (0,) and out.dtype == np.int64
    out, radii = kcenter_select(nan_emb, [0], 0, return_radii=True)
    assert radii.shape == (0,) and radii.dtype == np.float64


def test_unused_nonfinite_rows_are_fine():
    emb = np.random.default_rng(0).normal(size=(40, 3))
    emb[39] = np.nan
    picks = kcenter_select(emb, [0], 5, candidate_idx=np.arange(1, 39))
    assert 39 not in picks


GOOD = np.random.default_rng(0).normal(size=(20, 3))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"emb": np.zeros(5)}, ValidationError, "2-D"),
        ({"emb": np.zeros((2, 3, 4))}, ValidationError, "2-D"),
        ({"emb": np.zeros((0, 3))}, ValidationError, "at least one row"),
        ({"emb": np.zeros((3, 0))}, ValidationError, "at least one row"),
        ({"emb": np.array([["a", "b"]])}, ValidationError, "real numbers"),
        ({"pool_idx": [0.0, 1.0]}, IndexValidationError, "integer dtype"),
        ({"pool_idx": [0, 20]}, IndexValidationError, r"\[0, 20\)"),
        ({"pool_idx": [-1]}, IndexValidationError, "negative"),
        ({"pool_idx": [1, 1]}, IndexValidationError, "duplicates"),
        ({"pool_idx": [[0, 1]]}, IndexValidationError, "1-D"),
        ({"pool_idx": np.ones(20, bool)}, IndexValidationError, "boolean mask"),
        ({"candidate_idx": [0, 5]}, IndexValidationError, "disjoint"),
        ({"candidate_idx": [5, 5]}, IndexValidationError, "duplicates"),
        ({"candidate_idx": [3, 99]}, IndexValidationError, r"\[0, 20\)"),
        ({"k": -1}, ValidationError, ">= 0"),
        ({"k": 2.0}, ValidationError, "int"),
        ({"k": "3"}, ValidationError, "int"),
        ({"metric": "manhattan"}, ValidationError, "metric"),
        ({"prune": "yes"}, ValidationError, "prune"),
        ({"block_rows": 0}, ValidationError, "block_rows"),
        ({"backend": "nope"}, ValidationError, "backend"),
        ({"random_state": "seed"}, ValidationError, "random_state"),
        ({"return_radii": "yes"}, ValidationError, "return_radii"),
        ({"n_threads": 0}, ValidationError, "n_threads"),
        ({"max_copy_bytes": -1}, ValidationError, "max_copy_bytes"),
        ({"n_thread": 2}, ValidationError, "unknown option"),
    ],
)
def test_bad_input_raises_typed_error(kwargs, error, match):
    args = {"emb": GOOD, "pool_idx": [0, 1], "k": 3}
    args.update(kwargs)
    emb, pool, k = args.pop("emb"), args.pop("pool_idx"), args.pop("k")
    with pytest.raises(error, match=match):
        kcenter_select(emb, pool, k, backend=args.pop("backend", "numpy"), **args)


def test_k_too_large_names_both_numbers():
    with pytest.raises(PoolExhaustedError, match=r"k=19.*only 18 candidates"):
        kcenter_select(GOOD, [0, 1], 19)
    with pytest.raises(ValueError):  # also a builtin ValueError
        kcenter_select(GOOD, [0, 1], 4, candidate_idx=[5, 6, 7])


@pytest.mark.parametrize("where", ["pool", "candidate"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_rows_in_use_are_rejected(where, value):
    emb = GOOD.copy()
    row = 0 if where == "pool" else 7
    emb[row, 1] = value
    with pytest.raises(NonFiniteEmbeddingError, match=f"row {row}"):
        kcenter_select(emb, [0, 1], 3)
    sparse = emb.copy()
    with pytest.raises(NonFiniteEmbeddingError, match=f"row {row}"):
        kcenter_select(sparse, [0], 2, candidate_idx=[7, 15])


def test_overflowing_rows_and_zero_rows_for_cosine():
    emb = GOOD.astype(np.float32)
    emb[5] = 3e25  # finite, but its squared norm overflows float32
    with pytest.raises(NonFiniteEmbeddingError, match="overflows"):
        kcenter_select(emb, [0], 3)
    zero = GOOD.copy()
    zero[6] = 0.0
    with pytest.raises(ValidationError, match="non-zero norm"):
        kcenter_select(zero, [0], 3, metric="cosine")
    kcenter_select(zero, [0], 3)  # fine for euclidean


def test_stats_report_work_and_timings():
    stats: dict = {}
    kcenter_select(GOOD, [0], 5, backend="numpy", stats=stats, n_threads=1, progress=False)
    assert {"evaluations", "evaluations_unpruned", "reorders", "layout", "prune", "init_s", "pick_s"} <= set(stats)
    assert stats["n_threads"] == 1 and stats["init_s"] >= 0 and stats["pick_s"] >= 0


def test_errors_share_the_hierarchy():
    with pytest.raises(DiverseEvolError):
        kcenter_select(GOOD, [0, 0], 1)


def test_missing_path_is_a_validation_error(tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        kcenter_select(tmp_path / "missing.npy", [0], 1)
    bad = tmp_path / "bad.npy"
    bad.write_text("not an array")
    with pytest.raises(ValidationError, match="could not be opened"):
        kcenter_select(bad, [0], 1)


@pytest.mark.parametrize("d", [1, 3, 8])
def test_small_d_column_copy_gives_the_same_bits_as_row_reads(d):
    # d <= 8: full passes read a column-major copy of the rows; gathered (pruned) rows and a run
    # without the copy (max_copy_bytes=0 on a sparse candidate set: streamed rows) must agree bit for bit.
    rng = np.random.default_rng(d)
    x = rng.integers(-3, 4, size=(4000, d)).astype(np.float32) + rng.normal(size=(4000, d)).astype(np.float32)
    x[100:200] = x[12]  # exact duplicates tie exactly
    cand = np.arange(12, 4000, 3)
    runs = [
        kcenter_select(x, np.arange(1, 11), 60, candidate_idx=cand, return_radii=True, **kw)
        for kw in ({}, {"prune": False}, {"prune": True, "block_rows": 64}, {"max_copy_bytes": 0})
    ]
    want = kcenter_oracle(x, range(1, 11), cand, 60)
    np.testing.assert_array_equal(runs[0][0], want[0])
    for picks, radii in runs[1:]:
        np.testing.assert_array_equal(picks, runs[0][0])
        np.testing.assert_array_equal(radii, runs[0][1])


def test_clamp_at_zero_matches_np_maximum_bit_for_bit(monkeypatch):
    from diverseevol.kernels import _rowblocks

    monkeypatch.setattr(_rowblocks, "_ZEROS_ELEMS", 7)  # several chunks
    monkeypatch.setattr(_rowblocks, "_zeros", {})
    for dt in (np.float32, np.float64):
        tiny = np.finfo(dt).smallest_subnormal
        v = np.array([-0.0, 0.0, np.nan, -np.inf, np.inf, tiny, -tiny, -3.0, 2.5] * 5, dtype=dt)
        for a in (v, v[:3], v[::2]):  # contiguous, short, strided (the plain ufunc)
            want = np.maximum(a, 0)
            got = a.copy()
            _rowblocks.clamp_at_zero(got)
            assert got.tobytes() == want.tobytes()
