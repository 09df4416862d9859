"""Embedding transforms: oracles for normalize, center, whiten, project; blockwise = one-shot; memmap."""

from __future__ import annotations

import numpy as np
import pytest

from diverseevol.errors import NonFiniteEmbeddingError, ValidationError
from diverseevol.transforms import (
    Center,
    Normalize,
    Pipeline,
    RandomProjection,
    Whiten,
    fit_transform_rows,
    make_transform,
)


def _anisotropic(n=3000, d=12, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    mix = np.linspace(0.3, 5.0, d)[:, None] * q  # covariance eigenvalues 0.09 .. 25
    return (rng.normal(size=(n, d)) @ mix + rng.normal(scale=3.0, size=d)).astype(np.float32)


def test_normalize_gives_unit_norms_and_keeps_zero_rows():
    x = _anisotropic()
    x[5] = 0
    y = Normalize().fit_transform(x)
    norms = np.linalg.norm(y.astype(np.float64), axis=1)
    assert y.dtype == np.float32
    np.testing.assert_allclose(np.delete(norms, 5), 1.0, atol=1e-6)
    assert norms[5] == 0
    # direction unchanged
    np.testing.assert_allclose(y[7], x[7] / np.linalg.norm(x[7].astype(np.float64)), rtol=1e-6)


def test_center_subtracts_the_mean_of_the_fitted_rows_only():
    x = _anisotropic()
    rows = np.arange(0, 3000, 3)
    c = Center().fit(x, rows)
    np.testing.assert_allclose(c.mean_, x[rows].astype(np.float64).mean(axis=0), rtol=1e-10, atol=1e-10)
    y = c.transform(x)
    np.testing.assert_allclose(y[rows].astype(np.float64).mean(axis=0), 0.0, atol=1e-4)


def test_whiten_gives_identity_covariance_on_kept_dims():
    x = _anisotropic()
    w = Whiten(normalize=False).fit(x)
    y = w.transform(x).astype(np.float64)
    assert y.shape == (3000, 12)
    cov = np.cov(y.T, bias=True)
    np.testing.assert_allclose(cov, np.eye(12), atol=1e-5)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
    # eigenvalues match numpy's covariance spectrum
    ref = np.sort(np.linalg.eigvalsh(np.cov(x.astype(np.float64).T, bias=True)))[::-1]
    np.testing.assert_allclose(w.explained_variance_, ref, rtol=1e-8)


def test_whiten_dim_cut_keeps_leading_components_and_normalizes():
    x = _anisotropic()
    w = Whiten(dim=4, normalize=False).fit(x)
    y = w.transform(x).astype(np.float64)
    assert y.shape == (3000, 4)
    np.testing.assert_allclose(np.cov(y.T, bias=True), np.eye(4), atol=1e-5)
    # the kept variance is the top of the spectrum
    ref = np.sort(np.linalg.eigvalsh(np.cov(x.astype(np.float64).T, bias=True)))[::-1][:4]
    np.testing.assert_allclose(w.explained_variance_, ref, rtol=1e-8)
    z = Whiten(dim=4).fit_transform(x)
    np.testing.assert_allclose(np.linalg.norm(z.astype(np.float64), axis=1), 1.0, atol=1e-6)
    # the normalised output is the unnormalised one scaled to unit length
    np.testing.assert_allclose(z, y / np.linalg.norm(y, axis=1, keepdims=True), atol=1e-6)


def test_whiten_floor_drops_degenerate_directions():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(500, 3))
    x = np.concatenate([base, base @ rng.normal(size=(3, 5))], axis=1).astype(np.float32)  # rank 3 in 8-d
    w = Whiten(normalize=False).fit(x)
    assert w.n_features_out_ == 3
    y = w.transform(x).astype(np.float64)
    np.testing.assert_allclose(np.cov(y.T, bias=True), np.eye(3), atol=1e-4)
    assert Whiten(eig_floor=0.0, normalize=False).fit(x).n_features_out_ > 3


