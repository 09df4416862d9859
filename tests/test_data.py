"""load_instructions: real Dolly-15k and Alpaca files, every source type, bad data, duplicates."""

from __future__ import annotations

import gzip
import json
import warnings

import numpy as np
import pytest
from shared_data import shared_data_dir

from diverseevol.data import (
    InstructionRecord,
    data_fingerprint,
    format_prompt,
    format_record,
    load_instructions,
)
from diverseevol.errors import DataFormatError, DuplicateRecordsWarning, ValidationError

SHARED = shared_data_dir()
DOLLY = SHARED / "databricks-dolly-15k" / "databricks-dolly-15k.jsonl.gz"
ALPACA = SHARED / "alpaca_data" / "alpaca_data_random5000_pr152.json.gz"
ALPACA_GPT4 = SHARED / "alpaca_gpt4_data" / "alpaca_data_debug.json"

needs_dolly = pytest.mark.skipif(not DOLLY.is_file(), reason=f"shared data not found: {DOLLY}")
needs_alpaca = pytest.mark.skipif(not ALPACA.is_file(), reason=f"shared data not found: {ALPACA}")

ALPACA_ROWS = [
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
    {"instruction": "Name a colour.", "input": "", "output": "Blue"},
]


# ---- real data -------------------------------------------------------------------------------
@needs_dolly
def test_dolly_real_file():
    with gzip.open(DOLLY, "rt", encoding="utf-8") as fh:
        raw = [json.loads(line) for line in fh]
    with pytest.warns(DuplicateRecordsWarning) as caught:
        recs = load_instructions(DOLLY)
    assert len(recs) == len(raw) == 15011  # SOURCE.md
    for i in (0, 777, 15010):
        assert recs[i] == InstructionRecord(raw[i]["instruction"], raw[i]["context"], raw[i]["response"])
        assert recs[i].meta == {"category": raw[i]["category"]}
    # the duplicate count, from an independent tally over the three text fields
    distinct = len({(r["instruction"], r["context"], r["response"]) for r in raw})
    msg = str(caught[0].message)
    assert (
        f"{len(raw) - distinct} of 15011 records are exact duplicates" in msg
        and f"{distinct} distinct" in msg
    )
    assert str(DOLLY) in msg
    cats = {}
    for r in recs:
        cats[r.meta["category"]] = cats.get(r.meta["category"], 0) + 1
    assert cats["open_qa"] == 3742 and cats["creative_writing"] == 709  # SOURCE.md


@needs_alpaca
def test_alpaca_real_file():
    with gzip.open(ALPACA, "rt", encoding="utf-8") as fh:
        raw = json.load(fh)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateRecordsWarning)  # SOURCE.md: all 5,000 distinct
        recs = load_instructions(ALPACA)
    assert len(recs) == 5000
    assert [(r.instruction, r.input, r.output) for r in recs] == [
        (r["instruction"], r["input"], r["output"]) for r in raw
    ]
    assert all(r.meta is None for r in recs)


@pytest.mark.skipif(not ALPACA_GPT4.is_file(), reason=f"shared data not found: {ALPACA_GPT4}")
def test_alpaca_gpt4_debug_file_plain_json():
    recs = load_instructions(ALPACA_GPT4)
    assert len(recs) == 6 and all(r.output for r in recs)


@needs_dolly
def test_dolly_fingerprint_is_stable_and_order_sensitive():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateRecordsWarning)
        recs = load_instructions(DOLLY)
    fp = data_fingerprint(recs)
    assert fp["n_records"] == 15011 and len(fp["sha256"]) == 64
    assert data_fingerprint(list(recs)) == fp
    swapped = list(recs)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    assert data_fingerprint(swapped)["sha256"] != fp["sha256"]


# ---- every source type -----------------------------------------------------------------------
def _expected():
    return [InstructionRecord(r["instruction"], r["input"], r["output"]) for r in ALPACA_ROWS]


@pytest.mark.parametrize(
    "name", ["d.json", "d.jsonl", "d.json.gz", "d.jsonl.gz", "d.ndjson", "lines-in.json", "noext"]
)
def test_file_formats(tmp_path, name):
    lines = name.endswith(("jsonl", "jsonl.gz", "ndjson")) or name in ("lines-in.json", "noext")
    text = (
        "\n".join(json.dumps(r) for r in ALPACA_ROWS) + "\n" if lines else json.dumps(ALPACA_ROWS, indent=2)
    )
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    assert load_instructions(path) == _expected()
    assert load_instructions(str(path)) == _expected()


