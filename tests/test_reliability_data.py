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


# ---- issue 22 item 12: the BOM advice names options that exist ----------------------------------------
@pytest.mark.parametrize("name", ["bom.jsonl", "bom.json", "bom.jsonl.gz"])
def test_a_byte_order_mark_names_the_encoding_option(tmp_path: Path, name: str) -> None:
    import gzip

    rows = [{"instruction": "a", "output": "b"}]
    text = json.dumps(rows) if name == "bom.json" else json.dumps(rows[0]) + "\n"
    data = "\ufeff".encode() + text.encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(DataFormatError) as info:
        load_instructions(path)
    message = str(info.value)
    assert "byte-order mark" in message and "encoding='utf-8-sig'" in message and "--encoding utf-8-sig" in message
    assert str(path) in message
    assert load_instructions(path, encoding="utf-8-sig")[0].output == "b"


# ---- issue 22 item 7: duplicate keys in a JSON record are ambiguous: refused, with an opt-out -----------
@pytest.mark.parametrize(
    ("suffix", "text", "where"),
    [
        (".jsonl", '{"instruction": "a", "output": "b"}\n{"instruction": "x", "output": "y", "output": "z"}\n',
         "line 2"),
        (".json", '[{"instruction": "a", "output": "b"},\n {"instruction": "x", "instruction": "w", "output": "y"}]',
         "record 1"),
        (".jsonl", '{"messages": [{"role": "user", "content": "u", "content": "v"}, '
                   '{"role": "assistant", "content": "a"}]}\n', "line 1"),
    ],
)
def test_duplicate_keys_are_refused_naming_record_and_key(tmp_path: Path, suffix: str, text: str, where: str) -> None:
    path = tmp_path / f"d{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFormatError, match=rf"{path}: {where}: the key '(output|instruction|content)' occurs twice "
                                              rf"in one object.*duplicate_keys="):
        load_instructions(path)
    first = load_instructions(path, duplicate_keys="first")
    last = load_instructions(path, duplicate_keys="last")
    assert first != last  # the two readings differ: that is why the default refuses
    with pytest.raises(ValidationError, match="duplicate_keys must be"):
        load_instructions(path, duplicate_keys="merge")


def test_duplicate_keys_first_and_last_against_a_hand_reading(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"instruction": "x", "output": "y", "output": "z", "id": 1}\n', encoding="utf-8")
    (first,) = load_instructions(path, duplicate_keys="first")
    (last,) = load_instructions(path, duplicate_keys="last")
    assert (first.output, last.output) == ("y", "z")
    assert first.original == {"instruction": "x", "output": "y", "id": 1}
    assert last.original == {"instruction": "x", "output": "z", "id": 1} == json.loads(path.read_text())


# ---- issue 22 item 10: typed errors naming the file ------------------------------------------------------
@pytest.mark.parametrize(
    ("info", "match"),
    [
        ({"x": 5}, r"entry 'x' must be a JSON object.*got int"),
        ({"x": ["a.json"]}, r"entry 'x' must be a JSON object.*got list"),
        ({"x": {"file_name": 3}}, r"entry 'x': 'file_name' must be a string"),
        ({"x": {"file_name": "d.jsonl", "tags": ["role"]}}, r"entry 'x': 'tags' must be a JSON object.*got list"),
        ({"x": {"file_name": "d.jsonl", "columns": "messages"}}, r"entry 'x': 'columns' must be a JSON object"),
        ({"x": {"file_name": "d.jsonl", "formatting": ["sharegpt"]}}, r"entry 'x': unknown formatting \['sharegpt'\]"),
    ],
)
def test_malformed_dataset_info_entries_are_typed(tmp_path: Path, data_file: Path, info: dict, match: str) -> None:
    path = tmp_path / "dataset_info.json"
    path.write_text(json.dumps(info))
    with pytest.raises(DataFormatError, match=match) as caught:
        load_dataset_info(path, "x")
    assert str(path) in str(caught.value)


def _saved_dataset(tmp_path: Path) -> Path:
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "saved"
    datasets.Dataset.from_list([{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"}]) \
        .save_to_disk(str(path))
    return path


def test_corrupt_saved_dataset_state_is_typed_naming_the_file(tmp_path: Path) -> None:
    path = _saved_dataset(tmp_path)
    assert len(load_instructions(path)) == 2
    (path / "state.json").write_text("{not json")
    with pytest.raises(DataFormatError, match=rf"{path / 'state.json'}: .*not valid JSON"):
        load_instructions(path)
    (path / "state.json").write_text("[1, 2]")
    with pytest.raises(DataFormatError, match=rf"{path / 'state.json'}"):
        load_instructions(path)


def test_missing_arrow_shard_is_typed_naming_the_file(tmp_path: Path) -> None:
    path = _saved_dataset(tmp_path)
    shards = sorted(path.glob("*.arrow"))
    assert shards
    shards[0].unlink()
    with pytest.raises(DataFileNotFoundError, match=rf"{shards[0]}"):
        load_instructions(path)
    shards[0].write_bytes(b"not arrow at all")
    with pytest.raises(DataFormatError, match=rf"{path}"):
        load_instructions(path)


def test_int_beyond_int64_to_parquet_is_typed(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    from diverseevol.export import write_subset

    src = tmp_path / "d.jsonl"
    src.write_text('{"instruction": "a", "output": "b", "id": 1}\n'
                   '{"instruction": "c", "output": "d", "id": 9223372036854775808}\n')
    records = load_instructions(src)
    with pytest.raises(DataFormatError, match=r"record 1 .*'id'.*9223372036854775808.*int64.*\.jsonl"):
        write_subset(tmp_path / "out.parquet", records, [0, 1])
    assert not (tmp_path / "out.parquet").exists()
