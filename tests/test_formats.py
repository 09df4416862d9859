"""Record formats: Alpaca (system, history), Dolly, ShareGPT and OpenAI messages, detected or named, from every
source (JSON, JSONL(.gz), Parquet, datasets.Dataset, save_to_disk, DataFrame), with LLaMA-Factory's columns/tags."""

from __future__ import annotations

import gzip
import json
import warnings

import pytest
from shared_data import shared_data_dir

from diverseevol.data import InstructionRecord, Turn, data_fingerprint, load_dataset_info, load_instructions
from diverseevol.errors import DataFormatError, DuplicateRecordsWarning, ValidationError

DEMO = shared_data_dir() / "llamafactory_demo"
needs_demo = pytest.mark.skipif(not (DEMO / "dataset_info.json").is_file(), reason=f"shared data not found: {DEMO}")

ROLE = {"human": "user", "gpt": "assistant", "function_call": "assistant", "observation": "tool", "system": "system"}

ZH_SHAREGPT = [
    {"conversations": [{"from": "human", "value": "你好，请介绍一下长城。"},
                       {"from": "gpt", "value": "长城是中国古代的军事防御工程。"},
                       {"from": "human", "value": "它有多长？"},
                       {"from": "gpt", "value": "约两万一千公里。"}],
     "system": "你是一个乐于助人的助手。", "lang": "zh"},
    {"conversations": [{"from": "human", "value": "一加一等于几？"}, {"from": "gpt", "value": "二。"}], "lang": "zh"},
]
FR_OPENAI = [
    {"messages": [{"role": "system", "content": "Réponds en français."},
                  {"role": "user", "content": "Quelle est la capitale du Canada ?"},
                  {"role": "assistant", "content": "Ottawa."}],
     "id": "fr-1", "images": ["img/1.png"], "quality": 0.9},
    {"messages": [{"role": "user", "content": "Traduis « thank you »."}, {"role": "assistant", "content": "Merci."}],
     "id": "fr-2", "images": [], "quality": 0.4},
]


def _turns(rec):
    return [(t.role, t.content or t.tool_calls) for t in rec.messages]


# ---- the LLaMA-Factory demo files ---------------------------------------------------------------
@needs_demo
def test_llamafactory_alpaca_demo():
    raw = json.loads((DEMO / "alpaca_en_demo.json").read_text(encoding="utf-8"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateRecordsWarning)
        recs = load_instructions(DEMO / "alpaca_en_demo.json")
    assert len(recs) == len(raw) == 999  # SOURCE.md
    assert [(r.instruction, r.input, r.output) for r in recs] == [(x["instruction"], x["input"], x["output"]) for x in raw]
    assert all(r.format == "alpaca" and not r.is_chat and r.original == x for r, x in zip(recs, raw))


@needs_demo
def test_llamafactory_sharegpt_toolcall_demo():
    raw = json.loads((DEMO / "glaive_toolcall_en_demo.json").read_text(encoding="utf-8"))
    distinct = len({json.dumps(x, sort_keys=True) for x in raw})
    with pytest.warns(DuplicateRecordsWarning, match=f"{len(raw) - distinct} of 300 records are exact duplicates"):
        recs = load_instructions(DEMO / "glaive_toolcall_en_demo.json")
    assert len(recs) == 300  # SOURCE.md
    for rec, x in zip(recs, raw):
        assert rec.format == "sharegpt" and rec.original is not None and rec.original == x
        assert _turns(rec) == [(ROLE[t["from"]], t["value"]) for t in x["conversations"]]
        calls = [t for t in rec.messages if t.tool_calls]
        assert [c.tool_calls for c in calls] == [t["value"] for t in x["conversations"] if t["from"] == "function_call"]
        assert rec.tools == x["tools"]
        assert rec.instruction == next(t["value"] for t in x["conversations"] if t["from"] == "human")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateRecordsWarning)
        assert load_dataset_info(DEMO / "dataset_info.json", "glaive_toolcall_en_demo") == recs
        assert len(load_dataset_info(DEMO / "dataset_info.json", "alpaca_en_demo")) == 999
    with pytest.raises(ValidationError, match="no entry 'nope'"):
        load_dataset_info(DEMO / "dataset_info.json", "nope")


# ---- shapes never seen, from every source ----------------------------------------------------------
@pytest.mark.parametrize("name", ["zh.json", "zh.jsonl", "zh.jsonl.gz", "zh.parquet", "zh_saved"])
def test_chinese_sharegpt_from_every_file_source(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".parquet"):
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(ZH_SHAREGPT), path)
    elif name.endswith("_saved"):
        datasets = pytest.importorskip("datasets")
        datasets.Dataset.from_list(ZH_SHAREGPT).save_to_disk(str(path))
    elif name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write("\n".join(json.dumps(r, ensure_ascii=False) for r in ZH_SHAREGPT))
    elif name.endswith(".jsonl"):
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ZH_SHAREGPT), encoding="utf-8")
    else:
        path.write_text(json.dumps(ZH_SHAREGPT, ensure_ascii=False), encoding="utf-8")
    recs = load_instructions(path)
    assert [r.format for r in recs] == ["sharegpt", "sharegpt"]
    assert _turns(recs[0]) == [("system", "你是一个乐于助人的助手。"), ("user", "你好，请介绍一下长城。"),
                               ("assistant", "长城是中国古代的军事防御工程。"), ("user", "它有多长？"),
                               ("assistant", "约两万一千公里。")]
    assert recs[1].output == "二。" and recs[1].instruction == "一加一等于几？"
    assert recs[0].original["lang"] == "zh"  # extra columns kept, not text
    assert recs[0].original["conversations"][0] == ZH_SHAREGPT[0]["conversations"][0]


