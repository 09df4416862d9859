"""Record formats as a registry (issue 21 item 1): one object per shape, looked up by name; file type and record
format are separate arguments; a new shape is one module (here: one class in this test) and loads and exports."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import diverseevol.data as data_pkg
from diverseevol.data import (
    InstructionRecord,
    check_load_options,
    file_type_names,
    file_type_summaries,
    get_record_format,
    load_instructions,
    record_format_names,
    record_format_summaries,
    register_record_format,
    unregister_record_format,
)
from diverseevol.data.formats import FieldFormat, ReadOptions, RecordFormat, text_field
from diverseevol.errors import DataFormatError, ValidationError
from diverseevol.export import dataset_info_entry, write_subset

BUILTINS = ("sharegpt", "openai", "alpaca", "dolly")


# ---- a new record shape, defined the way a user (or a new built-in module) would ----------------------
class PromptCompletionFormat(RecordFormat):
    """OpenAI's legacy fine-tuning records: {"prompt": ..., "completion": ...}."""

    summary = "prompt / completion pairs"
    default_columns = {"prompt": "prompt", "response": "completion"}
    column_keys = ("prompt", "response")

    def detect(self, first):
        return {"prompt", "completion"} <= set(first)

    def reader(self, first, options, where):
        cols = options.columns or {}
        prompt, completion = cols.get("prompt", "prompt"), cols.get("response", "completion")

        def read(rec, where):
            return InstructionRecord(text_field(rec, prompt, where, required=True), "",
                                     text_field(rec, completion, where, required=True),
                                     format=self.name, original=rec)

        return read

    def export_row(self, record):
        return {"prompt": record.instruction, "completion": record.output}


ROWS = [{"prompt": f"Spell {w} backwards.", "completion": w[::-1], "id": i}
        for i, w in enumerate(["kayak", "lemon", "tiger", "ocean"])]


@pytest.fixture
def toy_format():
    fmt = PromptCompletionFormat()
    register_record_format("prompt_completion", fmt)
    yield fmt
    unregister_record_format("prompt_completion")


def test_a_new_shape_registers_loads_and_exports(tmp_path: Path, toy_format: RecordFormat) -> None:
    assert record_format_names() == (*BUILTINS, "prompt_completion") and "prompt_completion" in data_pkg.RECORD_FORMATS
    assert record_format_summaries()["prompt_completion"] == "prompt / completion pairs"
    src = tmp_path / "pc.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    recs = load_instructions(src)  # detected: no format= needed
    assert [(r.instruction, r.output, r.format) for r in recs] == [
        (r["prompt"], r["completion"], "prompt_completion") for r in ROWS]
    assert load_instructions(ROWS, format="prompt_completion") == recs
    renamed = [{"q": r["prompt"], "a": r["completion"]} for r in ROWS]
    assert load_instructions(renamed, format="prompt_completion", columns={"prompt": "q", "response": "a"}) == recs
    for name in ("out.json", "out.jsonl", "out.parquet"):
        if name.endswith("parquet"):
            pytest.importorskip("pyarrow")
        out = write_subset(tmp_path / name, recs, [2, 0])
        assert load_instructions(out) == [recs[2], recs[0]]
    entry = dataset_info_entry("out.json", recs)
    assert entry == {"file_name": "out.json", "columns": {"prompt": "prompt", "response": "completion"}}
    built = InstructionRecord("Say hi.", "", "hi", {"id": 9}, format="prompt_completion")
    assert built.as_original() == {"prompt": "Say hi.", "completion": "hi", "id": 9}  # its export row + meta


def test_unregistering_restores_the_builtins(toy_format: RecordFormat) -> None:
    unregister_record_format("prompt_completion")
    assert record_format_names() == BUILTINS
    with pytest.raises(DataFormatError, match="cannot detect"):
        load_instructions(ROWS)
    register_record_format("prompt_completion", toy_format)  # the fixture unregisters it


def test_a_field_format_subclass_is_only_its_names() -> None:
    @register_record_format("qa")
    class QAFormat(FieldFormat):
        summary = "question / answer"
        fields = {"instruction": "question", "input": None, "output": "answer"}

    try:
        (rec,) = load_instructions([{"question": "2+2?", "answer": "4", "system": "Be brief."}])
        assert (rec.instruction, rec.output, rec.system, rec.format) == ("2+2?", "4", "Be brief.", "qa")
        assert data_pkg.FIELD_SETS["qa"] == {"instruction": "question", "input": None, "output": "answer", "meta": ()}
        assert load_instructions([{"question": "q", "answer": "a"}], fields="qa")[0].format == "qa"
    finally:
        unregister_record_format("qa")


