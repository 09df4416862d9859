"""Block arithmetic of the numpy K-Center kernel: lazy catch-ups over several picks at once, and its helpers.

A stale row is brought up to date against a block of pending picks with one product (rows x picks).
Each entry must be bit for bit the distance the one-pick update computes, and the result of a run
must be the picks and radii of ``prune=False`` (every distance computed, one pick at a time).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from kcenter_oracle import kcenter_oracle

from diverseevol import kcenter_select
from diverseevol.kernels import _lazyeval
from diverseevol.kernels import _numpy as kn
from diverseevol.kernels._rowblocks import d2_from_dots
from diverseevol.kernels._rowstore import RowStore


def _store(x: np.ndarray, cosine: bool, shift: int | None) -> RowStore:
    store = RowStore(x, np.arange(len(x)), cosine=cosine, block_rows=None, n_threads=1, max_copy_bytes=None)
    store.set_shift(shift)
    store.compute_norms()
    return store


@pytest.mark.parametrize("d", [3, 8, 9, 16, 100])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cosine, shift", [(False, None), (False, 5), (True, None)])
def test_block_d2_equals_one_center_at_a_time_bit_for_bit(d, dtype, cosine, shift):
    rng = np.random.default_rng(d)
    x = (rng.normal(size=(300, d)) * rng.choice([1e-3, 1.0, 1e3], size=(300, 1)) + 7.0).astype(dtype)
    store = _store(x, cosine, shift)
    sel = np.sort(rng.choice(300, 120, replace=False))
    X = store.take(sel)
    centers = [store.center(int(r)) for r in (4, 77, 150, 151, 299)]
    W = np.stack([c for c, _ in centers])
    cf = tuple(None if f[0] is None else np.asarray(f, dtype=store.dtype) for f in zip(*[f for _, f in centers]))
    got = store.block_d2(X, sel, W, cf)
    for k, (c, f) in enumerate(centers):
        want = store.d2_from_dots(store.row_dots(X, c), sel, f)
        assert got[:, k].tobytes() == want.tobytes()


def test_few_rows_take_the_same_column_sums(monkeypatch):
    # Up to _FEW_ROWS rows (centers) the column rule runs as one product and a running sum.
    rng = np.random.default_rng(0)
    for d in range(1, 9):
        x = (rng.normal(size=(200, d)) * 10.0 ** rng.integers(-15, 15, size=(200, d))).astype(np.float32)
        store = _store(x, False, None)
        c = x[3]
        many = store.row_dots(x, c)  # 200 rows: column by column
        few = store.row_dots(x[:40], c)  # 40 rows: np.add.accumulate
        assert few.tobytes() == many[:40].tobytes()
        assert store.sq_norms(x[:5]).tobytes() == store.row_dots(x, x)[:5].tobytes()


def _clustered(n: int, d: int, n_clusters: int, seed: int, offset: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_clusters, d)) * 6
    return (centers[rng.integers(0, n_clusters, n)] + rng.normal(size=(n, d)) + offset).astype(np.float32)


@pytest.mark.parametrize("metric, offset", [("euclidean", 0.0), ("euclidean", 300.0), ("cosine", 0.0)])
@pytest.mark.parametrize("pool", [np.arange(0, 40, 4), np.empty(0, dtype=np.int64)])
def test_lazy_blocks_give_the_picks_and_radii_of_every_distance(metric, offset, pool, monkeypatch):
    # Small blocks and narrow groups: many blocks, groups and catch-ups per run.
    monkeypatch.setattr(kn, "_LAZY_BLOCK", 3)
    monkeypatch.setattr(kn, "_LAZY_GROUP_RATIO", 1.2)
    x = _clustered(3000, 24, 40, seed=1, offset=offset)
    ref = kcenter_select(x, pool, 150, metric=metric, prune=False, lazy=False, random_state=2, return_radii=True)
    for prune in (False, True, "auto"):
        stats: dict = {}
        got = kcenter_select(x, pool, 150, metric=metric, prune=prune, lazy=True, random_state=2,
                             return_radii=True, stats=stats)
        np.testing.assert_array_equal(got[0], ref[0])
        assert got[1].tobytes() == ref[1].tobytes()
        assert stats["lazy"] is True and stats["evaluations"] < stats["evaluations_unpruned"]


def test_lazy_blocks_match_the_oracle(monkeypatch):
    monkeypatch.setattr(kn, "_LAZY_BLOCK", 2)
    x = _clustered(200, 20, 9, seed=4).astype(np.float64)
    for pool in (np.array([3, 50, 120]), np.empty(0, dtype=np.int64)):
        picks, radii = kcenter_select(x, pool, 60, lazy=True, random_state=0, return_radii=True)
        first = None if len(pool) else int(picks[0])
        want, want_r = kcenter_oracle(x, pool, None, 60, first_pick=first)
        np.testing.assert_array_equal(picks, want)
        np.testing.assert_allclose(radii, want_r, rtol=1e-9, atol=1e-9)


def test_catch_up_of_every_row_in_blocks(monkeypatch):
    # A lazy search that can never prove a pick catches every row up (in blocks of pending picks) each time.
    monkeypatch.setattr(_lazyeval.LazyState, "search", lambda self, *a, **k: None)
    monkeypatch.setattr(kn, "_LAZY_BLOCK", 4)
    x = _clustered(2500, 32, 30, seed=6)
    ref = kcenter_select(x, np.arange(5), 80, prune=False, lazy=False, return_radii=True)
    stats: dict = {}
    got = kcenter_select(x, np.arange(5), 80, prune=False, lazy=True, return_radii=True, stats=stats)
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1].tobytes() == ref[1].tobytes()
    assert stats["lazy_fallbacks"] >= 1


def test_structured_rows_with_a_pool_stay_lazy_where_pruning_cannot_pay():
    # 128 columns: pruning can never pay (limit 1 - 256/128 < 0); clustered rows (estimated share < 0.95)
    # keep lazy="auto" on (it was turned off there while catch-ups went one pick at a time).
    x = _clustered(20000, 128, 100, seed=2)
    pool = np.arange(0, 20000, 200)
    stats: dict = {}
    got = kcenter_select(x, pool, 60, return_radii=True, stats=stats)
    ref = kcenter_select(x, pool, 60, prune=False, lazy=False, return_radii=True)
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1].tobytes() == ref[1].tobytes()
    assert stats["need_estimate"] < 0.95 and stats["prune"] is False and stats["lazy"] is True


def test_blocks_never_mix_picks_with_and_without_a_pruning_id():
    lazy = _lazyeval.LazyState(10, adaptive=False)
    c = np.zeros(3, dtype=np.float32)
    for cid in (None, None, None, 0, 1, 2, 3, 4, None):
        lazy.push(0, c, (0.0, None, None), cid)
    assert lazy.blocks(0, 9, 4) == [(0, 3), (3, 7), (7, 8), (8, 9)]
    assert lazy.blocks(2, 9, 10) == [(2, 3), (3, 8), (8, 9)]
    assert lazy.blocks(9, 9, 4) == []


def test_map_with_the_calling_thread_keeps_order_and_raises():
    x = np.random.default_rng(0).standard_normal((3000, 32)).astype(np.float32)
    store = RowStore(x, np.arange(3000), cosine=False, block_rows=None, n_threads=2, max_copy_bytes=None)
    try:
        me = threading.get_ident()
        seen: list[int] = []

        def work(i: int) -> int:
            seen.append(threading.get_ident())
            time.sleep(0.002)  # releases the GIL, as the numpy work of a pass does
            return i * i

        assert store.map(work, list(range(40)), caller=True) == [i * i for i in range(40)]
        assert me in seen  # the calling thread took items too

        def fail(i: int) -> int:
            if i == 7:
                raise ValueError("item 7")
            return i

        with pytest.raises(ValueError, match="item 7"):
            store.map(fail, list(range(20)), caller=True)
    finally:
        store.close()


def test_d2_from_dots_broadcasts_per_entry_like_one_center():
    # The block path relies on d2_from_dots applying the same operations per entry for (rows, 1) x (1, centers).
    rng = np.random.default_rng(1)
    dots = rng.normal(size=(7, 5)).astype(np.float32)
    sq = rng.random(7).astype(np.float32) * 10
    csq = rng.random(5).astype(np.float32) * 10
    got = d2_from_dots(dots.copy(), (sq[:, None], None, None), (csq[None, :], None, None))
    for k in range(5):
        want = d2_from_dots(dots[:, k].copy(), (sq, None, None), (csq[k], None, None))
        assert got[:, k].tobytes() == want.tobytes()


@pytest.mark.parametrize("d", [3, 16])
def test_unchecked_nonfinite_rows_inside_the_candidates_span(d, tmp_path):
    # Rows neither pool nor candidate are never checked; inside the span the kernel reads in place they once
    # turned a dead row's running minimum into NaN, which np.argmax picked (a row that was no candidate).
    rng = np.random.default_rng(d)
    x = rng.random((400, d))
    x[[20, 21, 300]] = np.nan
    x[301] = np.inf
    cand = np.setdiff1d(np.arange(5, 400), [20, 21, 300, 301])
    clean = np.nan_to_num(x, nan=0.0, posinf=0.0)
    want = kcenter_oracle(clean, [0, 1], cand, 30)[0]
    np.save(tmp_path / "x.npy", x)
    for emb in (x, x.astype(np.float32), str(tmp_path / "x.npy")):
        for kw in ({}, {"prune": False}, {"prune": True}, {"lazy": True}, {"max_copy_bytes": 0}):
            picks = kcenter_select(emb, [0, 1], 30, candidate_idx=cand, **kw)
            np.testing.assert_array_equal(picks, want)
