"""vendi_score at large orders q: computed in log space, finite, tending to 1 / largest eigenvalue.

The oracle is exact rational arithmetic (fractions) and a 60-digit logarithm (decimal), independent of
the floating-point code under test.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest

from diverseevol import vendi_score
from diverseevol.diversity import vendi_score_from_eigenvalues


def _exact_vendi(spectrum: list[Fraction], q: int) -> float:
    """(sum p_i^q)^(1 / (1 - q)) for rational p_i summing to 1, with 60-digit decimal arithmetic."""
    with localcontext() as ctx:
        ctx.prec = 60
        ctx.Emin = -(10**9)
        total = sum(((Decimal(p.numerator) / Decimal(p.denominator)).ln() * q).exp() for p in spectrum)
        return float((total.ln() / Decimal(1 - q)).exp())


# Rows e1, e1, e2, e3, e4 (cosine kernel): K / 5 has eigenvalues 2/5, 1/5, 1/5, 1/5.
DUPLICATED = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
DUPLICATED_SPECTRUM = [Fraction(2, 5), Fraction(1, 5), Fraction(1, 5), Fraction(1, 5)]


@pytest.mark.parametrize("q", [2, 50, 500, 1000, 5000, 10**6])
def test_large_orders_match_exact_value(q):
    want = _exact_vendi(DUPLICATED_SPECTRUM, q)
    got = vendi_score(DUPLICATED, q=q)
    assert math.isfinite(got)
    assert got == pytest.approx(want, rel=1e-12)
    assert vendi_score_from_eigenvalues([0.4, 0.2, 0.2, 0.2], q=q) == pytest.approx(want, rel=1e-12)


def test_orders_tend_to_inverse_largest_eigenvalue():
    orders = [2, 10, 100, 1000, 1e5, 1e9, 1e300, math.inf]
    scores = [vendi_score(DUPLICATED, q=q) for q in orders]
    assert all(math.isfinite(s) for s in scores)
    assert all(a >= b - 1e-12 for a, b in zip(scores, scores[1:]))  # non-increasing in q
    assert scores[-1] == pytest.approx(1 / 0.4, rel=1e-12)  # q = inf: 1 / lambda_max
    assert scores[-2] == pytest.approx(1 / 0.4, rel=1e-12)
    assert abs(scores[3] - 2.5) < abs(scores[2] - 2.5) < abs(scores[1] - 2.5)


@pytest.mark.parametrize("q", [1000, 1e6, "inf"])
@pytest.mark.parametrize("n", [5, 64])
def test_orthonormal_rows_score_n_at_any_order(q, n):
    # Uniform spectrum 1/n: every order gives n; 0.2 ** 1000 underflows to 0 in linear space.
    assert vendi_score(np.eye(n), q=q) == pytest.approx(n, rel=1e-12)


def test_identical_rows_score_one_at_large_order():
    assert vendi_score(np.ones((7, 3)), q=1000) == pytest.approx(1.0, rel=1e-12)


def test_random_spectrum_large_order_against_eigenvalue_oracle():
    x = np.random.default_rng(0).normal(size=(30, 12))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    lam = np.linalg.eigvalsh(xn.T @ xn / len(x))
    lam = lam[lam > 1e-12]
    lam = lam / lam.sum()
    spectrum = [Fraction(float(v)) for v in lam]
    spectrum = [p / sum(spectrum) for p in spectrum]
    for q in (300, 1000, 3000):
        assert vendi_score(x, q=q) == pytest.approx(_exact_vendi(spectrum, q), rel=1e-8)


@pytest.mark.parametrize("method", ["covariance", "kernel"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vendi_never_changes_the_callers_array(method, dtype):
    x = np.random.default_rng(1).normal(size=(40, 6)).astype(dtype) * 3
    before = x.copy()
    vendi_score(x, method=method)
    vendi_score(x, method=method, normalize=False)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("shape", [(6, 3), (3, 6)])  # the d x d side and the n x n side
def test_linear_kernel_on_rows_of_1e200_equals_the_rescaled_data(shape):
    """Issue 12 item 11: normalize=False on rows like 1e200 used to overflow X^T X and raise LinAlgError.

    The eigenvalues are divided by their sum, so the score is invariant under a global rescaling: the oracle is
    the same data divided by 1e200.
    """
    rng = np.random.default_rng(5)
    x = rng.uniform(1.0, 3.0, size=shape)
    assert vendi_score(x * 1e200, normalize=False) == pytest.approx(vendi_score(x, normalize=False), rel=1e-12)
    assert vendi_score(x * 1e200, q=2, normalize=False) == pytest.approx(vendi_score(x, q=2, normalize=False), rel=1e-12)
