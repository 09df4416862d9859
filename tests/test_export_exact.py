"""Export is byte-exact for JSON and JSON-lines inputs (issue 22 item 6): each selected record is written as its
source text (its line, or its array element), so number literals, escapes, key order and duplicate keys survive; what
Parquet outputs keep is documented (docs/data.md) and held here. Expected bytes are written out by hand."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from diverseevol.data import load_instructions
from diverseevol.errors import DataFormatError
from diverseevol.export import write_subset

# Source texts json.dumps would never write back as they are: number spellings, escapes, key order, a duplicate key.
LINES = [
    '{"instruction": "Big", "output": "inf", "n": 1e400, "m": -0.0}',
    '{"output": "order", "instruction": "Keys\\u0020out of order", "n": 1E5}',
    '{"instruction": "Pi", "output": "3.14", "pi": 3.14159265358979323846, "nan": NaN}',
    '{"instruction": "Dup", "output": "first", "output": "second", "id": 12345678901234567890}',
    '{"instruction": "Esc\\/aped \\ud83d\\ude00", "input":"", "output":"tight spacing"}',
    '  {"instruction": "Padded", "output": "x"}\t',
]
PICKS = [3, 0, 5, 2]


def _load(path: Path):
    return load_instructions(path, duplicate_keys="first", on_duplicates="ignore")


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


@pytest.mark.parametrize("out_name", ["out.jsonl", "out.jsonl.gz"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_jsonl_to_jsonl_writes_each_line_unchanged(tmp_path: Path, out_name: str, newline: str) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(newline.join(LINES).encode("utf-8") + newline.encode())
    out = write_subset(tmp_path / out_name, _load(src), PICKS)
    assert _read_bytes(out) == "".join(LINES[i] + "\n" for i in PICKS).encode("utf-8")


def test_jsonl_to_json_writes_each_line_as_an_array_element(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    out = write_subset(tmp_path / "out.json", _load(src), PICKS)
    assert out.read_text(encoding="utf-8") == "[\n" + ",\n".join("  " + LINES[i] for i in PICKS) + "\n]\n"


# A pretty-printed JSON array, as LLaMA-Factory's and Alpaca's files are: elements span several lines.
ELEMENTS = [
    '{\n    "instruction": "Big",\n    "output": "inf",\n    "n": 1e400\n  }',
    '{\n    "output": "order",\n    "instruction": "Keys out of order",\n    "n": 1E5\n  }',
    '{\n    "instruction": "Dup",\n    "output": "first",\n    "output": "second"\n  }',
    '{"instruction": "One line", "output": "\\u00e9t\\u00e9", "x": 2.50}',
]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_json_array_elements_are_written_as_their_source_spans(tmp_path: Path, newline: str) -> None:
    src = tmp_path / "in.json"
    body = "[\n  " + ",\n  ".join(ELEMENTS) + "\n]\n"
    src.write_bytes(body.replace("\n", newline).encode("utf-8"))
    records = _load(src)
    assert records[1].source_text == ELEMENTS[1].replace("\n", newline)
    out = write_subset(tmp_path / "out.json", records, [2, 0, 3])
    spans = [ELEMENTS[i].replace("\n", newline) for i in (2, 0, 3)]
    assert out.read_bytes() == ("[\n" + ",\n".join(["  " + spans[0], "  " + spans[1], "  " + spans[2]])
                                + "\n]\n").encode("utf-8")
    lines = write_subset(tmp_path / "out.jsonl", records, [0, 2, 3])
    assert lines.read_text(encoding="utf-8") == (  # line breaks and the indentation after them removed, tokens kept
        '{"instruction": "Big","output": "inf","n": 1e400}\n'
        '{"instruction": "Dup","output": "first","output": "second"}\n'
        '{"instruction": "One line", "output": "\\u00e9t\\u00e9", "x": 2.50}\n')
    assert load_instructions(lines, duplicate_keys="first")[1].output == "first"


def test_records_from_python_and_parquet_are_json_dumps_of_the_row(tmp_path: Path) -> None:
    rows = [{"instruction": "a", "output": "b", "score": 0.5}, {"instruction": "c", "output": "d", "score": 1e300}]
    out = write_subset(tmp_path / "out.json", load_instructions(rows), [1, 0])
    assert out.read_text(encoding="utf-8") == json.dumps([rows[1], rows[0]], ensure_ascii=False, indent=2) + "\n"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_float_without_source_text_is_refused_for_json(tmp_path: Path, value: float) -> None:
    rows = [{"instruction": "a", "output": "b", "meta": {"score": value}}]
    with pytest.raises(DataFormatError, match=r"record 0 of the output \(key 'meta'\['score'\]\) holds .*JSON cannot"):
        write_subset(tmp_path / "out.jsonl", load_instructions(rows), [0])
    assert not (tmp_path / "out.jsonl").exists()


def test_json_to_parquet_keeps_values_and_fills_missing_keys_with_null(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    src = tmp_path / "in.jsonl"
    src.write_text('{"instruction": "a", "output": "b", "n": 1E5, "tags": ["x"]}\n'
                   '{"instruction": "c", "output": "d", "pi": 3.14159265358979323846}\n', encoding="utf-8")
    out = write_subset(tmp_path / "out.parquet", load_instructions(src), [1, 0])
    # One schema per table: a key a record lacks reads back as null (docs/data.md, "What an export keeps");
    # numbers are parsed values (float64), not their spelling.
    assert pq.read_table(out).to_pylist() == [
        {"instruction": "c", "output": "d", "n": None, "tags": None, "pi": 3.141592653589793},
        {"instruction": "a", "output": "b", "n": 100000.0, "tags": ["x"], "pi": None},
    ]


def test_selection_and_run_exports_are_byte_exact(tmp_path: Path) -> None:
    import numpy as np

    from diverseevol.cli import EXIT_OK, main

    src = tmp_path / "in.jsonl"
    lines = [f'{{"instruction": "Q{i}", "output": "{i}", "x": {i}E2, "y": {i}.10}}' for i in range(10)]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    np.save(tmp_path / "emb.npy", np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32))
    out, idx = tmp_path / "sel.jsonl", tmp_path / "idx.txt"
    assert main(["select", str(src), "--embeddings", str(tmp_path / "emb.npy"), "--k", "4", "--out", str(out),
                 "--indices-out", str(idx), "--param", "metric=cosine"]) == EXIT_OK
    picks = [int(x) for x in idx.read_text().split()]
    assert out.read_text(encoding="utf-8") == "".join(lines[i] + "\n" for i in picks)
