"""Messages that tell the truth: uint64 indices, huge finite rows under cosine, non-.npy and empty .npy files."""

from __future__ import annotations

import numpy as np
import pytest

from diverseevol import kcenter_select, vendi_score
from diverseevol._files import load_npy, read_npy
from diverseevol.errors import DiverseEvolError, IndexValidationError, RunDirectoryError, ValidationError


# ---- uint64 indices ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [2**63 + 5, 2**64 - 1, 10])
def test_uint64_index_is_reported_as_its_real_value(value):
    idx = np.array([value], dtype=np.uint64)
    with pytest.raises(IndexValidationError) as info:
        kcenter_select(np.eye(5), idx, 2)
    msg = str(info.value)
    assert f"got {value}." in msg and "-" not in msg.split("got ", 1)[1].split(".")[0]


def test_uint64_indices_in_range_still_work():
    picks = kcenter_select(np.eye(6), np.array([0, 1], dtype=np.uint64), 2)
    assert picks.dtype == np.int64 and len(picks) == 2


# ---- huge finite rows under the cosine metric ----------------------------------------------------
def test_vendi_cosine_of_huge_finite_rows_is_scale_invariant():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5))
    want = vendi_score(x)
    for scale in (1e150, 1e200, 1e300):
        assert vendi_score(x * scale) == pytest.approx(want, rel=1e-9)
        assert vendi_score(x * scale, method="kernel") == pytest.approx(want, rel=1e-9)
        assert vendi_score(x * scale, method="covariance") == pytest.approx(want, rel=1e-9)
    assert vendi_score(x / 1e300) == pytest.approx(want, rel=1e-9)  # tiny rows are not zero rows either


def test_vendi_cosine_really_zero_row_is_still_named():
    x = np.ones((4, 3)) * 1e200
    x[2] = 0
    with pytest.raises(ValidationError, match="row 2 is all zeros"):
        vendi_score(x)


# ---- .npy files ------------------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path):
    text = tmp_path / "emb.txt"
    text.write_text("0.1 0.2\n0.3 0.4\n")
    csv = tmp_path / "emb.npy"  # a CSV under a .npy name
    csv.write_text("0.1,0.2\n0.3,0.4\n")
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.npy"
    np.save(cut, np.ones((50, 4)))
    cut.write_bytes(cut.read_bytes()[:200])
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return {"text": text, "csv": csv, "empty": empty, "cut": cut, "objects": objects}


EXPECTED = {
    "text": "is not a .npy file",
    "csv": "is not a .npy file",
    "empty": "is empty (0 bytes)",
    "cut": "truncated or corrupt",
    "objects": "holds Python objects",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
@pytest.mark.parametrize("mmap", [False, True])
def test_read_npy_names_the_file_and_the_problem(files, kind, mmap):
    with pytest.raises(RunDirectoryError) as info:
        read_npy(files[kind], mmap=mmap)
    msg = str(info.value)
    assert str(files[kind]) in msg and EXPECTED[kind] in msg
    assert "allow_pickle" not in msg and "unsafely" not in msg
    assert isinstance(info.value, OSError) and isinstance(info.value, DiverseEvolError)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_kcenter_select_on_a_bad_npy_path(files, kind):
    with pytest.raises(ValidationError) as info:
        kcenter_select(files[kind], [], 1, random_state=0)
    msg = str(info.value)
    assert str(files[kind]) in msg and EXPECTED[kind] in msg
    assert "allow_pickle" not in msg and "unsafely" not in msg


def test_load_npy_error_type_and_fix_are_the_callers(files):
    with pytest.raises(ValidationError, match=r"empty \(0 bytes\).*Recompute it"):
        load_npy(files["empty"], error=ValidationError, fix=" Recompute it.")
    good = files["text"].with_name("good.npy")
    np.save(good, np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(load_npy(good), np.arange(6.0).reshape(2, 3))
    assert isinstance(load_npy(good, mmap=True), np.memmap)