def test_gzip_detected_by_content(tmp_path):
    path = tmp_path / "data.jsonl"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(r) for r in ALPACA_ROWS))
    assert load_instructions(path) == _expected()


def test_list_of_dicts_and_records():
    assert load_instructions(ALPACA_ROWS) == _expected()
    recs = _expected()
    assert load_instructions(recs) == recs
    assert load_instructions(iter(ALPACA_ROWS)) == _expected()


def test_pandas_dataframe():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(ALPACA_ROWS)
    assert load_instructions(df) == _expected()
    df2 = pd.DataFrame(
        [
            {"instruction": "q", "input": None, "output": "a"},
            {"instruction": "r", "input": np.nan, "output": "b"},
        ]
    )
    assert [r.input for r in load_instructions(df2)] == ["", ""]


def test_hf_dataset():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(
        [{"instruction": "q", "context": "c", "response": "a", "category": "open_qa"}]
    )
    (rec,) = load_instructions(ds)
    assert rec == InstructionRecord("q", "c", "a") and rec.meta == {"category": "open_qa"}


# ---- field sets ------------------------------------------------------------------------------
def test_dolly_fields_detected_and_missing_input_is_empty():
    recs = load_instructions(
        [{"instruction": "q", "response": "a"}, {"instruction": "r", "context": "c", "response": "b"}]
    )
    assert recs == [InstructionRecord("q", "", "a"), InstructionRecord("r", "c", "b")]


def test_custom_field_mapping_and_meta_fields():
    rows = [{"question": "q", "answer": "a", "source": "web", "id": 3}]
    recs = load_instructions(
        rows,
        fields={"instruction": "question", "input": None, "output": "answer"},
        meta_fields=["source", "id"],
    )
    assert recs == [InstructionRecord("q", "", "a")] and recs[0].meta == {"source": "web", "id": 3}
    assert (
        load_instructions(
            [{"instruction": "q", "context": "c", "response": "a", "category": "x"}], meta_fields=()
        )[0].meta
        is None
    )
    assert load_instructions([{"instruction": "q", "context": "c", "response": "a"}], fields="dolly") == [
        InstructionRecord("q", "c", "a")
    ]


def test_meta_is_not_part_of_equality():
    assert InstructionRecord("a", "", "b", {"category": "x"}) == InstructionRecord("a", "", "b")
    assert hash(InstructionRecord("a", "", "b", {"category": "x"})) == hash(InstructionRecord("a", "", "b"))


def test_unknown_fields_error_names_keys_and_fix():
    with pytest.raises(
        DataFormatError,
        match=r"record 0: cannot detect the field names from the keys \['answer', 'question'\].*fields=",
    ):
        load_instructions([{"question": "q", "answer": "a"}])
    with pytest.raises(ValidationError, match="fields must be one of"):
        load_instructions(ALPACA_ROWS, fields="sharegpt")
    with pytest.raises(ValidationError, match="fields must map"):
        load_instructions(ALPACA_ROWS, fields={"prompt": "instruction"})


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\u0085"])
@pytest.mark.parametrize("name", ["d.jsonl", "lines-in.json", "noext"])
def test_jsonl_strings_may_hold_unicode_line_separators(tmp_path, name, sep):
    # JSON allows U+2028, U+2029 and U+0085 raw inside strings; JSON lines are split on "\n" only.
    rows = [
        {"instruction": f"first{sep}part", "input": "", "output": f"a{sep}b"},
        {"instruction": "plain", "input": f"x{sep}", "output": "y"},
    ]
    text = "\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    assert sep in text  # written raw, not escaped
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    assert load_instructions(path) == [InstructionRecord(r["instruction"], r["input"], r["output"]) for r in rows]


def test_benchmark_jsonl_strings_may_hold_unicode_line_separators(tmp_path):
    from diverseevol.judge.benchmarks import read_jsonl

    rows = [{"question_id": 1, "text": "a\u2028b\u0085c\u2029d"}, {"question_id": 2, "text": "e"}]
    path = tmp_path / "q.jsonl"
    path.write_bytes("\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode("utf-8"))
    assert read_jsonl(path) == rows


# ---- bad data --------------------------------------------------------------------------------
def test_invalid_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ALPACA_ROWS[0]) + "\n\n" + '{"instruction": "x", "output": }\n')
    with pytest.raises(DataFormatError, match=rf"{path}: line 3: invalid JSON at column \d+"):
        load_instructions(path)


