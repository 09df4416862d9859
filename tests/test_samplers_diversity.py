"""kmeans and facility_location samplers, norm-bias check, NovelSum and the subset report."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from diverseevol import SelectionContext, get_sampler, kcenter_select, list_samplers
from diverseevol._optional import is_available
from diverseevol.errors import DiverseEvolWarning, NormBiasWarning, ValidationError
from diverseevol.norm_bias import (
    NORM_BIAS_THRESHOLD,
    norm_bias,
    norm_ratio,
    reset_norm_bias_warnings,
    warn_if_norm_biased,
)
from diverseevol.samplers.facility_location import facility_location_greedy, knn_graph
from diverseevol.samplers.kmeans import allocate_largest_remainder, kmeans_fit
from diverseevol.subset_report import covering_radius, label_entropy, novelsum, subset_report
from diverseevol.testing import check_sampler

BACKENDS = ["numpy"] + (["faiss"] if is_available("faiss") else [])


def _blobs(n=400, d=6, centers=5, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(scale=5.0, size=(centers, d))
    lab = rng.integers(0, centers, size=n)
    return (c[lab] + rng.normal(size=(n, d))).astype(np.float32), lab


# ---------------------------------------------------------------------------------------------
# registration and contract
# ---------------------------------------------------------------------------------------------
def test_new_samplers_are_registered_and_require_embeddings():
    assert {"kmeans", "facility_location"} <= set(list_samplers())
    for name in ("kmeans", "facility_location"):
        assert "embeddings" in get_sampler(name).requires


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("params", [{}, {"within": "random"}, {"n_clusters": 4}, {"transform": "whiten"}])
def test_kmeans_contract(backend, params):
    check_sampler(lambda: get_sampler("kmeans", backend=backend, **params))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("params", [{}, {"n_neighbors": 3}, {"transform": "center+normalize"}])
def test_facility_location_contract(backend, params):
    check_sampler(lambda: get_sampler("facility_location", backend=backend, **params))


def test_bad_parameters_are_refused():
    for name, params in [("kmeans", {"within": "far"}), ("kmeans", {"n_clusters": 0}),
                         ("kmeans", {"transform": "nope"}), ("facility_location", {"n_neighbors": 0}),
                         ("facility_location", {"backend": "gpu"})]:
        with pytest.raises(ValidationError):
            get_sampler(name, **params)


# ---------------------------------------------------------------------------------------------
# kmeans
# ---------------------------------------------------------------------------------------------
def test_largest_remainder_allocation():
    # Hamilton's method by hand: 10 seats over sizes 5, 3, 2 of 10 -> 5, 3, 2; 4 seats -> 2, 1.2, 0.8
    np.testing.assert_array_equal(allocate_largest_remainder(np.array([5, 3, 2]), 10), [5, 3, 2])
    np.testing.assert_array_equal(allocate_largest_remainder(np.array([5, 3, 2]), 4), [2, 1, 1])
    rng = np.random.default_rng(0)
    for _ in range(200):
        sizes = rng.integers(0, 30, size=rng.integers(1, 12))
        if sizes.sum() == 0:
            continue
        k = int(rng.integers(0, sizes.sum() + 1))
        q = allocate_largest_remainder(sizes, k)
        exact = sizes * k / sizes.sum()
        assert q.sum() == k and np.all(q <= sizes)
        assert np.all(np.abs(q - exact) < 1)  # quota rule


@pytest.mark.parametrize("backend", BACKENDS)
def test_kmeans_finds_separated_blobs(backend):
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 4, size=600)
    x = (20.0 * np.eye(4, 6)[lab] + rng.normal(size=(600, 6))).astype(np.float32)
    _, labels, _ = kmeans_fit(x, 4, np.random.default_rng(0), backend=backend)
    # each found cluster is one true blob (adjusted: contingency table is a permutation)
    table = np.zeros((4, 4), dtype=int)
    np.add.at(table, (lab, labels), 1)
    assert (table > 0).sum() == 4


def test_kmeans_picks_are_proportional_and_nearest_to_centroid():
    x, lab = _blobs(n=500, centers=4, seed=3)
    ctx = SelectionContext(pool_idx=np.arange(0), candidate_idx=np.arange(500), embeddings=x,
                           rng=np.random.default_rng(1))
    picks = get_sampler("kmeans", n_clusters=4, backend="numpy").select(ctx, 40)
    counts = np.bincount(lab[picks], minlength=4)
    expected = allocate_largest_remainder(np.bincount(lab, minlength=4), 40)
    np.testing.assert_array_equal(np.sort(counts), np.sort(expected))
    # within each blob, the picks are the records nearest to the blob's mean (the centroid)
    for c in range(4):
        members = np.flatnonzero(lab == c)
        mean = x[members].astype(np.float64).mean(0)
        d = ((x[members] - mean) ** 2).sum(1)
        nearest = set(members[np.argsort(d)[: counts[c]]])
        assert set(picks[lab[picks] == c]) == nearest
    # round robin: the first 4 picks come from 4 different clusters
    assert len(set(lab[picks[:4]])) == 4


def test_kmeans_is_deterministic_per_seed_and_uses_the_seed():
    x, _ = _blobs(n=300)
    def run(seed):
        ctx = SelectionContext(pool_idx=np.arange(10), candidate_idx=np.arange(10, 300), embeddings=x,
                               rng=np.random.default_rng(seed))
        return get_sampler("kmeans", within="random", backend="numpy").select(ctx, 30)
    np.testing.assert_array_equal(run(0), run(0))
    assert not np.array_equal(run(0), run(1))


# ---------------------------------------------------------------------------------------------
# facility location
# ---------------------------------------------------------------------------------------------
def _dense_similarity(x, n_neighbors):
    """The graph's similarity as a dense matrix, from a brute-force neighbour search."""
    u = x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    s = u @ u.T
    m = len(x)
    w = np.zeros((m, m))
    for i in range(m):
        order = sorted(range(m), key=lambda j: (j != i, -s[i, j]))[:n_neighbors]
        w[i, order] = np.maximum(s[i, order], 0.0)
        w[i, i] = 1.0
    return w


