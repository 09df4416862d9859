"""Issue 12 item 2: index files holding fractional values are refused, never truncated.

One reader (:func:`diverseevol.selection.read_index_file`) serves ``select --pool`` and
``vendi --indices``; the oracle is the values written to the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from diverseevol.cli import EXIT_OK, main
from diverseevol.errors import DiverseEvolError, IndexValidationError
from diverseevol.selection import read_index_file


def _write(path: Path, values: object) -> Path:
    if path.suffix == ".npy":
        np.save(path, np.asarray(values))
    elif path.suffix == ".json":
        path.write_text(json.dumps(values))
    else:
        path.write_text("".join(f"{v}\n" for v in values))  # type: ignore[attr-defined]
    return path


@pytest.mark.parametrize("suffix", [".json", ".npy", ".txt"])
@pytest.mark.parametrize("values", [[1.5, 2.7, 3.9], [0, 2, 3.25], [1e-9 + 4]])
def test_fractional_indices_are_refused(tmp_path: Path, suffix: str, values: list[float]) -> None:
    path = _write(tmp_path / f"idx{suffix}", values)
    with pytest.raises(IndexValidationError) as info:
        read_index_file(path, name="--pool")
    text = str(info.value)
    assert str(path) in text and "--pool" in text and "whole" in text
    bad = next(v for v in values if v != int(v))
    assert repr(float(bad)) in text or str(bad) in text
    assert isinstance(info.value, ValueError) and isinstance(info.value, DiverseEvolError)


@pytest.mark.parametrize("suffix", [".json", ".npy", ".txt"])
def test_integral_floats_are_accepted_exactly(tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path / f"idx{suffix}", [3.0, 0.0, 7.0])
    got = read_index_file(path, name="--pool")
    assert got.dtype == np.int64 and got.tolist() == [3, 0, 7]


@pytest.mark.parametrize(
    ("content", "suffix"),
    [
        ("[1, true]", ".json"),
        ('[1, "2"]', ".json"),
        ("[1, NaN]", ".json"),
        ("[[1, 2]]", ".json"),
        ('{"a": 1}', ".json"),
        ("1\nx\n", ".txt"),
        ("1\ninf\n", ".txt"),
        ("[18446744073709551615]", ".json"),
    ],
)
def test_other_non_indices_are_refused(tmp_path: Path, content: str, suffix: str) -> None:
    path = tmp_path / f"idx{suffix}"
    path.write_text(content)
    with pytest.raises(IndexValidationError, match="idx"):
        read_index_file(path, name="--indices")


def test_npy_bool_uint64_and_2d(tmp_path: Path) -> None:
    with pytest.raises(IndexValidationError, match="boolean"):
        read_index_file(_write(tmp_path / "b.npy", [True, False]), name="--pool")
    with pytest.raises(IndexValidationError, match="18446744073709551615"):
        read_index_file(_write(tmp_path / "u.npy", np.array([1, 2**64 - 1], dtype=np.uint64)), name="--pool")
    assert read_index_file(_write(tmp_path / "u2.npy", np.array([5, 1], dtype=np.uint64)), name="p").tolist() == [5, 1]
    with pytest.raises(IndexValidationError, match="1-D"):
        read_index_file(_write(tmp_path / "m.npy", np.zeros((2, 2), dtype=np.int64)), name="--pool")
    empty = tmp_path / "e.txt"
    empty.write_text("  \n")
    assert read_index_file(empty, name="--pool").size == 0


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"q{i}", "input": "", "output": "a"}) + "\n" for i in range(10)))
    emb = tmp_path / "e.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(10, 3)))
    return data, emb


@pytest.mark.parametrize("suffix", [".json", ".npy"])
def test_select_and_vendi_refuse_fractional_index_files(dataset: tuple[Path, Path], tmp_path: Path, suffix: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    data, emb = dataset
    idx = _write(tmp_path / f"idx{suffix}", [1.5, 2.7, 3.9])
    out = tmp_path / "o.jsonl"
    assert main(["select", str(data), "--embeddings", str(emb), "--k", "2", "--pool", str(idx),
                 "--out", str(out)]) != EXIT_OK
    err = capsys.readouterr().err
    assert "1.5" in err and "--pool" in err and not out.exists()
    assert main(["vendi", "--embeddings", str(emb), "--indices", str(idx)]) != EXIT_OK
    assert "1.5" in capsys.readouterr().err
    # The integral spelling of the same pool is accepted and used.
    _write(idx, [1.0, 2.0, 3.0])
    assert main(["select", str(data), "--embeddings", str(emb), "--k", "7", "--pool", str(idx),
                 "--out", str(out)]) == EXIT_OK
    picked = [int(json.loads(line)["instruction"][1:]) for line in out.read_text().splitlines()]
    assert sorted(picked) == [0, 4, 5, 6, 7, 8, 9]


def test_deeply_nested_index_file_is_a_typed_error(tmp_path: Path) -> None:
    """Fuzz finding C3: JSON nested 50,000 deep used to escape as RecursionError."""
    path = tmp_path / "deep.json"
    path.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(IndexValidationError) as info:
        read_index_file(path, name="--pool")
    assert str(path) in str(info.value) and "nested too deeply" in str(info.value)


def test_binary_index_file_is_a_typed_error_naming_the_file(tmp_path: Path) -> None:
    """Fuzz finding C4: a binary file used to raise a bare UnicodeDecodeError without the file name."""
    path = tmp_path / "pool.txt"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(IndexValidationError) as info:
        read_index_file(path, name="--pool")
    assert str(path) in str(info.value) and "UTF-8" in str(info.value)
    assert not isinstance(info.value, UnicodeDecodeError)
