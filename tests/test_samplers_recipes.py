"""The recipe samplers of issue 25 (balanced_random, kmeans_random, kmq, longest,
length_matched_random, kcenter_length_debiased) against hand-computed and brute-force oracles."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from kcenter_oracle import kcenter_oracle

from diverseevol import SelectionContext, get_sampler
from diverseevol.errors import MissingSignalError, ValidationError
from diverseevol.samplers import LengthResidual, Requirements, build_sampler, list_samplers, run_sampler
from diverseevol.samplers._groups import fair_shares
from diverseevol.samplers.length_matched import length_bins
from diverseevol.testing import check_sampler
from diverseevol.transforms import make_transform

RECIPES = ("balanced_random", "kmeans_random", "kmq", "longest", "length_matched_random", "kcenter_length_debiased")


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_is_a_registered_builtin_that_passes_the_contract(name):
    assert name in list_samplers()
    check_sampler(lambda: get_sampler(name))


@pytest.mark.parametrize(
    "factory",
    [
        lambda: get_sampler("kmq", prefer="high", temperature=0.3, n_clusters=4),
        lambda: get_sampler("kmq", signal="margin"),
        lambda: get_sampler("kmeans_random", n_clusters=7, transform="normalize"),
        lambda: get_sampler("length_matched_random", match="kmq", n_bins=3),
        lambda: get_sampler("length_matched_random", match="kcenter:metric=cosine"),
        lambda: get_sampler("kcenter_length_debiased", transform="normalize", metric="cosine"),
    ],
)
def test_recipe_settings_pass_the_contract(factory):
    check_sampler(factory)


def _ctx(n=None, pool=(), cand=None, seed=0, **signals):
    n = n if n is not None else len(next(iter(signals.values())))
    cand = np.setdiff1d(np.arange(n), pool) if cand is None else cand
    return SelectionContext(pool_idx=np.asarray(pool, dtype=np.int64), candidate_idx=cand,
                            rng=np.random.default_rng(seed), **signals)


# --------------------------------------------------------------------------------------------
# balanced_random
# --------------------------------------------------------------------------------------------
def _leximin_optimal(sizes, k):
    """Every allocation with sum k, 0 <= q_i <= sizes_i whose ascending-sorted vector is lexicographically largest."""
    allocations = [q for q in itertools.product(*(range(s + 1) for s in sizes)) if sum(q) == k]
    best = max(sorted(q) for q in allocations)
    return {q for q in allocations if sorted(q) == best}


@pytest.mark.parametrize(("sizes", "k"), [((2, 10, 10), 12), ((2, 10, 10), 13), ((1, 1, 7, 3), 9),
                                          ((4, 4, 4), 5), ((3, 5), 8), ((6, 2, 9, 1), 11), ((5,), 3)])
def test_fair_shares_are_the_leximin_allocations(sizes, k):
    optimal = _leximin_optimal(sizes, k)
    seen = set()
    for seed in range(30):
        q = tuple(int(x) for x in fair_shares(np.array(sizes), k, np.random.default_rng(seed)))
        assert q in optimal
        seen.add(q)
    assert seen == optimal  # the remainder goes to every eligible label across seeds


def test_balanced_random_counts_per_label_against_a_hand_computed_split():
    # 50 "qa", 3 "poem", 20 "code" candidates; k=12: poem gives up 1 of its 4, code and qa share 9 -> 4 + 5.
    labels = np.array(["qa"] * 50 + ["poem"] * 3 + ["code"] * 20)
    splits = set()
    for seed in range(20):
        picks = get_sampler("balanced_random").select(_ctx(labels=labels, seed=seed), 12)
        counts = dict(zip(*np.unique(labels[picks], return_counts=True)))
        assert counts["poem"] == 3 and {counts["qa"], counts["code"]} == {4, 5}
        splits.add(counts["qa"])
    assert splits == {4, 5}


def test_balanced_random_ignores_the_pool_and_orders_picks_round_robin():
    labels = np.array(["a"] * 10 + ["b"] * 10 + ["c"] * 10)
    ctx = _ctx(labels=labels, pool=np.arange(0, 8))  # only 2 "a" candidates left
    picks = get_sampler("balanced_random").select(ctx, 9)
    assert not np.isin(picks, ctx.pool_idx).any()
    got = labels[picks]
    assert sorted(got.tolist()) == ["a"] * 2 + ["b"] * 4 + ["c"] * 3 or sorted(got.tolist()) == (
        ["a"] * 2 + ["b"] * 3 + ["c"] * 4)
    assert got[:3].tolist() == ["a", "b", "c"] and got[3:5].tolist() == ["a", "b"]  # round by round, labels sorted


def test_balanced_random_is_uniform_inside_a_label():
    labels = np.array(["a"] * 4 + ["b"] * 6)
    hits = np.zeros(10)
    for seed in range(3000):
        hits[get_sampler("balanced_random").select(_ctx(labels=labels, seed=seed), 4)] += 1
    np.testing.assert_allclose(hits[:4] / 3000, 0.5, atol=0.04)   # 2 of 4
    np.testing.assert_allclose(hits[4:] / 3000, 1 / 3, atol=0.04)  # 2 of 6


def test_balanced_random_without_labels_says_how_to_provide_them():
    ctx = _ctx(n=10, embeddings=np.zeros((10, 2)))
    with pytest.raises(MissingSignalError, match="'labels'.*label_field"):
        run_sampler(get_sampler("balanced_random"), ctx, 3)


def test_labels_must_cover_the_candidates():
    with pytest.raises(ValidationError, match="labels has 3 entries but n_records is 5"):
        SelectionContext(pool_idx=[], candidate_idx=[0, 1], labels=["a", "b", "c"], n_records=5)
    ctx = SelectionContext(pool_idx=[], candidate_idx=[0, 4], labels=["a", "b", "c"])
    with pytest.raises(ValidationError, match="candidate index 4"):
        get_sampler("balanced_random").select(ctx, 1)


# --------------------------------------------------------------------------------------------
# kmeans_random and kmq
# --------------------------------------------------------------------------------------------
def _blobs(sizes=(50, 30, 20), seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])[: len(sizes)]
    blob = np.repeat(np.arange(len(sizes)), sizes)
    emb = centers[blob] + rng.normal(size=(blob.size, 2))
    return emb.astype(np.float32), blob


@pytest.mark.parametrize(("k", "want"), [(7, (4, 2, 1)), (10, (5, 3, 2)), (3, (1, 1, 1)), (100, (50, 30, 20))])
def test_kmeans_random_budgets_are_proportional_to_cluster_size(k, want):
    # Hand computed (largest remainder): k=7 -> 3.5, 2.1, 1.4 -> 3, 2, 1 and the seat left to the .5;
    # k=3 -> 1.5, 0.9, 0.6 -> 1, 0, 0 and the two seats left to .9 and .6.
    emb, blob = _blobs()
    for seed in range(5):
        picks = get_sampler("kmeans_random", n_clusters=3).select(_ctx(embeddings=emb, seed=seed), k)
        assert picks.size == k and np.unique(picks).size == k
        assert tuple(np.bincount(blob[picks], minlength=3)) == want


def test_kmeans_random_budgets_sum_to_k_for_any_clustering():
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(97, 3)).astype(np.float32)
    for k in (1, 2, 9, 10, 33, 50, 96):
        for n_clusters in (None, 1, 5, 13):
            sampler = get_sampler("kmeans_random", n_clusters=n_clusters)
            picks = sampler.select(_ctx(embeddings=emb, seed=k), k)
            assert picks.size == k and np.unique(picks).size == k


def test_kmeans_random_default_number_of_clusters_is_ceil_sqrt_k():
    emb, _ = _blobs((40, 40, 40))
    sampler = get_sampler("kmeans_random")
    for k, clusters in ((1, 1), (4, 2), (5, 3), (20, 5)):
        labels, quota = sampler.cluster_budgets(_ctx(embeddings=emb), np.arange(120), k)
        assert quota.size == clusters == math.ceil(math.sqrt(k)) and quota.sum() == k


def test_kmeans_random_is_uniform_inside_a_cluster():
    emb, blob = _blobs((6, 4))
    hits = np.zeros(10)
    for seed in range(2000):
        hits[get_sampler("kmeans_random", n_clusters=2).select(_ctx(embeddings=emb, seed=seed), 5)] += 1
    np.testing.assert_allclose(hits[:6] / 2000, 3 / 6, atol=0.05)  # 3 of 6
    np.testing.assert_allclose(hits[6:] / 2000, 2 / 4, atol=0.05)  # 2 of 4


def test_kmq_at_low_temperature_takes_the_best_records_of_each_cluster():
    emb, blob = _blobs()
    loss = np.random.default_rng(5).permutation(100).astype(float)  # distinct
    ctx = _ctx(embeddings=emb, scores={"loss": loss})
    for prefer, sign in (("low", 1), ("high", -1)):
        picks = get_sampler("kmq", n_clusters=3, temperature=1e-9, prefer=prefer).select(ctx, 10)
        for b, q in enumerate((5, 3, 2)):
            members = np.flatnonzero(blob == b)
            want = members[np.argsort(sign * loss[members])[:q]]
            assert set(picks[blob[picks] == b]) == set(want)


def _successive_inclusion(weights, size):
    """P(item in the sample) under successive sampling without replacement, by enumerating orders."""
    n = len(weights)
    prob = np.zeros(n)
    for order in itertools.permutations(range(n), size):
        p, left = 1.0, float(sum(weights))
        for i in order:
            p *= weights[i] / left
            left -= weights[i]
        prob[list(order)] += p
    return prob


def test_kmq_draws_follow_the_softmax_of_the_standardised_loss():
    emb = np.zeros((5, 2), dtype=np.float32)  # one cluster
    loss = np.array([0.5, 1.0, 1.5, 3.0, 2.0])
    z = (loss - loss.mean()) / loss.std()
    for temperature in (1.0, 0.5):
        want = _successive_inclusion(np.exp(-z / temperature), 2)
        hits = np.zeros(5)
        trials = 2500
        sampler = get_sampler("kmq", n_clusters=1, temperature=temperature)
        for seed in range(trials):
            hits[sampler.select(_ctx(embeddings=emb, scores={"loss": loss}, seed=seed), 2)] += 1
        se = np.sqrt(want * (1 - want) / trials)
        assert np.all(np.abs(hits / trials - want) < 4.5 * se + 1e-3), (hits / trials, want)


def test_kmq_uses_the_same_clusters_and_budgets_as_kmeans_random():
    emb = np.random.default_rng(2).normal(size=(80, 4)).astype(np.float32)
    loss = np.random.default_rng(3).normal(size=80)
    for seed in range(4):
        a = get_sampler("kmeans_random", n_clusters=4).cluster_budgets(_ctx(embeddings=emb, seed=seed), np.arange(80), 11)
        b = get_sampler("kmq", n_clusters=4).cluster_budgets(
            _ctx(embeddings=emb, scores={"loss": loss}, seed=seed), np.arange(80), 11)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_kmq_gives_a_record_without_loss_the_neutral_weight():
    emb = np.zeros((4, 2), dtype=np.float32)
    loss = np.array([1.0, np.nan, 3.0, 2.0])  # z = -1.22, (0), +1.22, 0
    picks = get_sampler("kmq", n_clusters=1, temperature=1e-9).select(_ctx(embeddings=emb, scores={"loss": loss}), 3)
    assert picks[0] == 0 and set(picks[1:]) == {1, 3}  # the nan and the mean tie at z = 0
    with pytest.raises(ValidationError, match="1-D array of real numbers"):
        get_sampler("kmq").select(_ctx(embeddings=emb, scores={"loss": np.ones(2)}), 1)


def test_kmq_requirements_follow_its_signal():
    assert get_sampler("kmq").requires == Requirements(embeddings=True, scores=frozenset({"loss"}))
    assert get_sampler("kmq", signal="confidence").requires == {"embeddings", "scores:confidence"}
    ctx = _ctx(n=20, embeddings=np.zeros((20, 2)))
    with pytest.raises(MissingSignalError, match="scores:loss"):
        run_sampler(get_sampler("kmq"), ctx, 3)
    with pytest.raises(ValidationError, match="temperature"):
        get_sampler("kmq", temperature=0)
    with pytest.raises(ValidationError, match="prefer"):
        get_sampler("kmq", prefer="lowest")


# --------------------------------------------------------------------------------------------
# longest
# --------------------------------------------------------------------------------------------
def test_longest_against_a_sort_with_ties_to_the_lowest_index():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 8, size=60)  # many ties
    cand = rng.permutation(np.setdiff1d(np.arange(60), [3, 9]))
    ctx = _ctx(lengths=lengths, pool=[3, 9], cand=cand)
    want = sorted(cand.tolist(), key=lambda i: (-lengths[i], i))
    for k in (0, 1, 7, 58):
        assert get_sampler("longest").select(ctx, k).tolist() == want[:k]


def test_lengths_are_checked():
    with pytest.raises(ValidationError, match="finite and >= 0; record 1"):
        SelectionContext(pool_idx=[], candidate_idx=[0], lengths=[3, -1])
    with pytest.raises(ValidationError, match="real numbers"):
        SelectionContext(pool_idx=[], candidate_idx=[0], lengths=["a", "b"])


# --------------------------------------------------------------------------------------------
# length_matched_random
# --------------------------------------------------------------------------------------------
def test_length_matched_random_copies_the_reference_histogram_hand_computed():
    lengths = np.arange(1, 101)  # record i has length i + 1; quartile bins: 1-25, 26-50, 51-75, 76-100
    for seed in range(5):
        ctx = _ctx(lengths=lengths, seed=seed)
        picks = get_sampler("length_matched_random", match="longest", n_bins=4).select(ctx, 10)
        assert np.all(lengths[picks] >= 76)  # longest 10 (91-100) are all in the top bin
        picks = get_sampler("length_matched_random", match="longest", n_bins=4).select(ctx, 30)
        # longest 30 = lengths 71-100: 5 in 51-75, 25 (all) in 76-100
        assert np.sum((lengths[picks] >= 51) & (lengths[picks] <= 75)) == 5
        assert set(np.flatnonzero(lengths >= 76)) <= set(picks)


def test_length_bins_are_quantile_bins_with_ties_kept_together():
    assert length_bins(np.arange(1.0, 101.0), 4).tolist() == [0] * 25 + [1] * 25 + [2] * 25 + [3] * 25
    tied = np.array([1, 1, 1, 1, 1, 1, 2, 3, 4, 5], dtype=float)
    bins = length_bins(tied, 5)
    assert len(set(bins[:6])) == 1 and np.all(np.diff(bins[np.argsort(tied, kind="stable")]) >= 0)


@pytest.mark.filterwarnings("ignore::diverseevol.errors.NormBiasWarning")  # the data make K-Center reach for length
def test_length_matched_random_matches_kcenter_per_bin_and_is_random_inside():
    rng = np.random.default_rng(4)
    lengths = np.round(rng.lognormal(3.0, 0.7, size=300))
    emb = (rng.normal(size=(300, 6)) * (1 + np.log1p(lengths))[:, None]).astype(np.float32)
    ctx = lambda seed: _ctx(embeddings=emb, lengths=lengths, pool=np.arange(10), seed=seed)  # noqa: E731
    cand = np.arange(10, 300)
    bins = length_bins(lengths[cand], 10)
    bin_of = dict(zip(cand.tolist(), bins.tolist()))
    draws = set()
    for seed in range(6):
        ref = get_sampler("kcenter").select(ctx(seed), 40).indices
        picks = get_sampler("length_matched_random").select(ctx(seed), 40)
        assert np.unique(picks).size == 40 and not np.isin(picks, np.arange(10)).any()
        assert sorted(bin_of[i] for i in picks) == sorted(bin_of[i] for i in ref)
        draws.add(tuple(picks))
    assert len(draws) == 6  # the pool is fixed, so K-Center's picks are too; the draws differ
    again = get_sampler("length_matched_random").select(ctx(0), 40)
    np.testing.assert_array_equal(again, get_sampler("length_matched_random").select(ctx(0), 40))


def test_length_matched_random_requires_what_its_reference_requires():
    assert get_sampler("length_matched_random").requires == {"lengths", "embeddings"}
    assert get_sampler("length_matched_random", match="balanced_random").requires == {"lengths", "labels"}
    assert get_sampler("length_matched_random", match="kmq").requires == {"lengths", "embeddings", "scores:loss"}
    with pytest.raises(MissingSignalError, match="'embeddings'"):
        run_sampler(get_sampler("length_matched_random"), _ctx(lengths=np.ones(20)), 3)


def test_build_sampler_reads_the_spec_syntax():
    s = build_sampler("kcenter:metric=cosine,transform=normalize")
    assert (s.name, s.metric, s.transform) == ("kcenter", "cosine", "normalize")
    assert build_sampler(s) is s
    nested = get_sampler("length_matched_random", match="kmeans_random:n_clusters=3")
    assert nested.reference.n_clusters == 3


# --------------------------------------------------------------------------------------------
# length-debiased K-Center
# --------------------------------------------------------------------------------------------
def _length_biased(n=120, d=5, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.round(rng.lognormal(4.0, 1.0, size=n))
    emb = rng.normal(size=(n, d)) + np.outer(np.log1p(lengths), rng.normal(size=d) * 3) + 2.0
    return emb.astype(np.float32), lengths


def test_length_residuals_equal_least_squares_and_are_uncorrelated_with_length():
    emb, lengths = _length_biased()
    feature = np.log1p(lengths)
    raw_corr = [abs(np.corrcoef(emb[:, j], feature)[0, 1]) for j in range(emb.shape[1])]
    assert max(raw_corr) > 0.8
    fit_rows = np.arange(10, 120)
    out = LengthResidual(lengths, block_rows=7).fit(emb, fit_rows).transform(emb, fit_rows)
    design = np.column_stack([np.ones(fit_rows.size), feature[fit_rows]])
    coef, *_ = np.linalg.lstsq(design, emb[fit_rows].astype(np.float64), rcond=None)
    np.testing.assert_allclose(out, emb[fit_rows] - design @ coef, atol=2e-5)
    for j in range(emb.shape[1]):
        assert abs(np.corrcoef(out[:, j], feature[fit_rows])[0, 1]) < 1e-5
    assert np.abs(out.mean(axis=0)).max() < 1e-5


def test_length_residuals_of_equal_lengths_are_the_centred_embeddings():
    emb, _ = _length_biased()
    out = LengthResidual(np.full(120, 7.0)).fit_transform(emb)
    np.testing.assert_allclose(out, emb - emb.astype(np.float64).mean(axis=0), atol=2e-5)


def test_length_residual_refuses_a_pipeline_and_a_length_count_mismatch():
    emb, lengths = _length_biased()
    with pytest.raises(ValidationError, match="Pipeline"):
        make_transform([LengthResidual(lengths), "normalize"]).fit(emb)
    with pytest.raises(ValidationError, match="holds 5 lengths but the embeddings have 120 rows"):
        LengthResidual(np.ones(5)).fit(emb)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_kcenter_length_debiased_is_kcenter_on_the_least_squares_residuals(metric):
    emb, lengths = _length_biased(n=70, seed=1)
    pool, cand = np.arange(4), np.arange(4, 70)
    design = np.column_stack([np.ones(cand.size), np.log1p(lengths[cand])])
    coef, *_ = np.linalg.lstsq(design, emb[cand].astype(np.float64), rcond=None)
    full = np.column_stack([np.ones(70), np.log1p(lengths)])
    residuals = emb - full @ coef
    want, radii = kcenter_oracle(residuals, pool, cand, 12, metric=metric)
    ctx = _ctx(embeddings=emb, lengths=lengths, pool=pool)
    got = get_sampler("kcenter_length_debiased", metric=metric).select(ctx, 12)
    np.testing.assert_array_equal(got.indices, want)
    np.testing.assert_allclose(got.radii, radii, rtol=1e-4)
    plain = get_sampler("kcenter", metric=metric).select(ctx, 12).indices
    assert not np.array_equal(plain, want)  # the length trend did change the picks here


def test_length_residual_works_as_a_kcenter_transform_object():
    emb, lengths = _length_biased(n=70, seed=1)
    ctx = _ctx(embeddings=emb, lengths=lengths, pool=np.arange(4))
    a = get_sampler("kcenter", transform=LengthResidual(lengths)).select(ctx, 9).indices
    b = get_sampler("kcenter_length_debiased").select(ctx, 9).indices
    np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------------
# the requirements and the context
# --------------------------------------------------------------------------------------------
def test_requirements_spell_labels_and_lengths():
    req = Requirements(embeddings=True, labels=True, lengths=True)
    assert req.to_strings() == {"embeddings", "labels", "lengths"}
    assert Requirements.parse({"labels", "lengths", "scores:loss"}) == Requirements(
        scores=frozenset({"loss"}), labels=True, lengths=True)
    assert len(req) == 3 and "labels" in req and repr(req) == "Requirements(embeddings=True, labels=True, lengths=True)"
    assert Requirements(labels=True) | Requirements(scores={"loss"}) == {"labels", "scores:loss"}
    with pytest.raises(ValidationError, match="lengths must be True or False"):
        Requirements(lengths="yes")
    ctx = SelectionContext(pool_idx=[], candidate_idx=[0, 1], labels=np.array(["a", "b"]), lengths=[1, 2])
    assert ctx.provides() == Requirements(labels=True, lengths=True) and ctx.n_records == 2
    assert ctx.lengths.dtype == np.float64 and not ctx.lengths.flags.writeable and not ctx.labels.flags.writeable
