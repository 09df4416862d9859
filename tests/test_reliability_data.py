"""Issue 12 item 11 / fuzz findings F1-F4: `load_instructions` raises only typed errors that name the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diverseevol import load_instructions
from diverseevol.data import load_dataset_info
from diverseevol.errors import DataFileNotFoundError, DataFormatError, DiverseEvolError, ValidationError


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n")
    return path


def test_missing_file_is_typed_and_still_a_file_not_found_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError) as info:
        load_instructions(tmp_path / "missing.jsonl")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, DiverseEvolError)
    assert "missing.jsonl" in str(info.value)


@pytest.mark.parametrize(
    ("encoding", "error"), [("utf-16", DataFormatError), ("no-such-codec", ValidationError), (7, ValidationError)]
)
def test_bad_encodings_are_typed(data_file: Path, encoding: object, error: type) -> None:
    with pytest.raises(error) as info:
        load_instructions(data_file, encoding=encoding)  # type: ignore[arg-type]
    assert repr(encoding) in str(info.value) or str(encoding) in str(info.value)


@pytest.mark.parametrize("fields", [7, ["instruction"], ("instruction", "output")])
def test_fields_of_a_wrong_type_are_typed(data_file: Path, fields: object) -> None:
    with pytest.raises(ValidationError, match="fields must be one of"):
        load_instructions(data_file, fields=fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_json_nested_100k_deep_is_a_data_format_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text("[" * 100_000 + "]" * 100_000 if suffix == ".json" else '{"a":' * 100_000 + "1" + "}" * 100_000)
    with pytest.raises(DataFormatError, match="nested too deeply"):
        load_instructions(path)


def test_dataset_info_file_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError):
        load_dataset_info(tmp_path / "dataset_info.json", "x")
    bad = tmp_path / "dataset_info.json"
    bad.write_text("[" * 100_000)
    with pytest.raises(DataFormatError, match="dataset_info"):
        load_dataset_info(bad, "x")
    bad.write_text("[1, 2]")
    with pytest.raises(DataFormatError, match="JSON object"):
        load_dataset_info(bad, "x")