def test_registry_lookups_and_refusals() -> None:
    assert record_format_names() == BUILTINS
    assert data_pkg.FIELD_SETS == {  # the table data.py held before the registry, written out by hand
        "alpaca": {"instruction": "instruction", "input": "input", "output": "output", "meta": ()},
        "dolly": {"instruction": "instruction", "input": "context", "output": "response", "meta": ("category",)},
    }
    assert get_record_format("dolly").name == "dolly"
    with pytest.raises(ValidationError, match="Did you mean 'sharegpt'"):
        get_record_format("sharegtp")
    with pytest.raises(ValidationError, match="Did you mean 'openai'"):
        load_instructions([{"messages": []}], format="opneai")
    for bad in ("json", "Chat", "", 3):
        with pytest.raises(ValidationError, match="lowercase identifier"):
            register_record_format(bad, PromptCompletionFormat())
    with pytest.raises(ValidationError, match="already registered"):
        register_record_format("alpaca", PromptCompletionFormat())
    with pytest.raises(ValidationError, match="RecordFormat"):
        register_record_format("thing", object())
    assert all(s and "\n" not in s for s in record_format_summaries().values())
    assert file_type_names() == ("json", "jsonl", "parquet", "dataset")
    assert set(file_type_summaries()) == set(file_type_names())


# ---- file type and record format are separate arguments --------------------------------------------------
def test_file_type_is_its_own_argument(tmp_path: Path) -> None:
    rows = [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}]
    path = tmp_path / "chat.txt"  # a suffix that names no file type
    path.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recs = load_instructions(path, file_type="jsonl", format="sharegpt")
    assert recs[0].format == "sharegpt" and recs[0].output == "Hello"
    with pytest.warns(DeprecationWarning, match=r"format='jsonl' names a file type; pass file_type='jsonl'") as w:
        assert load_instructions(path, format="jsonl") == recs
    assert w[0].filename == __file__  # the warning points at the caller's line
    with pytest.raises(ValidationError, match="disagree"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        load_instructions(path, format="json", file_type="jsonl")
    with pytest.raises(ValidationError, match="file_type must be one of"):
        load_instructions(path, file_type="csv")
    with pytest.raises(ValidationError, match="applies to files only"):
        load_instructions(rows, file_type="jsonl")
    with pytest.raises(ValidationError, match="file type goes in file_type="):
        load_instructions(path, format="dataset")
    with pytest.raises(DataFormatError, match="save_to_disk directory; this is a file"):
        load_instructions(path, file_type="dataset")


def test_detection_sees_renamed_columns_and_tags() -> None:
    rows = [{"dialog": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}]
    (rec,) = load_instructions(rows, columns={"messages": "dialog"})
    assert rec.format == "openai" and rec.output == "Hello"
    rows = [{"dialog": [{"speaker": "kunde", "text": "Hallo"}, {"speaker": "bot", "text": "Tag"}]}]
    (rec,) = load_instructions(rows, columns={"messages": "dialog"},
                               tags={"role_tag": "speaker", "content_tag": "text", "user_tag": "kunde",
                                     "assistant_tag": "bot"})
    assert rec.format == "sharegpt" and [t.role for t in rec.messages] == ["user", "assistant"]
    (rec,) = load_instructions([{"q": "Frage", "ctx": "", "a": "Antwort"}],
                               columns={"prompt": "q", "query": "ctx", "response": "a"})
    assert rec.format == "alpaca" and rec == InstructionRecord("Frage", "", "Antwort")
    # a record holding both a column of turns and Alpaca fields is a conversation (chat shapes are tried first)
    both = {"instruction": "x", "output": "y", "messages": [{"role": "user", "content": "u"},
                                                            {"role": "assistant", "content": "a"}]}
    assert load_instructions([both])[0].format == "openai"
    assert load_instructions([both], format="alpaca")[0].output == "y"


def test_options_that_fit_no_shape_are_refused() -> None:
    rows = [{"instruction": "x", "output": "y"}]
    with pytest.raises(ValidationError, match="tags= does not apply to 'alpaca'"):
        load_instructions(rows, format="alpaca", tags={"role_tag": "speaker"})
    with pytest.raises(ValidationError, match="fields= does not apply to 'sharegpt'"):
        load_instructions(rows, format="sharegpt", fields={"instruction": "x", "output": "y"})
    with pytest.raises(ValidationError, match="name different record shapes"):
        load_instructions(rows, format="alpaca", fields="dolly")
    with pytest.raises(ValidationError, match="columns: each value must be a column name or null"):
        check_load_options(columns={"prompt": 3})
    with pytest.raises(ValidationError, match="tags: each value must be a string"):
        check_load_options(tags={"role_tag": None})
    with pytest.raises(ValidationError, match="meta_fields must be a list of field names"):
        check_load_options(meta_fields="category")
    opts = check_load_options(format="openai", file_type="parquet", columns={"messages": "m", "images": "img"})
    assert (opts.format, opts.file_type, opts.read) == ("openai", "parquet",
                                                        ReadOptions(columns={"messages": "m", "images": "img"}))


def test_load_dataset_info_refuses_names_the_entry_gives(tmp_path: Path) -> None:
    from diverseevol.data import load_dataset_info

    (tmp_path / "d.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    (tmp_path / "dataset_info.json").write_text(json.dumps({"d": {"file_name": "d.jsonl"}}))
    assert load_dataset_info(tmp_path / "dataset_info.json", "d", format="alpaca")[0].output == "b"
    with pytest.raises(ValidationError, match=r"gives the column and tag names; do not pass \['columns'\]"):
        load_dataset_info(tmp_path / "dataset_info.json", "d", columns={"prompt": "instruction"})