def test_openai_messages_with_extra_columns_dataset_and_dataframe():
    recs = load_instructions(FR_OPENAI)
    assert [r.format for r in recs] == ["openai", "openai"]
    assert _turns(recs[0]) == [("system", "Réponds en français."), ("user", "Quelle est la capitale du Canada ?"),
                               ("assistant", "Ottawa.")]
    assert recs[0].original is FR_OPENAI[0] and recs[0].meta is None
    assert load_instructions(FR_OPENAI, meta_fields=["id"])[1].meta == {"id": "fr-2"}
    datasets = pytest.importorskip("datasets")
    from_ds = load_instructions(datasets.Dataset.from_list(FR_OPENAI))
    assert from_ds == recs and from_ds[0].original["images"] == ["img/1.png"]
    pd = pytest.importorskip("pandas")
    assert load_instructions(pd.DataFrame(FR_OPENAI)) == recs  # turn lists arrive as numpy object arrays


def test_named_format_columns_and_tags_like_dataset_info():
    rows = [{"dialogue": [{"speaker": "kunde", "text": "Hallo!"}, {"speaker": "bot", "text": "Guten Tag!"}],
             "sys": "Sei höflich.", "werkzeuge": ""}]
    recs = load_instructions(
        rows, format="sharegpt", columns={"messages": "dialogue", "system": "sys", "tools": "werkzeuge"},
        tags={"role_tag": "speaker", "content_tag": "text", "user_tag": "kunde", "assistant_tag": "bot"},
    )
    assert _turns(recs[0]) == [("system", "Sei höflich."), ("user", "Hallo!"), ("assistant", "Guten Tag!")]
    alpaca = load_instructions([{"q": "Frage", "ctx": "Kontext", "a": "Antwort"}],
                               columns={"prompt": "q", "query": "ctx", "response": "a"})
    assert alpaca == [InstructionRecord("Frage", "Kontext", "Antwort")]
    with pytest.raises(ValidationError, match="columns has unknown keys"):
        load_instructions(rows, columns={"turns": "dialogue"})


def test_alpaca_system_and_history():
    (rec,) = load_instructions([{"instruction": "Und 3+3?", "input": "", "output": "6", "system": "Rechne.",
                                 "history": [["1+1?", "2"], ["2+2?", "4"]]}])
    assert rec.system == "Rechne." and rec.history == (("1+1?", "2"), ("2+2?", "4"))
    assert [(t.role, t.content) for t in rec.conversation()] == [
        ("system", "Rechne."), ("user", "1+1?"), ("assistant", "2"), ("user", "2+2?"), ("assistant", "4"),
        ("user", "Und 3+3?"), ("assistant", "6")]
    with pytest.raises(DataFormatError, match=r"record 0: history\[0\] must be a pair of strings"):
        load_instructions([{"instruction": "x", "output": "y", "history": [["only one"]]}])


def test_record_api_unchanged_and_chat_parts_in_equality():
    rec = InstructionRecord("a", "b", "c", {"m": 1})
    assert (rec.instruction, rec.input, rec.output, rec.meta) == ("a", "b", "c", {"m": 1})
    assert rec.format == "records" and rec.original is None and not rec.is_chat
    one = load_instructions(ZH_SHAREGPT[1:])[0]
    other = InstructionRecord(one.instruction, "", one.output, messages=(Turn("user", one.instruction),
                                                                           Turn("assistant", "二!")))
    assert one != other and data_fingerprint([one]) != data_fingerprint([other])
    # Alpaca records hash as before (the run directories' data fingerprints stay valid)
    assert data_fingerprint([InstructionRecord("q", "", "a")])["sha256"] == data_fingerprint(
        [InstructionRecord("q", "", "a", {"x": 1}, format="alpaca", original={"k": 1})])["sha256"]


def test_chat_errors_name_record_turn_and_fix(tmp_path):
    with pytest.raises(DataFormatError, match=r"record 0: conversations\[1\]: unknown role 'narrator'.*tags="):
        load_instructions([{"conversations": [{"from": "human", "value": "x"}, {"from": "narrator", "value": "y"}]}])
    with pytest.raises(DataFormatError, match=r"line 1: messages\[0\]: expected a turn object"):
        path = tmp_path / "bad.jsonl"
        path.write_text(json.dumps({"messages": ["hello"]}) + "\n")
        load_instructions(path)
    with pytest.raises(DataFormatError, match="holds no turns"):
        load_instructions([{"messages": []}])
    with pytest.raises(DataFormatError, match=r"content must be a string or a list of text parts"):
        load_instructions([{"messages": [{"role": "user", "content": 42}]}])
    with pytest.raises(ValidationError, match="format must be"):
        load_instructions(ZH_SHAREGPT, format="chatml")
    with pytest.raises(DataFormatError, match="ShareGPT"):
        load_instructions([{"prompt": "x", "completion": "y"}])
