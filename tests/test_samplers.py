"""Built-in samplers: random, kcenter, least_confidence, margin, entropy."""

from __future__ import annotations

import numpy as np
import pytest
from kcenter_oracle import kcenter_oracle

from diverseevol import SelectionContext, get_sampler
from diverseevol.errors import MissingSignalError, PoolExhaustedError, ValidationError
from diverseevol.samplers import (
    EntropySampler,
    KCenterSampler,
    LeastConfidenceSampler,
    MarginSampler,
    RandomSampler,
    Selection,
)


def _ctx(n=40, pool=(0, 1, 2), cand=None, seed=0, **kw):
    pool = np.asarray(pool, dtype=np.int64)
    if cand is None:
        cand = np.setdiff1d(np.arange(n), pool)
    return SelectionContext(pool_idx=pool, candidate_idx=np.asarray(cand), rng=np.random.default_rng(seed), **kw)


# ------------------------------------------------------------------ requires
def test_requires_declared():
    assert RandomSampler.requires == frozenset()
    assert KCenterSampler.requires == frozenset({"embeddings"})
    assert LeastConfidenceSampler.requires == frozenset({"scores:confidence"})
    assert MarginSampler.requires == frozenset({"scores:margin"})
    assert EntropySampler.requires == frozenset({"scores:entropy"})


@pytest.mark.parametrize(
    "name, signal, hint",
    [
        ("least_confidence", "scores:confidence", "scores={'confidence': values}"),
        ("margin", "scores:margin", "scores={'margin': values}"),
        ("entropy", "scores:entropy", "scores={'entropy': values}"),
        ("kcenter", "embeddings", "embeddings=emb"),
    ],
)
def test_missing_signal_says_which_and_how(name, signal, hint):
    ctx = _ctx(scores={"other": np.zeros(40)})
    with pytest.raises(MissingSignalError) as info:
        get_sampler(name).select(ctx, 3)
    msg = str(info.value)
    assert repr(signal) in msg and hint in msg and "scores:other" in msg
    assert isinstance(info.value, ValueError)


# ------------------------------------------------------------------ random
def test_random_is_a_subset_and_depends_on_the_candidate_set_only():
    cand = np.arange(10, 60)
    a = RandomSampler().select(_ctx(n=60, pool=range(10), cand=cand, seed=3), 20)
    b = RandomSampler().select(_ctx(n=60, pool=range(10), cand=cand[::-1].copy(), seed=3), 20)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int64 and len(np.unique(a)) == 20 and np.isin(a, cand).all()
    c = RandomSampler().select(_ctx(n=60, pool=range(10), cand=cand, seed=4), 20)
    assert not np.array_equal(a, c)


def test_random_is_uniform():
    # 10 candidates, k = 3, 3000 draws: each candidate expected 900 times (sd ~ 25).
    rng = np.random.default_rng(11)
    counts = np.zeros(20, dtype=int)
    s = RandomSampler()
    for _ in range(3000):
        ctx = SelectionContext(pool_idx=np.arange(10), candidate_idx=np.arange(10, 20), rng=rng)
        counts[s.select(ctx, 3)] += 1
    assert counts[:10].sum() == 0
    assert np.abs(counts[10:] - 900).max() < 6 * 25


def test_random_uses_only_ctx_rng():
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    RandomSampler().select(_ctx(), 5)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


# ------------------------------------------------------------------ uncertainty
def _oracle(values, cand, k, highest_first):
    key = (lambda i: (-values[i], i)) if highest_first else (lambda i: (values[i], i))
    return np.array(sorted(cand.tolist(), key=key)[:k], dtype=np.int64)


@pytest.mark.parametrize(
    "cls, signal, highest_first",
    [(LeastConfidenceSampler, "confidence", False), (MarginSampler, "margin", False), (EntropySampler, "entropy", True)],
)
@pytest.mark.parametrize("seed", range(5))
def test_uncertainty_matches_sort_oracle_with_ties(cls, signal, highest_first, seed):
    rng = np.random.default_rng(seed)
    n = 200
    values = rng.choice([0.1, 0.25, 0.5, 0.75, 0.9], size=n)  # many ties
    pool = rng.choice(n, size=20, replace=False)
    cand = rng.permutation(np.setdiff1d(np.arange(n), pool))[:120]  # unsorted, a subset
    ctx = SelectionContext(pool_idx=pool, candidate_idx=cand, rng=rng, scores={signal: values})
    for k in (0, 1, 17, 120):
        got = cls().select(ctx, k)
        np.testing.assert_array_equal(got, _oracle(values, cand, k, highest_first))
        assert got.dtype == np.int64


