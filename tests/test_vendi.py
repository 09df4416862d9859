"""vendi_score against the reference `vendi-score` package and known cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from diverseevol import vendi_score
from diverseevol.diversity import vendi_eigenvalues, vendi_score_from_eigenvalues
from diverseevol.errors import NonFiniteEmbeddingError, ValidationError

vendi = pytest.importorskip("vendi_score.vendi", reason="the vendi-score package (dev extra) is the oracle")

# vendi-score touches the deprecated scipy.sparse.csr namespace.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ORDERS = [0.1, 0.5, 1.0, 2.0, 3.5, math.inf]


def _ref_q(q):
    return "inf" if math.isinf(q) else q


def _cosine_kernel(x):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


@pytest.mark.parametrize("q", ORDERS)
@pytest.mark.parametrize("shape", [(40, 64), (64, 64), (300, 24)])
def test_matches_reference(q, shape):
    x = np.random.default_rng(shape[0] * 1000 + shape[1]).normal(size=shape)
    if shape[0] <= shape[1]:
        want = vendi.score_K(_cosine_kernel(x), q=_ref_q(q))
    else:
        # score_K on the 300 x 300 kernel would also count 276 rounding-level eigenvalues,
        # which inflate q < 1; the reference's d x d route has only the 24 real ones.
        want = vendi.score_dual(x, q=_ref_q(q))
    assert vendi_score(x, q) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("q", ORDERS)
def test_matches_reference_score_dual_large_n(q):
    x = np.random.default_rng(1).lognormal(size=(2000, 32)).astype(np.float32)  # correlated, non-centred
    want = vendi.score_dual(x.astype(np.float64), q=_ref_q(q))
    assert vendi_score(x, q, block_rows=333) == pytest.approx(want, rel=1e-6)


def test_linear_kernel_scale_invariant_and_equal_to_cosine_on_unit_rows():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(100, 10))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    for q in (0.5, 1, 2):
        assert vendi_score(unit, q, normalize=False) == pytest.approx(vendi_score(x, q), rel=1e-12)
        assert vendi_score(7.5 * x, q, normalize=False) == pytest.approx(vendi_score(x, q, normalize=False), rel=1e-12)
    # against the reference on the trace-normalised linear kernel
    k = x @ x.T
    assert vendi_score(x, 1, normalize=False) == pytest.approx(
        vendi.score_K(k * len(x) / np.trace(k), q=1), rel=1e-6
    )


@pytest.mark.parametrize("q", [0, 0.5, 1, 2, math.inf])
def test_identical_rows_score_one(q):
    row = np.random.default_rng(3).normal(size=(1, 50)).astype(np.float32)
    for n in (7, 500):  # both sides: n x n and d x d
        assert vendi_score(np.repeat(row, n, axis=0), q) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("q", [0, 0.5, 1, 2, math.inf])
def test_orthonormal_rows_score_n(q):
    rng = np.random.default_rng(4)
    basis, _ = np.linalg.qr(rng.normal(size=(60, 12)))  # 12 orthonormal columns of R^60
    x = basis.T  # 12 orthonormal rows
    assert vendi_score(x, q) == pytest.approx(12.0, rel=1e-9)
    assert vendi_score(3.0 * x, q) == pytest.approx(12.0, rel=1e-9)  # cosine ignores scale


def test_order_zero_counts_rank():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 3)) @ rng.normal(size=(3, 30))  # rank 3, d = 30
    assert vendi_score(x, 0) == 3.0
    assert vendi_score(x[:20], 0) == 3.0


def test_orders_are_non_increasing_and_bounded():
    x = np.random.default_rng(6).normal(size=(300, 20))
    values = [vendi_score(x, q) for q in (0, 0.25, 0.5, 1, 2, 4, math.inf)]
    assert all(a >= b - 1e-9 for a, b in itertools.pairwise(values))
    assert 1 <= values[-1] and values[0] <= 20


def test_string_inf_accepted():
    x = np.random.default_rng(7).normal(size=(30, 5))
    assert vendi_score(x, "inf") == pytest.approx(vendi_score(x, math.inf), rel=1e-12)
    assert vendi_score(x, "Infinity") == pytest.approx(vendi_score(x, np.inf), rel=1e-12)


def test_memmap_equals_in_memory(tmp_path):
    rng = np.random.default_rng(8)
    data = rng.normal(size=(5000, 48)).astype(np.float32)
    path = tmp_path / "emb.f32"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=data.shape)
    mm[:] = data
    mm.flush()
    ro = np.memmap(path, dtype=np.float32, mode="r", shape=data.shape)
    for q in (0.5, 1, 2):
        assert vendi_score(ro, q, block_rows=700) == pytest.approx(vendi_score(data, q), rel=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
def test_covariance_side_equals_kernel_side(normalize):
    x = np.random.default_rng(9).normal(size=(500, 16)).astype(np.float32) + 0.3
    w_cov = vendi_eigenvalues(x, normalize=normalize, method="covariance", block_rows=128)
    w_ker = vendi_eigenvalues(x, normalize=normalize, method="kernel", block_rows=128)
    assert w_cov.shape == w_ker.shape == (16,)  # only the min(n, d) eigenvalues
    np.testing.assert_allclose(w_cov, w_ker, rtol=1e-8, atol=1e-14)
    for q in (0.1, 0.5, 1, 2, math.inf):
        a = vendi_score(x, q, normalize=normalize, method="covariance")
        b = vendi_score(x, q, normalize=normalize, method="kernel")
        assert a == pytest.approx(b, rel=1e-9)


def test_small_orders_not_inflated_by_spurious_eigenvalues():
    # n >> d through the n x n side: without the min(n, d) cut, the ~n - d rounding-level
    # eigenvalues would raise q = 0.1 well above its d x d value.
    x = np.random.default_rng(10).normal(size=(800, 8))
    assert vendi_score(x, 0.1, method="kernel") == pytest.approx(vendi_score(x, 0.1, method="covariance"), rel=1e-9)


def test_eigenvalues_properties():
    x = np.random.default_rng(11).normal(size=(50, 80))
    w = vendi_eigenvalues(x)
    assert w.shape == (50,) and np.all(w >= 0) and np.all(np.diff(w) <= 0)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert vendi_score_from_eigenvalues(w, 1) == pytest.approx(vendi_score(x, 1), rel=1e-12)


# ------------------------------------------------------------------ validation
def test_zero_row_is_a_clear_error():
    x = np.ones((20, 4))
    x[13] = 0
    for method in ("covariance", "kernel"):
        with pytest.raises(ValidationError, match="row 13 is all zeros.*normalize=False"):
            vendi_score(x, method=method)
    assert vendi_score(x, normalize=False) == pytest.approx(1.0)
    with pytest.raises(ValidationError, match="every row is zero"):
        vendi_score(np.zeros((5, 3)), normalize=False)


def test_non_finite_rows():
    x = np.ones((30, 4))
    x[17, 2] = np.nan
    for method in ("covariance", "kernel"):
        with pytest.raises(NonFiniteEmbeddingError, match="row 17"):
            vendi_score(x, method=method, block_rows=8)


@pytest.mark.parametrize("q", [-1, float("nan"), "two", None, True])
def test_bad_q(q):
    with pytest.raises(ValidationError, match="q must"):
        vendi_score(np.eye(3), q)


def test_bad_arguments():
    with pytest.raises(ValidationError, match="2-D"):
        vendi_score(np.ones(5))
    with pytest.raises(ValidationError, match="at least one row"):
        vendi_score(np.ones((0, 5)))
    with pytest.raises(ValidationError, match="block_rows"):
        vendi_score(np.eye(3), block_rows=0)
    with pytest.raises(ValidationError, match="method"):
        vendi_score(np.eye(3), method="svd")
    with pytest.raises(ValidationError, match="eig_tol"):
        vendi_score(np.eye(3), eig_tol=2.0)
    with pytest.raises(ValidationError, match="eigenvalues must"):
        vendi_score_from_eigenvalues([-0.1, 1.1])
    assert isinstance(ValidationError("x"), ValueError)
