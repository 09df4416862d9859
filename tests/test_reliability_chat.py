"""Issue 22 items 5, 11, 12: malformed chat content never becomes "" without a word; OpenAI `input_text` /
`output_text` parts and the `developer` role are read; LLaMA-Factory multimodal entries load their text."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from diverseevol.data import load_dataset_info, load_instructions
from diverseevol.errors import DataFormatError
from diverseevol.export import dataset_info_entry


def _openai(*turns):
    return [{"messages": [{"role": r, "content": c} for r, c in turns]}]


def _sharegpt(*turns):
    return [{"conversations": [dict(t) for t in turns]}]


# ---- item 5: what is read --------------------------------------------------------------------------
def test_openai_responses_api_parts_are_read() -> None:
    rows = _openai(("user", [{"type": "input_text", "text": "Was ist 2+2?"}]),
                   ("assistant", [{"type": "output_text", "text": "Vier."}, {"type": "text", "text": "Sicher."}]))
    (rec,) = load_instructions(rows)
    assert [(t.role, t.content) for t in rec.messages] == [("user", "Was ist 2+2?"), ("assistant", "Vier.\nSicher.")]
    assert rec.output == "Vier.\nSicher."


def test_media_parts_are_kept_in_the_original_only() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}}
    rows = _openai(("user", [{"type": "text", "text": "What is this?"}, image]), ("assistant", "A cat."))
    (rec,) = load_instructions(rows)
    assert rec.messages[0].content == "What is this?" and rec.original["messages"][0]["content"][1] == image


def test_assistant_tool_calls_without_content_are_a_turn() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{\"a\": 1}"}}
    rows = [{"messages": [{"role": "user", "content": "1+?"},
                          {"role": "assistant", "content": None, "tool_calls": [call]},
                          {"role": "tool", "content": "2"}, {"role": "assistant", "content": "2."}]}]
    (rec,) = load_instructions(rows)
    assert rec.messages[1].content == "" and json.loads(rec.messages[1].tool_calls) == [
        {"name": "add", "arguments": {"a": 1}}]


def test_developer_role_is_a_system_turn() -> None:  # item 12
    (rec,) = load_instructions(_openai(("developer", "Antworte auf Deutsch."), ("user", "Hi"), ("assistant", "Hallo")))
    assert [(t.role, t.content) for t in rec.messages][0] == ("system", "Antworte auf Deutsch.")


# ---- item 5: what is refused, naming the record, the turn and the field --------------------------------
@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (_openai(("user", [{"type": "text", "text": 5}]), ("assistant", "x")),
         r"record 0: messages\[0\]: content\[0\]: the 'text' of a text part must be a string; got int"),
        (_openai(("user", [{"type": "input_text"}]), ("assistant", "x")),
         r"record 0: messages\[0\]: content\[0\]: the 'text' of a text part must be a string; got NoneType"),
        (_openai(("user", []), ("assistant", "x")),
         r"record 0: messages\[0\]: the 'content' holds no parts"),
        (_openai(("user", "Hi"), ("assistant", None)),
         r"record 0: messages\[1\]: the 'content' of an 'assistant' turn is null and the turn has no tool calls"),
        (_openai(("user", None), ("assistant", "x")),
         r"record 0: messages\[0\]: the 'content' of a 'user' turn is null"),
        (_sharegpt({"from": "human", "value": "Hi"}, {"from": "gpt", "value": None}),
         r"record 0: conversations\[1\]: the 'value' of a 'gpt' turn is null"),
        (_sharegpt({"from": "human", "value": "Hi"}, {"from": "gpt", "value": math.nan}),
         r"record 0: conversations\[1\]: the 'value' of a 'gpt' turn is null \(NaN\)"),
        (_sharegpt({"from": "human", "value": "Hi"}, {"from": "gpt"}),
         r"record 0: conversations\[1\]: the turn has no 'value'"),
        (_sharegpt({"from": "human", "value": "Hi"}, {"from": "function_call"}, {"from": "gpt", "value": "x"}),
         r"record 0: conversations\[1\]: the turn has no 'value'"),
        (_sharegpt({"from": "human", "value": "Hi"}, {"from": "function_call", "value": None},
                   {"from": "gpt", "value": "x"}),
         r"record 0: conversations\[1\]: the 'value' of a 'function_call' turn is null"),
        (_sharegpt({"from": "human", "value": "Hi"}, {"from": "human", "value": "Hallo?"}),
         r"record 0: the conversation has no assistant turn"),
        (_openai(("system", "Be brief."), ("user", "Hi")), r"record 0: the conversation has no assistant turn"),
    ],
)
def test_malformed_chat_content_is_a_data_format_error(rows: list, match: str) -> None:
    with pytest.raises(DataFormatError, match=match):
        load_instructions(rows)


def test_parquet_nested_null_is_refused_naming_row_and_turn(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
            {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": None}]}]
    path = tmp_path / "chat.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(DataFormatError, match=rf"{path}: row 1: conversations\[1\]: the 'value' of a 'gpt' turn"):
        load_instructions(path)


def test_dataframe_nan_value_is_refused() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"conversations": [[{"from": "human", "value": "Hi"}, {"from": "gpt", "value": float("nan")}]]})
    with pytest.raises(DataFormatError, match=r"DataFrame: row 0: conversations\[1\]: .*null \(NaN\)"):
        load_instructions(df)


# ---- item 11: LLaMA-Factory multimodal entries ---------------------------------------------------------
MLLM = [
    {"messages": [{"content": "<image>Who are they?", "role": "user"},
                  {"content": "They're Kane and Gretzka from Bayern Munich.", "role": "assistant"}],
     "images": ["mllm_demo_data/1.jpg"]},
    {"messages": [{"content": "<video>What is she doing?", "role": "user"},
                  {"content": "She is cooking.", "role": "assistant"}],
     "videos": ["mllm_demo_data/1.mp4"], "audios": ["mllm_demo_data/1.mp3"]},
]
MLLM_ENTRY = {"file_name": "mllm_demo.json", "formatting": "sharegpt",
              "columns": {"messages": "messages", "images": "images", "videos": "videos", "audios": "audios"},
              "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}


def test_multimodal_dataset_info_entries_load_their_text(tmp_path: Path) -> None:
    (tmp_path / "mllm_demo.json").write_text(json.dumps(MLLM), encoding="utf-8")
    (tmp_path / "dataset_info.json").write_text(json.dumps({"mllm_demo": MLLM_ENTRY}), encoding="utf-8")
    recs = load_dataset_info(tmp_path / "dataset_info.json", "mllm_demo")
    assert [(r.instruction, r.output, r.format) for r in recs] == [
        ("<image>Who are they?", "They're Kane and Gretzka from Bayern Munich.", "openai"),
        ("<video>What is she doing?", "She is cooking.", "openai")]
    assert recs[0].original["images"] == ["mllm_demo_data/1.jpg"] and recs[1].original["audios"] == ["mllm_demo_data/1.mp3"]
    entry = dataset_info_entry("mllm_demo.json", recs)  # export names the media columns again
    assert entry["columns"] == MLLM_ENTRY["columns"] and entry["formatting"] == "sharegpt"
    assert {k: entry["tags"][k] for k in MLLM_ENTRY["tags"]} == MLLM_ENTRY["tags"]
    alpaca = [{"instruction": "<image>Describe it.", "input": "", "output": "A dog.", "images": ["d.png"]}]
    (rec,) = load_instructions(alpaca, columns={"prompt": "instruction", "response": "output", "images": "images"})
    assert rec.output == "A dog." and dataset_info_entry("a.json", [rec])["columns"]["images"] == "images"
