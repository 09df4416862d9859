"""The configuration's `data` section takes every option load_instructions takes (issue 21 item 1): a run file
loads a Parquet file, a ShareGPT file with LLaMA-Factory column/tag names, and a dataset_info.json entry."""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from shared_data import shared_data_dir

from diverseevol.config import load_config, parse_config, run_config
from diverseevol.data import load_instructions
from diverseevol.errors import ConfigError, DuplicateRecordsWarning

DEMO = shared_data_dir() / "llamafactory_demo"
needs_demo = pytest.mark.skipif(not (DEMO / "dataset_info.json").is_file(), reason=f"shared data not found: {DEMO}")

CHAT = [{"dialogue": [{"speaker": "kunde", "text": f"Wie viel ist {i} + {i}?"},
                      {"speaker": "agent", "text": f"{2 * i}."}], "sys": "Antworte kurz.", "id": i}
        for i in range(8)]
TAGS = {"role_tag": "speaker", "content_tag": "text", "user_tag": "kunde", "assistant_tag": "agent"}


def _config(tmp_path: Path, data: str, n: int) -> Path:
    np.save(tmp_path / "emb.npy", np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32))
    path = tmp_path / "run.yaml"
    path.write_text(textwrap.dedent("""
        run_dir: run
        seed: 1
        data:
        {data}
          embeddings: emb.npy
        sampler: random
        budget: {{init_size: 2, k: 2, rounds: 1}}
    """).format(data=textwrap.indent(textwrap.dedent(data).strip(), "  ")))
    return path


def test_a_config_loads_a_parquet_file(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pytest.importorskip("yaml")
    import pyarrow.parquet as pq

    rows = [{"instruction": f"Nenne die Zahl {i}.", "input": "", "output": str(i), "lang": "de"} for i in range(6)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.bin")  # a suffix that names no file type
    cfg = load_config(_config(tmp_path, "path: train.bin\nfile_type: parquet\nformat: alpaca\nmeta_fields: [lang]", 6))
    records = cfg.data.load()
    assert [(r.instruction, r.output, r.meta) for r in records] == [
        (r["instruction"], r["output"], {"lang": "de"}) for r in rows]
    result = run_config(cfg, progress=False)
    assert len(result.pools[-1]) == 4


def test_a_config_loads_sharegpt_with_llamafactory_columns_and_tags(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in CHAT),
                                         encoding="utf-8")
    cfg = load_config(_config(tmp_path, """
        path: chat.jsonl
        format: sharegpt
        columns: {messages: dialogue, system: sys}
        tags: {role_tag: speaker, content_tag: text, user_tag: kunde, assistant_tag: agent}
        limit: 6
    """, 6))
    records = cfg.data.load()
    expected = load_instructions(tmp_path / "chat.jsonl", format="sharegpt",
                                 columns={"messages": "dialogue", "system": "sys"}, tags=TAGS)[:6]
    assert records == expected and len(records) == 6
    assert [(t.role, t.content) for t in records[3].messages] == [
        ("system", "Antworte kurz."), ("user", "Wie viel ist 3 + 3?"), ("assistant", "6.")]
    assert len(run_config(cfg, progress=False).pools[-1]) == 4


@needs_demo
def test_a_config_loads_the_llamafactory_sharegpt_demo_by_path_and_by_dataset_info(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    raw = json.loads((DEMO / "glaive_toolcall_en_demo.json").read_text(encoding="utf-8"))
    by_path = load_config(_config(tmp_path, f"""
        path: {DEMO / "glaive_toolcall_en_demo.json"}
        format: sharegpt
        columns: {{messages: conversations, tools: tools}}
        on_duplicates: ignore
    """, len(raw)))
    by_entry = load_config(_config(tmp_path, f"""
        dataset_info: {DEMO / "dataset_info.json"}
        dataset: glaive_toolcall_en_demo
        on_duplicates: ignore
    """, len(raw)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateRecordsWarning)  # on_duplicates reaches the loader
        a, b = by_path.data.load(), by_entry.data.load()
    assert a == b and len(a) == 300 and all(r.format == "sharegpt" and r.tools for r in a)
    assert [r.original for r in a] == raw
    assert by_entry.data.path is None and by_entry.data.dataset_info == DEMO / "dataset_info.json"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"path": "d.jsonl", "format": "sharegtp"}, "data.format: format must be a record format name"),
        ({"path": "d.jsonl", "format": "sharegtp"}, "Did you mean 'sharegpt'?"),
        ({"path": "d.jsonl", "format": "jsonl"}, "data.format: names the record format; 'jsonl' is a file type"),
        ({"path": "d.jsonl", "file_type": "csv"}, "data.file_type: file_type must be one of"),
        ({"path": "d.jsonl", "columns": {"turns": "x"}}, "data.columns: columns has unknown keys ['turns']"),
        ({"path": "d.jsonl", "tags": {"role_tag": 3}}, "data.tags: tags: each value must be a string"),
        ({"path": "d.jsonl", "meta_fields": "category"}, "data.meta_fields: expected a list of field names"),
        ({"path": "d.jsonl", "encoding": "utf-99"}, "data.encoding: encoding must name a text codec"),
        ({"path": "d.jsonl", "on_duplicates": "raise"}, "data.on_duplicates: must be one of ['warn', 'ignore']"),
        ({"path": "d.jsonl", "duplicate_keys": "merge"}, "data.duplicate_keys: must be one of ['error', 'first'"),
        ({"path": "d.jsonl", "fields": "alpacca"}, "data.fields: fields must be one of"),
        ({"path": "d.jsonl", "fields": "alpacca"}, "Did you mean 'alpaca'?"),
        ({"path": "d.jsonl", "fields": {"instructon": "q", "output": "a"}}, "data.fields: fields must map"),
        ({"path": "d.jsonl", "fields": "alpaca", "columns": {"prompt": "q"}}, "data: pass either fields= or columns="),
        ({"path": "d.jsonl", "format": "openai", "fields": "alpaca"}, "data: format='openai' and fields='alpaca'"),
        ({"path": "d.jsonl", "format": "alpaca", "tags": {"role_tag": "r"}}, "data: tags= does not apply to 'alpaca'"),
        ({"embeddings": "e.npy"}, "data.path: missing required key"),
        ({"path": "d.jsonl", "dataset": "x"}, "data.dataset: names an entry of data.dataset_info"),
        ({"dataset_info": "missing/dataset_info.json", "dataset": "x"}, "data.dataset_info: No such dataset_info"),
    ],
)
def test_data_options_are_checked_at_parse_time_naming_the_key(data: dict, fragment: str) -> None:
    mapping = {"run_dir": "r", "data": {"embeddings": "e.npy", **data}}
    with pytest.raises(ConfigError) as info:
        parse_config(mapping, source="c.yaml")
    assert fragment in str(info.value)


