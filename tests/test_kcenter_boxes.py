"""Box pruning of the numpy K-Center kernel at small d (diverseevol.kernels._boxes) and its switch point.

Box pruning copies the rows in a space-filling-curve order and skips tiles whose bounding box is
provably too far from a new center. It must give the picks of the brute-force oracle and the very
bits (picks and radii) of ``prune=False``, which computes every distance.
"""

from __future__ import annotations

import numpy as np
import pytest
from kcenter_oracle import kcenter_oracle

from diverseevol import kcenter_select
from diverseevol.kernels import _boxes
from diverseevol.kernels import _numpy as kn


@pytest.fixture
def small_switch(monkeypatch):
    """Box pruning from 300 candidates and 8 picks (the defaults are sized for speed, too big for the oracle)."""
    monkeypatch.setattr(kn, "_BOX_MIN_ROWS", 300)
    monkeypatch.setattr(kn, "_BOX_MIN_K", 8)
    monkeypatch.setattr(_boxes, "_TILE_ROWS", 16)


def _data(kind: str, n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.random((n, d)).astype(np.float32)
    if kind == "offset":  # a large common mean: the shifted arithmetic engages (float64: no float32 near-ties)
        return rng.random((n, d)) + 40.0
    if kind == "clustered":
        centers = 8.0 * rng.normal(size=(12, d))
        return (centers[rng.integers(0, 12, n)] + rng.normal(size=(n, d))).astype(np.float32)
    return rng.integers(0, 5, size=(n, d)).astype(np.float32)  # "grid": many exact ties


def _run(x, pool, k, **kw):
    stats: dict = {}
    picks, radii = kcenter_select(x, pool, k, random_state=3, return_radii=True, stats=stats, **kw)
    return picks, radii, stats


@pytest.mark.parametrize("d", [1, 3, 8])
@pytest.mark.parametrize("kind", ["uniform", "offset", "clustered", "grid"])
@pytest.mark.parametrize("pool_size", [0, 7])
def test_box_pruning_matches_oracle_and_every_distance(small_switch, d, kind, pool_size):
    x = _data(kind, 420, d, seed=d)
    pool = np.arange(3, 3 + 3 * pool_size, 3)
    picks, radii, stats = _run(x, pool, 60)
    assert stats["boxes"] is True
    first = None if pool_size else int(picks[0])
    want, want_r = kcenter_oracle(x, pool, None, 60, first_pick=first)
    np.testing.assert_array_equal(picks, want)
    np.testing.assert_allclose(radii, want_r, rtol=1e-4, atol=1e-4)  # float32 rounding of |x|^2 + |c|^2 - 2 x.c
    every_p, every_r, every_stats = _run(x, pool, 60, prune=False)
    assert every_stats["boxes"] is False
    np.testing.assert_array_equal(picks, every_p)
    assert radii.tobytes() == every_r.tobytes()


def test_duplicates_in_different_tiles_tie_to_the_lowest_index(small_switch):
    rng = np.random.default_rng(0)
    x = rng.random((500, 3)).astype(np.float32)
    x[[40, 260, 499]] = [9.0, 9.0, 9.0]  # three exact copies of the farthest point, far apart in row order
    x[[10, 320]] = [-7.0, 3.0, 0.5]
    picks, _, stats = _run(x, [0, 1], 20)
    assert stats["boxes"] is True
    np.testing.assert_array_equal(picks, kcenter_oracle(x, [0, 1], None, 20)[0])
    assert picks[0] == 40 and 260 not in picks[:2]


def test_switch_point_both_sides_against_oracle_and_default(small_switch):
    # 300 candidates take the box path, 299 do not; both give the oracle's picks (float64 rows: no float32
    # near-ties) and prune=False's bits (float64 and float32 rows).
    x64 = _data("offset", 330, 3, seed=5)
    for n_cand, boxes in ((300, True), (299, False)):
        cand = np.arange(30, 30 + n_cand)
        for x in (x64, x64.astype(np.float32)):
            picks, radii, stats = _run(x, [0, 5], 40, candidate_idx=cand)
            assert stats["boxes"] is boxes
            if x.dtype == np.float64:
                np.testing.assert_array_equal(picks, kcenter_oracle(x, [0, 5], cand, 40)[0])
            every_p, every_r, _ = _run(x, [0, 5], 40, candidate_idx=cand, prune=False)
            np.testing.assert_array_equal(picks, every_p)
            assert radii.tobytes() == every_r.tobytes()


def _float64_farthest_first(x: np.ndarray, first: int, k: int) -> np.ndarray:
    """Farthest-first by plain float64 differences (O(N k)): an oracle for inputs too big for the N x N one."""
    x = x.astype(np.float64)
    mind = np.full(len(x), np.inf)
    picks = [first]
    for _ in range(k - 1):
        mind = np.minimum(mind, ((x - x[picks[-1]]) ** 2).sum(axis=1))
        mind[picks] = -1
        picks.append(int(np.argmax(mind)))
    return np.array(picks)


@pytest.mark.parametrize("offset", [0.0, 25.0])
def test_default_switch_point_and_work_saved(offset):
    # The real thresholds: _BOX_MIN_ROWS candidates and _BOX_MIN_K picks take the box path, one fewer
    # of either does not; the picks equal a float64 brute force and prune=False bit for bit.
    n, k = kn._BOX_MIN_ROWS, kn._BOX_MIN_K + 40
    x = (np.random.default_rng(1).random((n + 1, 3)) + offset).astype(np.float64)
    for n_cand, kk, boxes in ((n, k, True), (n - 1, k, False), (n, kn._BOX_MIN_K - 1, False)):
        cand = np.arange(1, 1 + n_cand)
        picks, radii, stats = _run(x, [], kk, candidate_idx=cand)
        assert stats["boxes"] is boxes
        want = _float64_farthest_first(x[cand], int(np.searchsorted(cand, picks[0])), kk)
        np.testing.assert_array_equal(picks, cand[want])
        every_p, every_r, _ = _run(x, [], kk, candidate_idx=cand, prune=False)
        np.testing.assert_array_equal(picks, every_p)
        assert radii.tobytes() == every_r.tobytes()
        if boxes:
            assert stats["evaluations"] < 0.5 * stats["evaluations_unpruned"]


def test_box_pruning_is_off_where_it_does_not_apply(small_switch):
    x = _data("uniform", 420, 3, seed=2)
    assert _run(x, [0], 30, metric="cosine")[2]["boxes"] is False
    assert _run(x, [0], 30, prune=True)[2]["boxes"] is False  # prune=True keeps the triangle pruning
    assert _run(x, [0], 30, lazy=True)[2]["boxes"] is False
    assert _run(x, [0], 30, max_copy_bytes=0)[2]["boxes"] is False  # no room for the sorted copy
    assert _run(_data("uniform", 420, 9, seed=2), [0], 30)[2]["boxes"] is False  # d > MAX_D


def test_spatial_order_is_a_permutation_with_compact_tiles():
    rng = np.random.default_rng(0)
    X = rng.random((4096, 2)).astype(np.float32)
    order = _boxes.spatial_order(X)
    assert np.array_equal(np.sort(order), np.arange(4096))
    tiles = X[order].reshape(32, 128, 2)
    extent = (tiles.max(axis=1) - tiles.min(axis=1)).max(axis=1)
    assert np.median(extent) < 0.3  # a tile of 128 unordered rows spans about the whole unit square
    same = np.zeros((10, 3), dtype=np.float32)
    assert np.array_equal(np.sort(_boxes.spatial_order(same)), np.arange(10))  # constant columns


def test_unused_nonfinite_rows_inside_the_span_are_fine(small_switch):
    # Rows neither pool nor candidate are never checked; box pruning sorts and tiles the candidates only.
    x = _data("uniform", 500, 3, seed=8)
    x[[20, 21, 300]] = [np.nan, np.inf, -np.inf]
    cand = np.setdiff1d(np.arange(5, 500), [20, 21, 300])
    picks, radii, stats = _run(x, [0, 1], 40, candidate_idx=cand)
    assert stats["boxes"] is True
    want = kcenter_oracle(np.nan_to_num(x, posinf=0.0, neginf=0.0), [0, 1], cand, 40)[0]
    np.testing.assert_array_equal(picks, want)
    every_p, every_r, _ = _run(x, [0, 1], 40, candidate_idx=cand, prune=False)
    np.testing.assert_array_equal(picks, every_p)
    assert radii.tobytes() == every_r.tobytes()