def _plain_greedy(w, selectable, fixed, k):
    def f(sel):
        cols = list(sel)
        return 0.0 if not cols else float(np.maximum(w[:, cols].max(axis=1), 0).sum())

    chosen = list(fixed)
    picks = []
    for _ in range(k):
        base = f(chosen)
        gains = [(f(chosen + [j]) - base, -j) for j in selectable if j not in picks]
        best = max(gains)
        picks.append(-best[1])
        chosen.append(-best[1])
    return picks


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_neighbors", [3, 6, 40])
def test_lazy_greedy_equals_plain_greedy_on_the_exact_objective(seed, n_neighbors):
    x, _ = _blobs(n=40, d=5, centers=4, seed=seed)
    graph = knn_graph(x, n_neighbors, backend="numpy")
    # the graph equals the brute-force k-NN similarity
    dense = np.zeros((40, 40))
    for j in range(40):
        lo, hi = graph.indptr[j], graph.indptr[j + 1]
        dense[graph.covered[lo:hi], j] = graph.sim[lo:hi]
    np.testing.assert_allclose(dense, _dense_similarity(x, n_neighbors), atol=1e-6)
    fixed = np.array([0, 1, 2]) if seed % 2 else np.array([], dtype=np.int64)
    selectable = np.arange(3, 40)
    lazy = facility_location_greedy(graph, selectable, fixed, 12)
    assert lazy.tolist() == _plain_greedy(dense, selectable.tolist(), fixed.tolist(), 12)


def test_facility_location_sampler_covers_every_blob_and_ignores_norms():
    x, lab = _blobs(n=400, centers=5, seed=1)
    scale = np.exp(np.random.default_rng(0).normal(size=(400, 1))).astype(np.float32)
    ctx = SelectionContext(pool_idx=np.arange(0), candidate_idx=np.arange(400), embeddings=x,
                           rng=np.random.default_rng(0))
    ctx_scaled = SelectionContext(pool_idx=np.arange(0), candidate_idx=np.arange(400), embeddings=x * scale,
                                  rng=np.random.default_rng(0))
    s = get_sampler("facility_location", backend="numpy")
    picks = s.select(ctx, 10)
    assert len(set(lab[picks])) == 5
    np.testing.assert_array_equal(picks, s.select(ctx_scaled, 10))  # cosine: row scale is irrelevant