@needs_demo
def test_dataset_info_entry_errors_name_the_key() -> None:
    info = str(DEMO / "dataset_info.json")
    base = {"embeddings": "e.npy", "dataset_info": info}
    with pytest.raises(ConfigError, match=r"data\.dataset: dataset_info has no entry 'glaive'"):
        parse_config({"run_dir": "r", "data": {**base, "dataset": "glaive"}}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"data\.dataset: missing required key"):
        parse_config({"run_dir": "r", "data": base}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"data\.columns: the data\.dataset_info entry gives"):
        parse_config({"run_dir": "r", "data": {**base, "dataset": "alpaca_en_demo", "columns": {"prompt": "q"}}})
    cfg = parse_config({"run_dir": "r", "data": {**base, "dataset": "alpaca_en_demo", "limit": 5,
                                                 "on_duplicates": "ignore"}})
    assert [r.format for r in cfg.data.load()] == ["alpaca"] * 5


def test_duplicate_keys_and_encoding_reach_the_loader(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes("\ufeff".encode() + b'{"instruction": "x", "output": "y", "output": "z"}\n')
    base = {"run_dir": "r", "data": {"path": str(path), "embeddings": "e.npy"}}
    with pytest.raises(Exception, match="byte-order mark"):
        parse_config(base).data.load()
    cfg = parse_config({"run_dir": "r", "data": {**base["data"], "encoding": "utf-8-sig", "duplicate_keys": "last"}})
    assert cfg.data.load()[0].output == "z"


def test_options_that_fail_on_the_data_name_the_data_section(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"instruction": "x", "output": "y"}\n')
    from diverseevol.config import _load_records

    cfg = parse_config({"run_dir": "r", "data": {"path": str(path), "embeddings": "e.npy", "format": "alpaca",
                                                 "columns": {"prompt": None}}}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"c\.yaml: data: 'alpaca' records need an instruction and an output"):
        _load_records(cfg)
