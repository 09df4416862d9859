"""Degenerate embeddings (all or nearly all rows the same) are reported loudly, with cause and fix."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from diverseevol._validation import check_not_degenerate, identical_row_fraction
from diverseevol.errors import (
    DegenerateEmbeddingError,
    DegenerateEmbeddingsWarning,
    DiverseEvolWarning,
    ValidationError,
)


def _diverse(n=200, d=16, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _no_warning(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateEmbeddingsWarning)
        return fn(*args, **kwargs)


def test_identical_rows_warn_with_cause_and_fix():
    emb = np.tile(_diverse(1, 8), (50, 1))
    with pytest.warns(DegenerateEmbeddingsWarning) as caught:
        frac = check_not_degenerate(emb, name="Z embeddings")
    assert frac == 1.0
    msg = str(caught[0].message)
    assert "Z embeddings are degenerate" in msg and "50 of 50 rows" in msg
    assert "max_length" in msg and "prompt template" in msg  # the likely cause and the fix
    assert issubclass(DegenerateEmbeddingsWarning, DiverseEvolWarning)


def test_raise_mode_is_a_typed_value_error():
    emb = np.zeros((10, 4))
    with pytest.raises(DegenerateEmbeddingError, match="every row is zero") as info:
        check_not_degenerate(emb, action="raise")
    assert isinstance(info.value, ValidationError) and isinstance(info.value, ValueError)
    with pytest.raises(ValidationError, match="action must be"):
        check_not_degenerate(emb, action="ignore")


def test_nearly_all_identical_rows_are_degenerate():
    emb = np.tile(_diverse(1, 8, seed=1), (100, 1))
    emb[[3, 40, 77, 99]] = _diverse(4, 8, seed=2)  # 96 of 100 the same
    assert identical_row_fraction(emb) == pytest.approx(0.96)
    with pytest.warns(DegenerateEmbeddingsWarning, match="96 of 100 rows"):
        check_not_degenerate(emb)
    # the threshold is a parameter: 96% is below max_fraction=0.97
    assert _no_warning(check_not_degenerate, emb, max_fraction=0.97) == pytest.approx(0.96)


def test_rounding_noise_still_counts_as_identical():
    # what a half-precision forward pass of identical inputs in different batches gives
    base = _diverse(1, 64, seed=3)
    noise = np.random.default_rng(4).normal(scale=1e-4, size=(300, 64))
    emb = (base * (1 + noise)).astype(np.float32)
    with pytest.warns(DegenerateEmbeddingsWarning, match="300 of 300"):
        check_not_degenerate(emb)


@pytest.mark.parametrize("shape", [(200, 16), (5000, 3), (40, 512)])
def test_diverse_embeddings_do_not_warn(shape):
    emb = _diverse(*shape)
    assert _no_warning(check_not_degenerate, emb) < 0.01


def test_clustered_but_distinct_rows_do_not_warn():
    # two tight clusters are not "all the same"; neither are rows that share a large common part
    rng = np.random.default_rng(5)
    centers = rng.normal(size=(2, 32))
    emb = centers[rng.integers(0, 2, size=400)] + rng.normal(scale=0.05, size=(400, 32))
    assert _no_warning(check_not_degenerate, emb) < 0.9
    shared = 100 * np.ones((400, 32)) + rng.normal(scale=5.0, size=(400, 32))
    assert _no_warning(check_not_degenerate, shared) < 0.9


def test_huge_values_do_not_overflow_and_nonfinite_rows_never_count():
    emb = np.full((20, 4), 1e200)
    with pytest.warns(DegenerateEmbeddingsWarning, match="20 of 20"):
        check_not_degenerate(emb)
    emb = np.tile(_diverse(1, 4), (20, 1)).astype(np.float64)
    emb[:10] = np.nan
    assert identical_row_fraction(emb) == pytest.approx(0.5)


def test_memmap_is_read_in_blocks(tmp_path):
    path = tmp_path / "z.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(20000, 8))
    mm[:] = _diverse(1, 8)
    mm[:100] = _diverse(100, 8, seed=7)
    mm.flush()
    emb = np.load(path, mmap_mode="r")
    assert identical_row_fraction(emb, block_values=4096) == pytest.approx(0.995)
    with pytest.warns(DegenerateEmbeddingsWarning):
        check_not_degenerate(emb)


def test_single_row_is_not_flagged():
    assert _no_warning(check_not_degenerate, np.ones((1, 3))) == 1.0
