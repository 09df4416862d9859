"""BLAS-filtered passes of the numpy kernel: BLAS rules rows out, the row rule computes the rest, the bits stay.

Oracles: the same kernel with filtering switched off (picks and radii bit for bit), the brute-force
oracle (tests/kcenter_oracle.py) on duplicated rows, and the row rule itself for the test's soundness.
"""

from __future__ import annotations

import numpy as np
import pytest

from diverseevol import kcenter_select
from diverseevol.kernels._blasfilter import filter_margin, filtered_block_pairs, filtered_rows
from diverseevol.kernels._rowblocks import row_products
from diverseevol.kernels._rowstore import RowStore

from kcenter_oracle import kcenter_oracle


def _data(kind: str, n: int, d: int, dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "random":
        x = rng.standard_normal((n, d))
    elif kind == "clustered":
        centers = rng.standard_normal((20, d)) * 4
        x = centers[rng.integers(20, size=n)] + rng.standard_normal((n, d)) * 0.3
    elif kind == "duplicates":
        x = rng.standard_normal((n // 2, d))
        x = np.concatenate([x, x])[rng.permutation(2 * (n // 2))]
    elif kind == "lattice":  # few distinct values: many exactly equal distances
        x = rng.integers(-2, 3, size=(n, d))
    elif kind == "offset":  # a large common mean: the shifted arithmetic is engaged
        x = 1000.0 + rng.standard_normal((n, d))
    else:
        raise ValueError(kind)
    return np.ascontiguousarray(x, dtype=dtype)


def _run(x, pool, k, filtered, monkeypatch, **kw):
    stats: dict = {}
    picks, radii = kcenter_select(x, pool, k, backend="numpy", random_state=1, progress=False,
                                  return_radii=True, stats=stats, blas_filter=filtered, **kw)
    return np.asarray(picks), np.asarray(radii), stats


@pytest.mark.parametrize("kind", ["random", "clustered", "duplicates", "lattice", "offset"])
@pytest.mark.parametrize("d", [9, 24, 128, 300])
def test_filtered_passes_give_the_picks_and_radii_of_unfiltered_ones(monkeypatch, kind, d):
    n = 6000 if d <= 128 else 3000
    for dtype in (np.float32, np.float64):
        x = _data(kind, n, d, dtype, seed=d)
        for pool in (np.arange(0, n, n // 16), np.empty(0, dtype=np.int64)):
            for prune, lazy in ((False, False), (True, False), (False, True), ("auto", "auto")):
                ref_p, ref_r, ref_s = _run(x, pool, 60, False, monkeypatch, prune=prune, lazy=lazy)
                got_p, got_r, got_s = _run(x, pool, 60, True, monkeypatch, prune=prune, lazy=lazy)
                where = (kind, d, dtype.__name__, len(pool), prune, lazy)
                np.testing.assert_array_equal(got_p, ref_p, err_msg=str(where))
                np.testing.assert_array_equal(got_r, ref_r, err_msg=str(where))  # bit for bit
                assert got_s["filter"] and not ref_s["filter"], where
                if kind == "offset":
                    assert got_s["shift"], where


def test_filtering_rules_out_most_of_the_work_on_clusters(monkeypatch):
    x = _data("clustered", 20000, 128, np.float32, seed=5)
    pool = np.arange(0, 20000, 1000)
    _, _, st = _run(x, pool, 100, True, monkeypatch, prune=False, lazy=False)
    considered = st["evaluations"] + st["filtered_out"]
    assert considered == st["evaluations_unpruned"]  # a full pass per pick, each row considered once
    assert st["evaluations"] < 0.1 * considered  # the row rule ran on under a tenth of them


def test_duplicates_tie_exactly_and_match_the_oracle(monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((700, 64)).astype(np.float32)
    x[350:] = x[:350]  # every row twice: the copy at index + 350 must never win its tie
    pool = np.array([0, 1, 2])
    for prune, lazy in ((False, False), (False, True), ("auto", "auto")):
        picks, radii, st = _run(x, pool, 40, True, monkeypatch, prune=prune, lazy=lazy)
        assert st["filter"]
        assert np.all(picks < 350)
        ref, ref_r = kcenter_oracle(x, pool, None, 40)
        np.testing.assert_array_equal(picks, ref)
        np.testing.assert_allclose(radii, ref_r, rtol=1e-4)


def test_cosine_streamed_and_short_rows_are_not_filtered(monkeypatch, tmp_path):
    x = _data("random", 3000, 64, np.float32, seed=2)
    _, _, st = _run(x, np.arange(10), 20, True, monkeypatch, metric="cosine")
    assert not st["filter"]
    _, _, st = _run(_data("random", 3000, 8, np.float32, seed=2), np.arange(10), 20, True, monkeypatch)
    assert not st["filter"]
    path = tmp_path / "z.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")
    sparse_pool = np.flatnonzero(np.arange(3000) % 3 != 0)  # candidates too sparse to read in place
    _, _, st = _run(mm, sparse_pool, 20, True, monkeypatch)
    assert not st["filter"] and st["layout"] == "stream"
    _, _, st = _run(mm, np.arange(10), 20, True, monkeypatch)  # dense candidates of a memmap: read in place, filtered
    assert st["filter"] and st["layout"] == "span"
    wide = _data("random", 6000, 300, np.float32, seed=2)  # above 128 columns "auto" filters lazy catch-ups only
    for lazy in (False, True):
        ref = _run(wide, np.arange(10), 40, False, monkeypatch, prune=False, lazy=lazy)
        auto = _run(wide, np.arange(10), 40, "auto", monkeypatch, prune=False, lazy=lazy)
        forced = _run(wide, np.arange(10), 40, True, monkeypatch, prune=False, lazy=lazy)
        for got in (auto, forced):
            np.testing.assert_array_equal(got[0], ref[0])
            np.testing.assert_array_equal(got[1], ref[1])
        if not lazy:  # full passes of one center: filtered only when forced
            assert forced[2]["filtered_out"] > 0 and auto[2]["filtered_out"] == 0


def _store(x: np.ndarray) -> RowStore:
    store = RowStore(x, np.arange(len(x)), cosine=False, block_rows=None, n_threads=1, max_copy_bytes=None)
    store.compute_norms()
    return store


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_ruled_out_row_is_strictly_farther_than_its_minimum(dtype):
    """Soundness at the edge: minima set to each row's own row-rule distance, nudged by a few ulps either way."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((5000, 128)) * rng.uniform(0.1, 10, size=(5000, 1))).astype(dtype)
    store = _store(x)
    M = filter_margin(store)
    for c_row in (0, 17, 4999):
        c = x[c_row].copy()
        csq = row_products(c[None, :], c)[0]
        r = row_products(x, c) * dtype(-2) + store.sqn + csq  # the row rule's distance (d2_from_dots' order)
        r = np.maximum(r, 0)
        shift = (float(csq) - M) * 0.5
        for ulps in (-4, -1, 0, 1, 4, 64):
            mind = r.copy()
            for _ in range(abs(ulps)):
                mind = np.nextafter(mind, np.inf if ulps > 0 else -np.inf)
            hits = np.zeros(len(x), dtype=bool)
            hits[filtered_rows(store, mind, 0, len(x), c, shift)] = True
            assert np.all(r[~hits] > mind[~hits]), (c_row, ulps)  # ruled out: strictly above the minimum
            if ulps >= 0:
                assert hits.all()  # every row at (or above) its own distance may tie or drop: kept
        far = r * dtype(0.9) - dtype(1.0)  # minima well below every distance: (almost) all ruled out
        assert len(filtered_rows(store, far, 0, len(x), c, shift)) <= 1  # the center itself (distance 0) may stay


def test_block_pairs_leave_out_centers_a_row_already_holds():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((50, 32)).astype(np.float32)
    store = _store(x)
    M = filter_margin(store)
    W = x[:5].copy()
    csq = np.array([row_products(w[None, :], w)[0] for w in W])
    sel = np.arange(50)
    mind = np.full(50, np.inf, dtype=np.float32)  # no center yet: every pair may lower
    pairs = filtered_block_pairs(store, mind, sel, x, W, (csq - M) * 0.5)
    assert pairs.all()
    held = np.arange(50) % 6  # row i holds the first i % 6 centers
    pairs = filtered_block_pairs(store, mind, sel, x, W, (csq - M) * 0.5, held)
    np.testing.assert_array_equal(pairs, np.arange(5)[None, :] >= held[:, None])


def test_counters_add_up_to_the_work_of_a_plain_run(monkeypatch):
    """Rule-computed plus ruled-out distances never exceed what prune=False, lazy=False computes (one per row per pick).

    500 equidistant clusters and k = 500: lazy catch-ups apply more pending picks than one block holds, to rows
    of different staleness (a miscount of those once reported 200% of the plain run's work).
    """
    rng = np.random.default_rng(1)
    centers = (rng.standard_normal((500, 128)) * 2).astype(np.float32)
    x = rng.standard_normal((50000, 128), dtype=np.float32) + centers[rng.integers(0, 500, size=50000)]
    for lazy in (False, "auto"):
        _, _, st = _run(x, np.arange(0, 50000, 500), 500 if lazy else 60, True, monkeypatch, lazy=lazy)
        assert st["filtered_out"] > 0
        assert st["evaluations"] + st["filtered_out"] <= st["evaluations_unpruned"], lazy
