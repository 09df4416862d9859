"""Property tests (hypothesis) for kcenter_select: invariants that hold for any input."""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings
from hypothesis import strategies as st

from diverseevol import kcenter_select


@st.composite
def problems(draw):
    n = draw(st.integers(2, 40))
    d = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["normal", "grid", "duplicates"]))
    if kind == "normal":
        emb = rng.normal(size=(n, d))
    elif kind == "grid":
        emb = rng.integers(-2, 3, size=(n, d)).astype(float)
    else:
        emb = rng.normal(size=(max(1, n // 3), d))[rng.integers(0, max(1, n // 3), size=n)]
    emb = emb.astype(draw(st.sampled_from([np.float32, np.float64])))
    perm = rng.permutation(n)
    n_pool = draw(st.integers(0, n - 1))
    pool = perm[:n_pool]
    rest = perm[n_pool:]
    n_cand = draw(st.integers(1, len(rest)))
    cand = rest[:n_cand]
    k = draw(st.integers(1, n_cand))
    metric = draw(st.sampled_from(["euclidean", "cosine"]))
    if metric == "cosine":
        emb[np.linalg.norm(emb, axis=1) == 0] = 1.0  # cosine needs non-zero rows
    return emb, pool, cand, k, metric, seed


@settings(max_examples=60, deadline=None)
@given(problems())
def test_invariants(problem):
    emb, pool, cand, k, metric, seed = problem
    picks, radii = kcenter_select(
        emb, pool, k, candidate_idx=cand, metric=metric, random_state=seed, return_radii=True, block_rows=4
    )
    # k distinct picks, all candidates, none in the pool
    assert picks.shape == (k,) and picks.dtype == np.int64
    assert len(np.unique(picks)) == k
    assert np.isin(picks, cand).all()
    assert not np.isin(picks, pool).any()
    # covering radius never increases; only a first pick from an empty pool is infinite
    assert np.all(np.diff(radii) <= 0)
    assert np.isinf(radii[0]) == (len(pool) == 0)
    assert np.all(np.isfinite(radii[1:])) and np.all(radii[1:] >= 0)
    # order of the index arrays does not matter
    rng = np.random.default_rng(seed)
    shuffled = kcenter_select(
        emb, rng.permutation(pool), k, candidate_idx=rng.permutation(cand), metric=metric,
        random_state=seed, block_rows=4,
    )
    np.testing.assert_array_equal(shuffled, picks)
    # pruning never changes the result
    for prune in (True, False):
        again = kcenter_select(
            emb, pool, k, candidate_idx=cand, metric=metric, random_state=seed, prune=prune, block_rows=3
        )
        np.testing.assert_array_equal(again, picks)


@settings(max_examples=40, deadline=None)
@given(problems())
def test_each_radius_is_the_distance_to_the_nearest_earlier_center(problem):
    emb, pool, cand, k, metric, seed = problem
    picks, radii = kcenter_select(emb, pool, k, candidate_idx=cand, metric=metric, random_state=seed,
                                  return_radii=True)
    x = emb.astype(np.float64)
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    centers = list(pool)
    for p, r in zip(picks, radii):
        if centers:
            d = np.sqrt(((x[centers] - x[p]) ** 2).sum(1)).min()
            expected = d**2 / 2 if metric == "cosine" else d
            # float32 norm expansion loses absolute accuracy around |x|^2 * eps
            tol = 1e-6 if emb.dtype == np.float64 else 2e-3 * (1 + np.abs(x).max())
            assert abs(r - expected) <= tol
            # and the pick is (up to rounding) the farthest remaining candidate
            remaining = np.setdiff1d(cand, picks[: list(picks).index(p)])
            dd = np.sqrt(((x[remaining][:, None, :] - x[centers][None, :, :]) ** 2).sum(-1)).min(1)
            far = (dd**2 / 2 if metric == "cosine" else dd).max()
            assert expected >= far - tol
        centers.append(p)


@settings(max_examples=80, deadline=None)
@given(problems(), st.sampled_from([(1, 2, 2, 1), (2, 4, 8, 2), (1, 3, 4, 1)]), st.sampled_from([True, "auto"]))
def test_lazy_evaluation_is_bit_identical(problem, tuning, prune):
    # Tiny lazy batches and epoch sets so that problems of a few dozen rows exercise every lazy path
    # (batch growth, epoch renewal, fallbacks, eager stretches).
    from diverseevol.kernels import _lazyeval

    emb, pool, cand, k, metric, seed = problem
    names = ("_LAZY_BATCH", "_LAZY_GROWTH", "_EPOCH_ROWS", "_LAZY_MAX_FRACTION")
    saved = {name: getattr(_lazyeval, name) for name in names}
    common = dict(candidate_idx=cand, metric=metric, random_state=seed, return_radii=True)
    ref = kcenter_select(emb, pool, k, prune=False, lazy=False, **common)
    try:
        for name, value in zip(names, tuning):
            setattr(_lazyeval, name, value)
        got = kcenter_select(emb, pool, k, prune=prune, lazy=True, block_rows=3, **common)
    finally:
        for name, value in saved.items():
            setattr(_lazyeval, name, value)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