def test_uncertainty_hand_computed():
    scores = {
        "confidence": np.array([0.0, 0.9, 0.2, 0.5, 0.2, 0.7]),
        "margin": np.array([0.0, 0.05, 0.6, 0.05, 0.3, 0.01]),
        "entropy": np.array([9.0, 1.0, 2.5, 2.5, 0.5, 3.0]),
    }
    ctx = SelectionContext(pool_idx=np.array([0]), candidate_idx=np.array([5, 4, 3, 2, 1]), scores=scores)
    np.testing.assert_array_equal(get_sampler("least_confidence").select(ctx, 3), [2, 4, 3])
    np.testing.assert_array_equal(get_sampler("margin").select(ctx, 3), [5, 1, 3])
    np.testing.assert_array_equal(get_sampler("entropy").select(ctx, 3), [5, 2, 3])
    np.testing.assert_array_equal(get_sampler("entropy").ranking(ctx), [5, 2, 3, 1, 4])


def test_uncertainty_bad_scores():
    ctx = _ctx(n=10, scores={"margin": np.array([0.1] * 9 + [np.nan])})
    with pytest.raises(ValidationError, match=r"finite.*rows \[9\]"):
        MarginSampler().select(ctx, 2)
    with pytest.raises(ValidationError, match="needs at least 10"):
        MarginSampler().select(_ctx(n=10, scores={"margin": np.zeros(5)}), 2)
    with pytest.raises(ValidationError, match="1-D"):
        MarginSampler().select(_ctx(n=10, scores={"margin": np.zeros((10, 2))}), 2)


@pytest.mark.parametrize("name", ["random", "least_confidence", "margin", "entropy"])
def test_k_validated(name):
    n = 10
    ctx = _ctx(n=n, pool=(0, 1), scores={s: np.linspace(0, 1, n) for s in ("confidence", "margin", "entropy")})
    with pytest.raises(PoolExhaustedError, match="k=9.*only 8 candidates"):
        get_sampler(name).select(ctx, 9)
    with pytest.raises(ValidationError, match=">= 0"):
        get_sampler(name).select(ctx, -1)
    with pytest.raises(ValidationError, match="int"):
        get_sampler(name).select(ctx, 2.0)


# ------------------------------------------------------------------ kcenter
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_kcenter_sampler_matches_brute_force(metric):
    rng = np.random.default_rng(5)
    emb = rng.normal(size=(60, 5)).astype(np.float32)
    pool = np.array([3, 17, 40])
    cand = np.setdiff1d(np.arange(60), pool)[::2]
    ctx = SelectionContext(pool_idx=pool, candidate_idx=cand, embeddings=emb)
    sampler = KCenterSampler(metric=metric)
    selection = sampler.select(ctx, 8)
    assert isinstance(selection, Selection)
    picks, radii = selection.indices, selection.radii
    want_picks, want_radii = kcenter_oracle(emb, pool, cand, 8, metric)
    np.testing.assert_array_equal(picks, want_picks)
    np.testing.assert_allclose(radii, want_radii, rtol=1e-4)
    assert picks.dtype == np.int64 and radii.dtype == np.float64 and radii.shape == (8,)
    np.testing.assert_array_equal(np.asarray(sampler.select(ctx, 8)), picks)
    with pytest.warns(DeprecationWarning, match="select_with_radii.*deprecated"):
        old_picks, old_radii = sampler.select_with_radii(ctx, 8)
    np.testing.assert_array_equal(old_picks, picks)
    np.testing.assert_array_equal(old_radii, radii)


def test_kcenter_sampler_equals_kernel_call():
    from diverseevol import kcenter_select

    emb = np.random.default_rng(1).normal(size=(300, 16)).astype(np.float32)
    ctx = SelectionContext(pool_idx=np.arange(0), candidate_idx=np.arange(300), embeddings=emb, rng=np.random.default_rng(9))
    got = get_sampler("kcenter").select(ctx, 25)
    want, want_radii = kcenter_select(
        emb, np.arange(0), 25, candidate_idx=np.arange(300), random_state=np.random.default_rng(9), return_radii=True
    )
    np.testing.assert_array_equal(got.indices, want)
    np.testing.assert_array_equal(got.radii, want_radii)


def test_kcenter_sampler_validates_params():
    with pytest.raises(ValidationError, match="metric"):
        KCenterSampler(metric="l1")
    with pytest.raises(ValidationError, match="block_rows"):
        KCenterSampler(block_rows=0)


def test_kcenter_sampler_keeps_no_state_between_calls():
    # The radii come with each Selection; nothing about a call is left on the sampler.
    emb = np.random.default_rng(2).normal(size=(80, 6)).astype(np.float32)
    sampler = KCenterSampler()
    before = dict(vars(sampler))
    first = sampler.select(SelectionContext(pool_idx=np.arange(4), candidate_idx=np.arange(4, 80), embeddings=emb), 6)
    second = sampler.select(SelectionContext(pool_idx=np.arange(40), candidate_idx=np.arange(40, 80), embeddings=emb), 3)
    assert vars(sampler) == before
    assert not hasattr(sampler, "last_radii_")
    with pytest.raises(AttributeError, match=r"select\(ctx, k\)\.radii|selection\.radii"):
        sampler.last_radii_
    assert first.radii.shape == (6,) and second.radii.shape == (3,)
    assert not np.array_equal(first.radii[:3], second.radii)  # each call's own radii, not shared