def test_random_projection_preserves_distances_within_jl_bounds_on_average():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 1024)).astype(np.float32)
    i, j = np.triu_indices(200, 1)

    def d2(a):
        a = a.astype(np.float64)
        sq = (a * a).sum(1)
        return (sq[:, None] + sq[None, :] - 2 * a @ a.T)[i, j]

    orig = d2(x)
    for kind in ("gaussian", "rademacher"):
        y = RandomProjection(dim=256, kind=kind, random_state=0).fit_transform(x)
        ratio = d2(y) / orig
        # E[ratio] = 1, sd(ratio) = sqrt(2 / dim) ~ 0.088 per pair: the mean over 19,900 pairs is tight
        assert abs(ratio.mean() - 1) < 0.02
        assert 0.07 < ratio.std() < 0.11
        eps = 0.5  # JL: dim >= 8 ln(200) / eps^2 ~ 170 gives every pair within (1 ± 0.5)
        assert ratio.min() > 1 - eps and ratio.max() < 1 + eps


def test_random_projection_is_seeded():
    x = _anisotropic()
    a = make_transform("project:dim=5", random_state=3).fit_transform(x)
    b = make_transform("project:dim=5,random_state=3").fit_transform(x)
    c = make_transform("project:dim=5", random_state=4).fit_transform(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    r = make_transform("project:dim=5,kind=rademacher", random_state=0).fit(x).components_
    np.testing.assert_allclose(np.abs(r), 1 / np.sqrt(5), rtol=1e-6)


@pytest.mark.parametrize("spec", ["normalize", "center", "whiten", "whiten:dim=5", "center+normalize",
                                  "project:dim=7,random_state=1+normalize"])
def test_blockwise_equals_one_shot(spec):
    x = _anisotropic(n=1000)
    rows = np.random.default_rng(0).permutation(1000)[:700]
    small = make_transform(spec)
    for step in getattr(small, "steps", [small]):
        step.block_rows = 37
    small.block_rows = 37
    big = make_transform(spec)
    a = small.fit(x, rows).transform(x)
    b = big.fit(x, rows).transform(x)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # row selection in transform equals slicing the full output
    np.testing.assert_allclose(big.transform(x, rows[:50]), b[rows[:50]], rtol=0, atol=0)


def test_memmap_input_and_output(tmp_path):
    x = _anisotropic(n=800)
    path = tmp_path / "emb.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=(800, 12))
    w = Whiten(block_rows=100)
    res = w.fit(mm).transform(mm, out=out)
    assert res is out
    np.testing.assert_allclose(np.asarray(out), Whiten().fit_transform(x), rtol=1e-5, atol=1e-5)


def test_pipeline_fits_each_step_on_the_previous_output():
    x = _anisotropic()
    p = make_transform("center+whiten:normalize=false")
    assert isinstance(p, Pipeline)
    y = p.fit_transform(x).astype(np.float64)
    np.testing.assert_allclose(np.cov(y.T, bias=True), np.eye(12), atol=1e-5)
    np.testing.assert_allclose(p.steps[1].mean_, 0.0, atol=1e-4)  # whiten saw centred data


def test_make_transform_specs_and_objects():
    assert make_transform(None) is None and make_transform("none") is None
    w = Whiten(dim=3)
    c = make_transform(w)
    assert isinstance(c, Whiten) and c is not w and c.dim == 3
    p = make_transform(["center", Normalize()])
    assert [type(s) for s in p.steps] == [Center, Normalize]
    assert make_transform("whiten:normalize=false,eig_floor=0.001").eig_floor == 0.001
    with pytest.raises(ValidationError, match="Unknown transform"):
        make_transform("whitening")
    with pytest.raises(ValidationError, match="key=value"):
        make_transform("whiten:dim")
    with pytest.raises(ValidationError):
        make_transform(3)


def test_errors():
    x = _anisotropic(n=50)
    with pytest.raises(ValidationError, match="not fitted"):
        Normalize().transform(x)
    with pytest.raises(ValidationError, match="columns"):
        Center().fit(x).transform(x[:, :5])
    bad = x.copy()
    bad[7, 2] = np.nan
    with pytest.raises(NonFiniteEmbeddingError, match="row 7"):
        Center().fit(bad)
    with pytest.raises(ValidationError):
        Whiten(dim=0)
    with pytest.raises(ValidationError):
        RandomProjection(dim=4, kind="sparse")


def test_fit_transform_rows_fills_only_the_asked_rows():
    x = _anisotropic(n=300)
    cand = np.arange(100, 300)
    used = np.arange(50, 300)
    out = fit_transform_rows("whiten", x, cand, used)
    assert out.shape == (300, 12) and out.dtype == np.float32
    assert not out[:50].any()
    np.testing.assert_allclose(out[used], Whiten().fit(x, cand).transform(x, used), rtol=0, atol=1e-7)
