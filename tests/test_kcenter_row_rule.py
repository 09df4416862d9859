"""The kernels' per-row product rule (kernels._rowblocks.row_products): a row's bits depend on its data only,
whatever rows surround it, where it sits in memory, or how many centers it meets at once."""

from __future__ import annotations

import numpy as np
import pytest

from diverseevol import kcenter_select
from diverseevol.kernels import _rowblocks

from kcenter_oracle import kcenter_oracle


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [9, 64, 128, 300, 4096])
def test_a_rows_product_does_not_depend_on_its_neighbours_or_address(dtype, d):
    rng = np.random.default_rng(d)
    x = rng.standard_normal((203, d)).astype(dtype)
    c = rng.standard_normal(d).astype(dtype)
    ref = _rowblocks.row_products(x, c)
    perm = rng.permutation(len(x))
    np.testing.assert_array_equal(_rowblocks.row_products(x[perm], c), ref[perm])  # gathered, reordered
    for i in (0, 1, 101, 202):
        np.testing.assert_array_equal(_rowblocks.row_products(x[i : i + 1], c), ref[i : i + 1])  # alone
    buf = np.empty(x.size + 1, dtype=dtype)
    moved = buf[1:].reshape(x.shape)  # one element off the array's alignment
    moved[:] = x
    np.testing.assert_array_equal(_rowblocks.row_products(moved, c), ref)
    strided = np.empty((len(x), 2 * d), dtype=dtype)[:, ::2]  # a non-contiguous view: copied, same bits
    strided[:] = x
    np.testing.assert_array_equal(_rowblocks.row_products(strided, c), ref)
    w = rng.standard_normal((5, d)).astype(dtype)
    pairs = _rowblocks.pair_products(x, w)
    assert pairs.shape == (len(x), 5)
    for k in range(5):
        np.testing.assert_array_equal(pairs[:, k], _rowblocks.row_products(x, w[k]))
    np.testing.assert_array_equal(_rowblocks.sq_norms(x), _rowblocks.row_products(x, x))
    tol = 1e-3 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(ref, x.astype(np.float64) @ c.astype(np.float64), rtol=tol, atol=tol)


def test_long_rows_and_a_failed_probe_fall_back_to_einsum(monkeypatch):
    x = np.random.default_rng(0).standard_normal((7, _rowblocks.VECDOT_MAX_D + 1)).astype(np.float32)
    assert not _rowblocks.uses_vecdot(x.shape[1])
    np.testing.assert_array_equal(_rowblocks.row_products(x, x[0]), np.einsum("ij,j->i", x, x[0]))
    monkeypatch.setattr(_rowblocks, "_vecdot_ok", False)
    y = x[:, :100].copy()
    np.testing.assert_array_equal(_rowblocks.row_products(y, y[0]), np.einsum("ij,j->i", y, y[0]))
    np.testing.assert_array_equal(_rowblocks.pair_products(y, y[:3]), np.einsum("ij,kj->ik", y, y[:3]))


def test_the_probe_accepts_this_numpy(monkeypatch):
    monkeypatch.setattr(_rowblocks, "_vecdot_ok", None)
    assert _rowblocks.uses_vecdot(128) == hasattr(np, "vecdot")
    assert not _rowblocks.uses_vecdot(_rowblocks.VECDOT_MIN_D - 1)  # short rows: einsum is faster there


@pytest.mark.parametrize("rule", ["vecdot", "einsum"])
def test_picks_match_the_oracle_under_either_rule_and_duplicates_tie(monkeypatch, rule):
    """Exact duplicates stay exactly 0 apart (the lowest index wins a tie) under both rules."""
    monkeypatch.setattr(_rowblocks, "_vecdot_ok", rule == "vecdot" and hasattr(np, "vecdot"))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((600, 130)).astype(np.float32)
    x[300:] = x[:300]  # every row twice
    pool = np.array([0, 1, 2])
    for prune, lazy in ((False, False), (True, False), (False, True), ("auto", "auto")):
        picks = kcenter_select(x, pool, 40, backend="numpy", prune=prune, lazy=lazy, progress=False)
        assert np.all(np.asarray(picks) < 300), (prune, lazy)  # the copy at index + 300 never wins its tie
        ref, _ = kcenter_oracle(x, pool, None, 40)
        np.testing.assert_array_equal(np.asarray(picks), ref)
