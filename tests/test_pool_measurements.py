"""measurements.pool_measurements: the per-round measurements of a pool, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from diverseevol.measurements import mean_squared_norm, pool_measurements, pool_vendi

# Z: four points in the plane. Pool P = {0, 1}, candidates Q = {2, 3}.
#   x0 = (1, 0), x1 = (0, 2), x2 = (3, 0), x3 = (0, -1)
EMB = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, -1.0]])
POOL = np.array([1, 0])  # pick order, not sorted: the measurements must not depend on it
CAND = np.array([2, 3])


def test_euclidean_case_by_hand():
    got = pool_measurements(EMB, POOL, CAND)
    # x0, x1 are orthogonal: the cosine kernel of P is the 2 x 2 identity, eigenvalues (1/2, 1/2),
    # Vendi = exp(-2 * 1/2 * log 1/2) = 2.
    assert got["vendi"] == pytest.approx(2.0, rel=1e-12)
    # x2 is 2 from x0 (and sqrt(13) from x1); x3 is sqrt(2) from x0 (and 3 from x1): max(2, sqrt 2) = 2.
    assert got["covering_radius"] == pytest.approx(2.0, rel=1e-6)
    assert got["pool_sq_norm_mean"] == pytest.approx((1 + 4) / 2)
    assert got["all_sq_norm_mean"] == pytest.approx((1 + 4 + 9 + 1) / 4)
    # issue 14 added "norm_ratio" (mean L2 norm of P / of all rows): (1 + 2) / 2 over (1 + 2 + 3 + 1) / 4
    assert got["norm_ratio"] == pytest.approx(1.5 / 1.75)
    assert list(got) == ["vendi", "covering_radius", "pool_sq_norm_mean", "all_sq_norm_mean", "norm_ratio"]


def test_cosine_case_by_hand():
    got = pool_measurements(EMB, POOL, CAND, "cosine")
    # cosine distance 1 - cos: x2 is parallel to x0 (0); x3 is orthogonal to x0 (1) and opposite
    # to x1 (2): covering radius max(0, 1) = 1.
    assert got["covering_radius"] == pytest.approx(1.0, rel=1e-6)
    assert got["vendi"] == pytest.approx(2.0, rel=1e-12)  # Vendi always uses the cosine kernel


def test_known_radius_is_used_and_empty_sets_give_none():
    assert pool_measurements(EMB, POOL, CAND, covering_radius=7.5)["covering_radius"] == 7.5
    no_candidates = pool_measurements(EMB, np.arange(4), np.empty(0, dtype=np.int64))
    assert no_candidates["covering_radius"] is None
    empty_pool = pool_measurements(EMB, np.empty(0, dtype=np.int64), np.arange(4))
    assert empty_pool["vendi"] is None and empty_pool["covering_radius"] is None
    assert math.isnan(empty_pool["pool_sq_norm_mean"])


def test_pool_vendi_reports_none_for_a_zero_row(caplog):
    emb = np.array([[0.0, 0.0], [1.0, 0.0]])
    assert pool_vendi(emb, np.array([0, 1])) is None
    assert "not computed" in caplog.text
    assert pool_vendi(emb, np.array([1])) == pytest.approx(1.0)


def test_mean_squared_norm_of_a_memmap_in_blocks(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(50, 3)).astype(np.float32)
    np.save(tmp_path / "e.npy", arr)
    mm = np.load(tmp_path / "e.npy", mmap_mode="r")
    rows = np.array([4, 9, 31])
    sq = (arr.astype(np.float64) ** 2).sum(axis=1)
    assert mean_squared_norm(mm) == pytest.approx(float(sq.mean()), rel=1e-12)
    assert mean_squared_norm(mm, rows) == pytest.approx(float(sq[rows].mean()), rel=1e-12)


def test_the_old_import_path_warns_and_gives_the_same_functions():
    import diverseevol.diversity as diversity
    import diverseevol.measurements as measurements

    for name in ("pool_measurements", "pool_vendi", "mean_squared_norm"):
        with pytest.warns(DeprecationWarning, match=f"diverseevol.measurements.{name}"):
            assert getattr(diversity, name) is getattr(measurements, name)
    with pytest.raises(AttributeError):
        diversity.no_such_name  # noqa: B018