def test_invalid_json_array_names_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n {"instruction": "x", "output": "y"},\n {"instruction": "x" "output": "y"}\n]')
    with pytest.raises(DataFormatError, match=rf"{path}: invalid JSON at line 3"):
        load_instructions(path)


def test_missing_and_non_string_fields_name_record(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([ALPACA_ROWS[0], {"instruction": "x", "input": ""}]))
    with pytest.raises(DataFormatError, match=rf"{path}: record 1: the field 'output' is missing"):
        load_instructions(path)
    path.write_text(
        json.dumps([ALPACA_ROWS[0], ALPACA_ROWS[1], {"instruction": "x", "input": "", "output": 42}])
    )
    with pytest.raises(
        DataFormatError, match=r"record 2: the field 'output' must be a string; got int \(42\)"
    ):
        load_instructions(path)
    with pytest.raises(DataFormatError, match=r"record 0: the field 'instruction' is null"):
        load_instructions([{"instruction": None, "output": "a"}])
    jl = tmp_path / "d.jsonl"
    jl.write_text(
        json.dumps(ALPACA_ROWS[0]) + "\n" + json.dumps({"instruction": ["a"], "output": "b"}) + "\n"
    )
    with pytest.raises(
        DataFormatError, match=rf"{jl}: line 2: the field 'instruction' must be a string; got list"
    ):
        load_instructions(jl)


def test_non_object_records(tmp_path):
    with pytest.raises(DataFormatError, match=r"record 1: expected a JSON object"):
        load_instructions([ALPACA_ROWS[0], "just text"])
    path = tmp_path / "d.json"
    path.write_text('{"data": []}')
    with pytest.raises(DataFormatError, match=r"single JSON object with keys \['data'\]"):
        load_instructions(path)
    with pytest.raises(DataFormatError, match="single mapping"):
        load_instructions(ALPACA_ROWS[0])


def test_empty_datasets(tmp_path):
    for text, name in (("[]", "e.json"), ("\n\n", "e.jsonl")):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(DataFormatError, match=rf"{path}: the dataset is empty"):
            load_instructions(path)
    with pytest.raises(DataFormatError, match="empty"):
        load_instructions([])


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_instructions(tmp_path / "nope.json")
    path = tmp_path / "d.txt"
    path.write_text("instruction,output\n")
    with pytest.raises(DataFormatError, match="file_type='json'"):  # was format= (file type and record format split)
        load_instructions(path)
    with pytest.raises(ValidationError, match="format must be"):
        load_instructions(path, format="csv")
    with pytest.raises(DataFormatError, match="directory"):
        load_instructions(tmp_path)
    bad = tmp_path / "latin.jsonl"
    bad.write_bytes(b'{"instruction": "caf\xe9", "output": "x"}\n')
    with pytest.raises(DataFormatError, match="utf-8"):
        load_instructions(bad)
    assert load_instructions(bad, encoding="latin-1")[0].instruction == "café"


def test_duplicates_are_kept_and_counted():
    rows = [ALPACA_ROWS[0], ALPACA_ROWS[1], ALPACA_ROWS[0], ALPACA_ROWS[0], ALPACA_ROWS[1]]
    with pytest.warns(
        DuplicateRecordsWarning,
        match=r"3 of 5 records are exact duplicates of earlier ones \(2 distinct records occur more than once; 2 distinct in all\)",
    ):
        recs = load_instructions(rows)
    assert len(recs) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_instructions(rows, on_duplicates="ignore")) == 5


# ---- prompt template -------------------------------------------------------------------------
def test_alpaca_template_with_and_without_input():
    with_input = format_prompt(InstructionRecord("Add.", "2 and 3", "5"))
    assert with_input.startswith("Below is an instruction that describes a task, paired with an input")
    assert with_input.endswith("### Instruction:\nAdd.\n\n### Input:\n2 and 3\n\n### Response:")
    no_input = format_prompt("Name a colour.")
    assert "### Input" not in no_input and no_input.endswith(
        "### Instruction:\nName a colour.\n\n### Response:"
    )
    assert format_record(InstructionRecord("Add.", "", "5")) == (format_prompt("Add."), "5")
