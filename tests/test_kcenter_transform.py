"""KCenterSampler(transform=...) and the norm-bias check, against brute-force oracles.

The transformed vectors of the oracles are computed here by hand (L2 normalisation, centering,
ZCA whitening from the candidates' covariance, a Gaussian projection), not with
diverseevol.transforms; the picks come from the brute-force K-Center of tests/kcenter_oracle.py.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from kcenter_oracle import kcenter_oracle

from diverseevol import EvolutionLoop, SelectionContext, get_sampler
from diverseevol.cli import EXIT_OK, main
from diverseevol.errors import NormBiasWarning, ValidationError
from diverseevol.norm_bias import NORM_BIAS_THRESHOLD, reset_norm_bias_warnings
from diverseevol.run.result import METRIC_KEYS
from diverseevol.samplers import KCenterSampler, run_sampler
from diverseevol.selection import select_subset
from diverseevol.testing import check_sampler
from diverseevol.transforms import RandomProjection, Whiten


def _long_norm_data(n: int = 400, d: int = 6, seed: int = 0) -> np.ndarray:
    """Random directions with log-normal lengths: Euclidean K-Center picks the long ones."""
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(n, d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return (dirs * np.exp(rng.normal(scale=0.6, size=(n, 1)))).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _zca_whiten(x: np.ndarray, fit_rows: np.ndarray) -> np.ndarray:
    """(x - mean) C^(-1/2), C the candidates' covariance (1/m), then unit rows.

    PCA whitening differs from this by a rotation, which keeps Euclidean distances.
    """
    fit = x[fit_rows].astype(np.float64)
    mean = fit.mean(axis=0)
    cov = np.cov(fit, rowvar=False, bias=True)
    val, vec = np.linalg.eigh(cov)
    return _unit((x.astype(np.float64) - mean) @ (vec / np.sqrt(val)) @ vec.T)


POOL = np.array([3, 17, 40, 41, 99])
CAND = np.setdiff1d(np.arange(120), POOL)


def _ctx(emb: np.ndarray, seed: int = 0) -> SelectionContext:
    rng = np.random.default_rng(seed)
    return SelectionContext(pool_idx=POOL, candidate_idx=CAND, rng=rng, embeddings=emb)


@pytest.mark.parametrize(
    "spec, oracle_vectors",
    [
        ("normalize", lambda x: _unit(x.astype(np.float64))),
        ("center", lambda x: x.astype(np.float64) - x[CAND].astype(np.float64).mean(axis=0)),
        ("center+normalize", lambda x: _unit(x.astype(np.float64) - x[CAND].astype(np.float64).mean(axis=0))),
        ("whiten", lambda x: _zca_whiten(x, CAND)),
        (Whiten(), lambda x: _zca_whiten(x, CAND)),
    ],
    ids=["normalize", "center", "center+normalize", "whiten", "Whiten()"],
)
def test_picks_are_exact_kcenter_on_the_transformed_vectors(spec, oracle_vectors):
    emb = _long_norm_data(n=120, d=5, seed=1)
    sel = KCenterSampler(transform=spec).select(_ctx(emb), 25)
    want, want_radii = kcenter_oracle(oracle_vectors(emb), POOL, CAND, 25)
    np.testing.assert_array_equal(sel.indices, want)
    np.testing.assert_allclose(sel.radii, want_radii, rtol=1e-5, atol=1e-6)


def test_projection_is_seeded_from_ctx_rng_and_exact_on_the_projected_vectors():
    emb = _long_norm_data(n=120, d=12, seed=2)
    a = KCenterSampler(transform="project:dim=4").select(_ctx(emb, seed=5), 15)
    b = KCenterSampler(transform="project:dim=4").select(_ctx(emb, seed=5), 15)
    np.testing.assert_array_equal(a.indices, b.indices)
    # The oracle: the same Gaussian matrix drawn by hand from the same seed, N(0, 1/dim) entries.
    r = np.random.default_rng(5).standard_normal((12, 4)) / np.sqrt(4)
    projected = emb.astype(np.float64) @ r.astype(np.float32).astype(np.float64)
    want, _ = kcenter_oracle(projected, POOL, CAND, 15)
    np.testing.assert_array_equal(a.indices, want)
    # A projection object without a seed is seeded from ctx.rng too (same picks per seed).
    c = KCenterSampler(transform=RandomProjection(dim=4)).select(_ctx(emb, seed=5), 15)
    d = KCenterSampler(transform=RandomProjection(dim=4)).select(_ctx(emb, seed=5), 15)
    np.testing.assert_array_equal(c.indices, d.indices)


def test_transform_is_a_hyperparameter_only():
    emb = _long_norm_data(n=120, d=5, seed=3)
    given = Whiten(dim=3)
    sampler = KCenterSampler(transform=given)
    before = dict(vars(sampler))
    first = sampler.select(_ctx(emb), 10).indices
    assert vars(sampler).keys() == before.keys() and sampler.transform is given
    assert not given.is_fitted  # the sampler fits a copy
    np.testing.assert_array_equal(sampler.select(_ctx(emb), 10).indices, first)
    assert KCenterSampler(transform="whiten").get_params()["transform"] == "whiten"
    # transform=None is not listed, so the paper's recipe keeps its parameters, repr and run configs.
    assert "transform" not in KCenterSampler().get_params()
    params = KCenterSampler(transform="normalize").get_params()
    assert get_sampler("kcenter", **params).transform == "normalize"


@pytest.mark.parametrize("bad", ["whitten", "project:dim=0", 3])
def test_bad_transform_fails_at_construction(bad):
    with pytest.raises(ValidationError):
        KCenterSampler(transform=bad)


@pytest.mark.parametrize("spec", ["normalize", "whiten", "project:dim=3"])
def test_transformed_kcenter_passes_the_sampler_contract(spec):
    check_sampler(KCenterSampler(transform=spec))


# --------------------------------------------------------------------------------------------
# norm bias
# --------------------------------------------------------------------------------------------
def _mean_norm(x: np.ndarray, rows: np.ndarray) -> float:
    return float(np.linalg.norm(x[rows].astype(np.float64), axis=1).mean())


def test_raw_kcenter_warns_once_with_the_figures_and_the_fix():
    reset_norm_bias_warnings()
    emb = _long_norm_data()
    pool, cand = np.arange(20), np.arange(20, 400)
    ctx = SelectionContext(pool_idx=pool, candidate_idx=cand, rng=np.random.default_rng(0), embeddings=emb)
    sampler = KCenterSampler()
    with pytest.warns(NormBiasWarning) as record:
        picks = sampler.select(ctx, 60).indices
    ratio = _mean_norm(emb, picks) / _mean_norm(emb, cand)
    assert ratio > NORM_BIAS_THRESHOLD
    message = str(record[0].message)
    assert f"{ratio:.2f}x" in message and "60 picks" in message and "380 candidates" in message
    assert 'transform="normalize"' in message and 'transform="whiten"' in message and "cosine" in message
    assert record[0].filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sampler.select(ctx, 60)  # once per setting
        for spec in ("normalize", "whiten"):  # the fixes do not warn
            picks = KCenterSampler(transform=spec).select(ctx, 60).indices
            assert _mean_norm(emb, picks) / _mean_norm(emb, cand) < NORM_BIAS_THRESHOLD
    reset_norm_bias_warnings()


def test_select_subset_and_run_sampler_warn():
    emb = _long_norm_data()
    reset_norm_bias_warnings()
    with pytest.warns(NormBiasWarning, match="metric='euclidean', transform=None"):
        select_subset(60, embeddings=emb, pool=np.arange(20), seed=0)
    reset_norm_bias_warnings()
    ctx = SelectionContext(pool_idx=np.arange(20), candidate_idx=np.arange(20, 400), embeddings=emb)
    with pytest.warns(NormBiasWarning):
        run_sampler(get_sampler("kcenter"), ctx, 60)
    reset_norm_bias_warnings()


class _FixedEmbedder:
    def __init__(self, emb: np.ndarray) -> None:
        self.emb = emb

    def __call__(self, model, records):
        return self.emb


def test_loop_warns_once_and_records_the_pool_norm_ratio(tmp_path: Path):
    emb = _long_norm_data(n=300)
    records = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(300)]
    reset_norm_bias_warnings()
    with pytest.warns(NormBiasWarning) as record:
        result = EvolutionLoop(records, trainer=lambda recs, t, out: None, embedder=_FixedEmbedder(emb),
                               init_size=20, k=40, rounds=3, seed=0, run_dir=tmp_path / "run",
                               progress=False, vendi=True).run()  # vendi=True: the last round is measured too
    assert sum(issubclass(w.category, NormBiasWarning) for w in record) == 1
    assert "norm_ratio" in METRIC_KEYS
    data_norm = _mean_norm(emb, np.arange(300))
    for pool, row in zip(result.pools, result.metrics):
        assert row["norm_ratio"] == pytest.approx(_mean_norm(emb, pool) / data_norm, rel=1e-9)
    assert result.metrics[-1]["norm_ratio"] > NORM_BIAS_THRESHOLD  # K-Center filled the pool with long rows
    from diverseevol.run import EvolutionResult

    saved = EvolutionResult.load(tmp_path / "run").metrics  # written to the run directory
    ratios = [row["norm_ratio"] for row in result.metrics]
    assert [row["norm_ratio"] for row in saved] == pytest.approx(ratios)
    reset_norm_bias_warnings()


# --------------------------------------------------------------------------------------------
# the command line and config files
# --------------------------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    emb = _long_norm_data(n=150, d=5, seed=4)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"task {i}", "output": f"answer {i}"}) + "\n"
                            for i in range(150)))
    path = tmp_path / "emb.npy"
    np.save(path, emb)
    return data, path, emb


def test_cli_param_transform_whiten(files, tmp_path: Path):
    data, path, emb = files
    idx = tmp_path / "idx.txt"
    with warnings.catch_warnings():
        warnings.simplefilter("error", NormBiasWarning)
        rc = main(["select", str(data), "--embeddings", str(path), "--k", "12",
                   "--out", str(tmp_path / "o.jsonl"),
                   "--param", "transform=whiten", "--seed", "3", "--indices-out", str(idx)])
    assert rc == EXIT_OK
    got = [int(v) for v in idx.read_text().split()]
    # Empty pool: the first center is drawn from the seed's rng, then exact K-Center on the whitened rows.
    everything = np.arange(150)
    want, _ = kcenter_oracle(_zca_whiten(emb, everything), [], everything, 12, first_pick=got[0])
    assert got == want.tolist()
    raw = select_subset(12, embeddings=emb, seed=3, sampler=KCenterSampler()).indices
    assert got[0] == int(raw[0])  # the same rng draw picks the first center


def test_config_sampler_params_transform(files, tmp_path: Path):
    data, path, emb = files
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'run_dir = "runs/w"\nseed = 2\n[data]\npath = "{data.name}"\nembeddings = "{path.name}"\n'
                   '[sampler]\nname = "kcenter"\n[sampler.params]\ntransform = "normalize"\n'
                   '[budget]\ninit_size = 10\nk = 8\nrounds = 2\n')
    assert main(["run", str(cfg)]) == EXIT_OK
    from diverseevol.run import EvolutionResult

    res = EvolutionResult.load(tmp_path / "runs" / "w")
    everything = np.arange(150)
    for t in range(2):
        pool = res.pools[t]
        cand = np.setdiff1d(everything, pool)
        want, _ = kcenter_oracle(_unit(emb.astype(np.float64)), pool, cand, 8)
        np.testing.assert_array_equal(res.pools[t + 1][len(pool):], want)
    header = json.loads((tmp_path / "runs" / "w" / "config.json").read_text())
    assert "normalize" in json.dumps(header)


# --------------------------------------------------------------------------------------------
# issue 14 "Done when", on the real Dolly-15k all-MiniLM-L6-v2 embeddings (slow; needs the cache)
# --------------------------------------------------------------------------------------------
def _dolly_embeddings_path() -> Path | None:
    """$DIVERSEEVOL_DOLLY_MINILM, or the cache benchmarks/selection_quality.py documents."""
    import os

    from shared_data import shared_data_dir

    candidates = [os.environ.get("DIVERSEEVOL_DOLLY_MINILM"),
                  shared_data_dir() / "databricks-dolly-15k" / "dolly_minilm.npy", "/tmp/dolly_minilm.npy"]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_dolly_minilm_default_warns_and_normalize_and_whiten_hold_up(seed):
    """Raw mean-pooled all-MiniLM-L6-v2 vectors of Dolly-15k (benchmarks/selection_quality.py --embed),
    P_0 = 100 random + 1,000 picks: the paper's recipe warns; transform="normalize" and "whiten"
    give a pool whose mean norm is 0.8-1.25x the data's, whose category entropy is >= 0.9x random's
    and whose Vendi is >= random's (random: the same P_0 + 1,000 random candidates)."""
    from shared_data import shared_data_dir

    from diverseevol import vendi_score
    from diverseevol.compare import record_labels
    from diverseevol.data import load_instructions

    path = _dolly_embeddings_path()
    data = shared_data_dir() / "databricks-dolly-15k" / "databricks-dolly-15k.jsonl.gz"
    if path is None or not data.exists():
        pytest.skip("needs Dolly-15k and its all-MiniLM-L6-v2 embeddings (set DIVERSEEVOL_DOLLY_MINILM)")
    emb = np.load(path, mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Dolly's 15 duplicate records
        labels = np.array(record_labels(load_instructions(data), "category"), dtype=object)
    n = emb.shape[0]
    assert labels.size == n
    norms = np.linalg.norm(np.asarray(emb, dtype=np.float64), axis=1)
    pool = np.sort(np.random.default_rng([seed, 0]).choice(n, size=100, replace=False))
    cand = np.setdiff1d(np.arange(n), pool)

    def entropy(rows):
        _, counts = np.unique(labels[rows], return_counts=True)
        p = counts / counts.sum()
        return float(-(p * np.log(p)).sum())

    def measure(rows):
        return norms[rows].mean() / norms.mean(), entropy(rows), vendi_score(np.asarray(emb[np.sort(rows)]))

    random_picks = np.random.default_rng([seed, 1]).choice(cand, size=1000, replace=False)
    random_rows = np.concatenate([pool, random_picks])
    _, random_entropy, random_vendi = measure(random_rows)

    def pool_of(**params):
        ctx = SelectionContext(pool_idx=pool, candidate_idx=cand, rng=np.random.default_rng([seed, 1]),
                               embeddings=emb)
        return np.concatenate([pool, get_sampler("kcenter", **params).select(ctx, 1000).indices])

    reset_norm_bias_warnings()
    with pytest.warns(NormBiasWarning, match="transform=None"):
        raw = pool_of()
    assert measure(raw)[0] > 1.25
    for transform in ("normalize", "whiten"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", NormBiasWarning)
            rows = pool_of(transform=transform)
        assert rows.size == 1100 and np.unique(rows).size == 1100
        norm, ent, vendi = measure(rows)
        assert 0.8 <= norm <= 1.25, (transform, norm)
        assert ent >= 0.9 * random_entropy, (transform, ent, random_entropy)
        assert vendi >= random_vendi, (transform, vendi, random_vendi)
    reset_norm_bias_warnings()
