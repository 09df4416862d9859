"""Lossless export: `select --out`, EvolutionResult.subset/export and `diverseevol export` write exactly the
input's records at the picked indices, in pick order, as JSON, JSON lines or Parquet."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from shared_data import shared_data_dir

from diverseevol.cli import EXIT_OK, EXIT_USAGE, main
from diverseevol.data import InstructionRecord, load_instructions
from diverseevol.export import dataset_info_entry, export_format, original_rows, write_subset

DEMO = shared_data_dir() / "llamafactory_demo"

# Shapes the loader has not seen in the shared data: other languages, extra columns, nested values.
SHAREGPT_ROWS = [
    {"conversations": [{"from": "human", "value": f"¿Cuánto es {i} + {i}?"}, {"from": "gpt", "value": f"Es {2 * i}."}],
     "system": "Responde en español.", "id": f"es-{i}", "images": [], "score": i / 3}
    for i in range(12)
]
OPENAI_ROWS = [
    {"messages": [{"role": "system", "content": "日本語で答えてください。"},
                  {"role": "user", "content": f"{i}の二倍は？"},
                  {"role": "assistant", "content": f"{2 * i}です。"}],
     "source": "handmade", "meta": {"lang": "ja", "n": i}}
    for i in range(12)
]
ALPACA_ROWS = [
    {"instruction": f"Übersetze Nummer {i}.", "input": "" if i % 2 else f"Zahl {i}", "output": f"number {i}",
     "tags": ["de", str(i)]}
    for i in range(12)
]


def _write(path: Path, rows: list) -> Path:
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    elif path.name.endswith(".jsonl.gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _read(path: Path) -> list:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        text = fh.read()
    if ".jsonl" in path.suffixes:
        return [json.loads(line) for line in text.splitlines() if line]
    return json.loads(text)


def _source_rows(path: Path) -> list:
    """The input as an independent reader sees it (Parquet: pyarrow's rows, JSON: json.loads)."""
    return _read(path)


@pytest.mark.parametrize("rows", [SHAREGPT_ROWS, OPENAI_ROWS, ALPACA_ROWS], ids=["sharegpt", "openai", "alpaca"])
@pytest.mark.parametrize("in_name", ["in.json", "in.jsonl", "in.jsonl.gz", "in.parquet"])
@pytest.mark.parametrize("out_name", ["out.json", "out.jsonl", "out.jsonl.gz", "out.parquet"])
def test_write_subset_equals_input_records_at_indices(tmp_path, rows, in_name, out_name):
    if "parquet" in in_name + out_name:
        pytest.importorskip("pyarrow")
    src = _write(tmp_path / in_name, rows)
    records = load_instructions(src)
    picks = np.array([7, 0, 11, 3], dtype=np.int64)
    out = write_subset(tmp_path / out_name, records, picks, source=src)
    expected = [_source_rows(src)[i] for i in picks]
    if out_name.endswith(".parquet") and not in_name.endswith(".parquet"):
        # a table has one schema: keys missing from a nested object read back as null
        import pyarrow as pa

        expected = pa.Table.from_pylist(expected).to_pylist()
    assert _read(out) == expected


def test_records_keep_original_and_extra_columns():
    recs = load_instructions(SHAREGPT_ROWS)
    assert all(r.original is row for r, row in zip(recs, SHAREGPT_ROWS))
    assert recs[2].format == "sharegpt" and recs[2].messages[0].content == "Responde en español."
    assert original_rows(recs, [2]) == [SHAREGPT_ROWS[2]]
    built = [InstructionRecord("q", "", "a", {"category": "c"})]
    assert original_rows(built, [0]) == [{"instruction": "q", "input": "", "output": "a", "category": "c"}]


def test_unknown_output_suffix_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\.json.*\.jsonl.*\.parquet"):
        export_format(tmp_path / "out.csv")
    assert export_format("a/b.jsonl.gz") == ("jsonl", True) and export_format("x.parquet") == ("parquet", False)


@pytest.mark.parametrize("out_name", ["sel.json", "sel.jsonl", "sel.parquet"])
def test_cli_select_writes_the_input_records(tmp_path, out_name):
    if out_name.endswith("parquet"):
        pytest.importorskip("pyarrow")
    src = _write(tmp_path / "chat.jsonl", OPENAI_ROWS)
    rng = np.random.default_rng(0)
    emb = tmp_path / "emb.npy"
    np.save(emb, rng.normal(size=(len(OPENAI_ROWS), 4)).astype(np.float32))
    out, idx = tmp_path / out_name, tmp_path / "idx.txt"
    assert main(["select", str(src), "--embeddings", str(emb), "--k", "5", "--out", str(out),
                 "--indices-out", str(idx)]) == EXIT_OK
    picks = [int(x) for x in idx.read_text().split()]
    assert len(set(picks)) == 5
    expected = [OPENAI_ROWS[i] for i in picks]
    if out_name.endswith("parquet"):
        import pyarrow as pa

        expected = pa.Table.from_pylist(expected).to_pylist()
    assert _read(out) == expected
    assert main(["select", str(src), "--embeddings", str(emb), "--k", "5", "--out", str(tmp_path / "o.csv")]) == \
        EXIT_USAGE


@pytest.mark.skipif(not (DEMO / "glaive_toolcall_en_demo.json").is_file(), reason="shared demo data not found")
def test_cli_select_on_llamafactory_sharegpt_demo(tmp_path, capsys):
    src = DEMO / "glaive_toolcall_en_demo.json"
    raw = json.loads(src.read_text(encoding="utf-8"))
    emb = tmp_path / "emb.npy"
    np.save(emb, np.random.default_rng(1).normal(size=(len(raw), 8)).astype(np.float32))
    out, idx = tmp_path / "subset.json", tmp_path / "idx.npy"
    assert main(["select", str(src), "--embeddings", str(emb), "--k", "20", "--out", str(out),
                 "--indices-out", str(idx), "--param", "metric=cosine"]) == EXIT_OK
    picks = np.load(idx)
    assert json.loads(out.read_text(encoding="utf-8")) == [raw[i] for i in picks]


def test_dataset_info_entry_matches_llamafactory_demo_entries():
    info = json.loads((DEMO / "dataset_info.json").read_text(encoding="utf-8")) if DEMO.is_dir() else None
    if info is None:
        pytest.skip("shared demo data not found")
    glaive = load_instructions(DEMO / "glaive_toolcall_en_demo.json", on_duplicates="ignore")
    alpaca = load_instructions(DEMO / "alpaca_en_demo.json", on_duplicates="ignore")
    assert dataset_info_entry("glaive_toolcall_en_demo.json", glaive) == info["glaive_toolcall_en_demo"]
    assert dataset_info_entry("alpaca_en_demo.json", alpaca) == info["alpaca_en_demo"]
    entry = dataset_info_entry("x.json", load_instructions(OPENAI_ROWS))
    assert entry["formatting"] == "sharegpt" and entry["tags"]["role_tag"] == "role"
    assert entry["columns"] == {"messages": "messages"}


# ---- a run's pools ------------------------------------------------------------------------------
@pytest.fixture
def finished_run(tmp_path):
    src = _write(tmp_path / "data.json", SHAREGPT_ROWS)
    np.save(tmp_path / "emb.npy", np.random.default_rng(2).normal(size=(len(SHAREGPT_ROWS), 4)).astype(np.float32))
    cfg = tmp_path / "c.toml"
    cfg.write_text('run_dir = "run"\nseed = 3\n[data]\npath = "data.json"\nembeddings = "emb.npy"\n'
                   '[sampler]\nname = "kcenter"\n[budget]\ninit_size = 3\nk = 2\nrounds = 2\n')
    assert main(["run", str(cfg)]) == EXIT_OK
    return tmp_path / "run", src


def test_result_subset_and_cli_export(finished_run, tmp_path, capsys):
    from diverseevol.run.result import EvolutionResult

    run_dir, src = finished_run
    result = EvolutionResult.load(run_dir)
    records = load_instructions(src)
    assert [len(p) for p in result.pools] == [3, 5, 7]
    assert result.subset(records=records) == [SHAREGPT_ROWS[i] for i in result.pools[-1]]
    assert result.subset(1, records=records) == [SHAREGPT_ROWS[i] for i in result.pools[1]]
    with pytest.raises(ValueError, match="not the data of the run"):
        result.subset(records=records[:-1])
    with pytest.raises(IndexError):
        result.subset_indices(3)
    capsys.readouterr()
    for name in ("final.json", "final.jsonl", "r0.jsonl"):
        argv = ["export", str(run_dir), "--out", str(tmp_path / name), "--dataset-info"]
        argv += ["--round", "0"] if name.startswith("r0") else []
        assert main(argv) == EXIT_OK
        pool = result.pools[0] if name.startswith("r0") else result.pools[-1]
        assert _read(tmp_path / name) == [SHAREGPT_ROWS[i] for i in pool]
    printed = capsys.readouterr().out
    assert '"formatting": "sharegpt"' in printed
    # --data given explicitly; a wrong one is refused
    assert main(["export", str(run_dir), "--data", str(src), "--out", str(tmp_path / "d.json")]) == EXIT_OK
    other = _write(tmp_path / "other.json", SHAREGPT_ROWS[::-1])
    assert main(["export", str(run_dir), "--data", str(other), "--out", str(tmp_path / "e.json")]) != EXIT_OK


def test_export_of_a_run_over_the_first_records(tmp_path, capsys):
    """A run started in Python with records[:10] is exported from the whole file: by --limit 10, or found alone."""
    from diverseevol import EvolutionLoop

    rows = [{"instruction": f"task {i}", "input": "", "output": f"answer {i}"} for i in range(14)]
    src = tmp_path / "all.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = EvolutionLoop(load_instructions(src)[:10], trainer=lambda recs, t, out: None, sampler="random",
                           init_size=3, k=2, rounds=2, seed=0, run_dir=tmp_path / "run", progress=False).run()
    want = [rows[i] for i in result.pools[-1]]
    for extra, name in (([], "auto.jsonl"), (["--limit", "10"], "limit.jsonl")):
        assert main(["export", str(tmp_path / "run"), "--data", str(src), "--out", str(tmp_path / name), *extra]) == 0
        assert [json.loads(line) for line in (tmp_path / name).read_text().splitlines()] == want
    assert "first 10 of the data's 14 records" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "run"), "--data", str(src), "--out", str(tmp_path / "x.jsonl"),
                 "--limit", "11"]) != EXIT_OK
    assert main(["export", str(tmp_path / "run"), "--data", str(src), "--out", str(tmp_path / "x.jsonl"),
                 "--limit", "15"]) == EXIT_USAGE
