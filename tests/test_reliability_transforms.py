"""Issue 22 item 10: ``Whiten`` at extreme scales.

Oracle: whitening is scale invariant (scaling the rows by s scales the covariance by s², and the
whitened rows are divided by s again), so the whitened rows of ``s * X`` equal those of ``X`` for
every s > 0. Rows that are really all identical are refused at every scale.
"""

from __future__ import annotations

import numpy as np
import pytest

from diverseevol.errors import ValidationError
from diverseevol.transforms import Normalize, Whiten


def _rows(n: int = 40, d: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ np.diag([4.0, 2.0, 1.0, 0.5, 0.25]) + 3.0


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300, 1e-300, 2.0**1000, 2.0**-1000])
@pytest.mark.parametrize("normalize", [True, False])
def test_whiten_is_scale_invariant_from_1e_minus_300_to_1e300(scale: float, normalize: bool) -> None:
    x = _rows()
    expected = Whiten(normalize=normalize).fit_transform(x)
    with np.errstate(all="raise"):
        got = Whiten(normalize=normalize).fit_transform(x * scale)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_whiten_blocks_of_very_different_scales_are_summed_without_overflow() -> None:
    # the first block is small, a later one near 1e200: the running sums must be rescaled
    x = _rows(n=60)
    x[20:] *= 1e200
    expected = Whiten(normalize=False).fit_transform(x / 1e200)
    got = Whiten(normalize=False, block_rows=7).fit_transform(x)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_whiten_rows_near_the_float64_limit_of_both_signs() -> None:
    x = _rows()
    x = x / np.abs(x).max() * 1.7e308
    x[::2] *= -1
    got = Whiten().fit_transform(x)
    expected = Whiten().fit_transform(x / 1e300)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("value", [1e200, 1e-200, 0.0, -3.5])
def test_whiten_refuses_identical_rows_at_every_scale(value: float) -> None:
    x = np.full((10, 4), value)
    with pytest.raises(ValidationError, match="all identical"):
        Whiten().fit(x)


def test_whiten_explained_variance_is_in_the_input_units() -> None:
    x = _rows()
    small = Whiten(normalize=False).fit(x * 1e-100)
    ref = Whiten(normalize=False).fit(x)
    np.testing.assert_allclose(small.explained_variance_, ref.explained_variance_ * 1e-200, rtol=1e-8)
    np.testing.assert_allclose(small.mean_, ref.mean_ * 1e-100, rtol=1e-10)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300, 1e-300])
def test_normalize_gives_unit_rows_from_1e_minus_300_to_1e300(scale: float) -> None:
    # a row near 1e200 has a squared norm beyond float64 and one near 1e-200 one below it:
    # neither may come out as zeros or unchanged
    x = _rows()
    x[3] = 0.0
    expected = Normalize().fit_transform(x)
    got = Normalize().fit_transform(x * scale)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert (got[3] == 0).all()