@pytest.mark.skipif(not is_available("faiss"), reason="faiss not installed")
def test_facility_location_faiss_graph_equals_numpy_graph():
    x, _ = _blobs(n=300, d=8, seed=2)
    a, b = knn_graph(x, 7, backend="numpy"), knn_graph(x, 7, backend="faiss")
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.covered, b.covered)
    np.testing.assert_allclose(a.sim, b.sim, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# norm bias
# ---------------------------------------------------------------------------------------------
def test_norm_ratio_by_hand():
    emb = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [6.0, 8.0]])
    assert norm_ratio(emb, [0, 1, 2, 3], [3]) == pytest.approx(10 / ((5 + 1 + 2 + 10) / 4))
    b = norm_bias(emb, [1, 2], [0])
    assert b.picks_mean_norm == 5 and b.candidates_mean_norm == 1.5 and b.biased


def test_norm_bias_warns_once_with_figures_and_fix():
    reset_norm_bias_warnings()
    emb = np.array([[1.0, 0.0]] * 10 + [[10.0, 0.0]] * 2)
    b = norm_bias(emb, np.arange(12), [10, 11])
    assert issubclass(NormBiasWarning, DiverseEvolWarning)
    with pytest.warns(NormBiasWarning, match=r"(?s)4\.00x.*normalize.*whiten.*cosine"):
        assert warn_if_norm_biased(b, key="t1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_norm_biased(b, key="t1")  # once per key
        assert not warn_if_norm_biased(norm_bias(emb, np.arange(12), [0, 1]), key="t2")  # not biased
    reset_norm_bias_warnings()


def test_euclidean_kcenter_on_long_norm_outliers_is_flagged_and_normalize_is_not():
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(3000, 16))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    emb = (dirs * np.exp(rng.normal(scale=0.5, size=(3000, 1)))).astype(np.float32)
    cand = np.arange(100, 3000)
    raw = kcenter_select(emb, np.arange(100), 300, random_state=0)
    assert norm_ratio(emb, cand, raw) > NORM_BIAS_THRESHOLD
    from diverseevol.transforms import make_transform

    unit = make_transform("normalize").fit_transform(emb)
    fixed = kcenter_select(unit, np.arange(100), 300, random_state=0)
    assert norm_ratio(emb, cand, fixed) < NORM_BIAS_THRESHOLD


# ---------------------------------------------------------------------------------------------
# NovelSum, covering radius, report
# ---------------------------------------------------------------------------------------------
def _novelsum_oracle(x, sub, ref, alpha, beta, k):
    """Literal loops over the definition (Yang et al., 2025)."""
    x = x.astype(np.float64)

    def dist(a, b):
        return max(0.0, 1.0 - float(x[a] @ x[b]) / math.sqrt(float(x[a] @ x[a]) * float(x[b] @ x[b])))

    def sigma(j):
        ds = sorted(dist(j, r) for r in ref if r != j)[:k]
        return 1.0 / (sum(ds) / len(ds))

    total = 0.0
    for i in sub:
        others = sorted((dist(i, j), pos, j) for pos, j in enumerate(sub) if j != i)
        for rank, (d, _, j) in enumerate(others, start=1):
            total += (1.0 / rank) ** alpha * (sigma(j) ** beta if beta else 1.0) * d
    return total


@pytest.mark.parametrize("alpha,beta,k", [(1.0, 0.5, 3), (2.0, 0.0, 3), (0.0, 1.0, 5), (1.0, 0.25, 1)])
def test_novelsum_matches_the_definition(alpha, beta, k):
    x, _ = _blobs(n=60, d=4, seed=5)
    sub = np.array([3, 17, 5, 40, 22, 9, 58, 31])
    ref = np.arange(10, 60)
    got = novelsum(x, sub, reference_idx=ref, alpha=alpha, beta=beta, n_neighbors=k, block_rows=3)
    assert got == pytest.approx(_novelsum_oracle(x, sub, ref, alpha, beta, k), rel=1e-9)


def test_novelsum_prefers_spread_out_subsets():
    x, lab = _blobs(n=500, centers=5, seed=6)
    one_blob = np.flatnonzero(lab == 0)[:20]
    spread = np.concatenate([np.flatnonzero(lab == c)[:4] for c in range(5)])
    assert novelsum(x, spread) > novelsum(x, one_blob)


def test_covering_radius_by_brute_force():
    x, _ = _blobs(n=120, d=3, seed=7)
    sub = np.array([0, 50, 99])
    xd = x.astype(np.float64)
    eu = np.sqrt(((xd[:, None, :] - xd[None, sub, :]) ** 2).sum(-1)).min(1).max()
    assert covering_radius(x, sub, metric="euclidean", block_rows=17) == pytest.approx(eu, rel=1e-9)
    u = xd / np.linalg.norm(xd, axis=1, keepdims=True)
    cos = (1 - (u @ u[sub].T).max(1)).max()
    assert covering_radius(x, sub) == pytest.approx(cos, rel=1e-9)


def test_subset_report_labels_and_figures():
    x, lab = _blobs(n=300, centers=3, seed=8)
    labels = np.array(["a", "b", "c"])[lab]
    sub = np.flatnonzero(lab == 0)[:10]
    rep = subset_report(x, sub, labels=labels)
    assert rep.label_counts == {"a": 10} and rep.label_entropy == 0.0
    assert rep.reference_label_entropy == pytest.approx(label_entropy(labels.tolist()))
    assert label_entropy(["x", "y"] * 5) == pytest.approx(math.log(2))
    from diverseevol import vendi_score

    assert rep.vendi == pytest.approx(vendi_score(x[sub]))
    assert rep.norm_ratio == pytest.approx(norm_ratio(x, np.arange(300), sub))
    assert rep.as_dict()["label_counts"] == {"a": 10}
    with pytest.raises(ValidationError, match="one entry per record"):
        subset_report(x, sub, labels=labels[:5])


def test_every_subset_ordering_gives_the_same_report():
    x, _ = _blobs(n=100, seed=9)
    sub = np.array([5, 1, 80, 33, 60])
    base = subset_report(x, sub)
    for perm in itertools.islice(itertools.permutations(sub), 0, 120, 17):
        r = subset_report(x, np.array(perm))
        assert r.vendi == pytest.approx(base.vendi)
        assert r.covering_radius == pytest.approx(base.covering_radius)
        assert r.novelsum == pytest.approx(base.novelsum, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# NovelSum greedy
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("params", [{}, {"beta": 0.0, "n_ranks": 3}, {"transform": "whiten"}])
def test_novelsum_greedy_contract(params):
    check_sampler(lambda: get_sampler("novelsum_greedy", backend="numpy", **params))


def test_density_factors_by_brute_force():
    from diverseevol.samplers.novelsum_greedy import density_factors

    x, _ = _blobs(n=80, d=5, seed=11)
    xd = x.astype(np.float64)
    u = xd / np.linalg.norm(xd, axis=1, keepdims=True)
    d = 1.0 - np.maximum(u @ u.T, 0.0)
    np.fill_diagonal(d, np.inf)
    expected = 1.0 / np.sort(d, axis=1)[:, :4].mean(axis=1)
    # float32 similarities: ~1e-7 absolute error on distances of ~1e-2
    np.testing.assert_allclose(density_factors(x, 4, backend="numpy"), expected, rtol=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_novelsum_greedy_picks_the_most_novel_candidate_each_step(seed):
    from diverseevol.samplers.novelsum_greedy import density_factors

    x, _ = _blobs(n=60, d=4, seed=seed)
    pool = np.array([2, 30, 41])
    cand = np.setdiff1d(np.arange(60), pool)
    alpha, beta, k = 1.5, 0.5, 8
    ctx = SelectionContext(pool_idx=pool, candidate_idx=cand, embeddings=x, rng=np.random.default_rng(0))
    got = get_sampler("novelsum_greedy", alpha=alpha, beta=beta, n_ranks=60, density_neighbors=5,
                      backend="numpy").select(ctx, k)
    # oracle: the exact novelty of every candidate w.r.t. every selected record, by loops
    rows = np.concatenate([pool, cand])
    sig = dict(zip(rows.tolist(), density_factors(x[rows], 5, backend="numpy") ** beta))
    xd = x.astype(np.float64)

    def dist(a, b):
        return max(0.0, 1.0 - xd[a] @ xd[b] / np.sqrt((xd[a] @ xd[a]) * (xd[b] @ xd[b])))

    selected = pool.tolist()
    expected = []
    for _ in range(k):
        def novelty(c):
            ds = sorted((dist(c, s), s) for s in selected)
            return sum((1 / r) ** alpha * sig[s] * d for r, (d, s) in enumerate(ds, start=1))
        best = max((novelty(c), -c) for c in cand.tolist() if c not in expected)
        expected.append(-best[1])
        selected.append(-best[1])
    assert got.tolist() == expected
