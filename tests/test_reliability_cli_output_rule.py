"""Issue 22 items 1, 2 and 12 (outputs): every command that writes follows one rule
(:mod:`diverseevol.outputs`), and a command's output folder is replaced as a whole or not at all.

Oracles: the bytes of every input before and after the command, the entries of the output folder
and of its parent, and the exit code of docs/cli.md (2: the command changed nothing).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diverseevol.cli import EXIT_OK, EXIT_USAGE, main

N = 30


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _records() -> list[dict[str, str]]:
    return [{"instruction": f"q{i}", "input": "", "output": f"a{i}", "category": f"c{i % 3}"} for i in range(N)]


@pytest.fixture
def run(tmp_path: Path) -> dict[str, Path]:
    """A finished 3-round run from a configuration file: its data, embeddings, config and run directory."""
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    emb = tmp_path / "e.npy"
    np.save(emb, np.random.default_rng(1).normal(size=(N, 3)).astype(np.float32))
    cfg = tmp_path / "c.toml"
    cfg.write_text('run_dir = "r"\n[data]\npath = "d.jsonl"\nembeddings = "e.npy"\n'
                   '[budget]\ninit_size = 4\nk = 3\nrounds = 3\n')
    assert main(["run", str(cfg), "--no-progress"]) == EXIT_OK
    return {"data": data, "emb": emb, "cfg": cfg, "run": tmp_path / "r"}


def _inputs(f: dict[str, Path]) -> dict[str, str]:
    files = [f["data"], f["emb"], f["cfg"], *sorted(p for p in f["run"].rglob("*") if p.is_file())]
    return {str(p): _digest(p) for p in files}


# --------------------------------------------------------------------------------------------
# item 1: export never writes over the run's data, its configuration or its files
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["data", "data via ..", "data via a symlink", "config via a hard link",
                                    "config.json", "pool.json"])
def test_export_refuses_an_output_that_is_a_file_it_reads(run: dict[str, Path], tmp_path: Path, target: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    before = _inputs(run)
    out = {
        "data": run["data"],
        "data via ..": run["run"] / ".." / "d.jsonl",
        "data via a symlink": tmp_path / "link.jsonl",
        "config via a hard link": tmp_path / "cfg.jsonl",
        "config.json": run["run"] / "config.json",
        "pool.json": run["run"] / "rounds" / "round_001" / "pool.json",
    }[target]
    if target == "data via a symlink":
        out.symlink_to(run["data"])
    if target == "config via a hard link":
        os.link(run["cfg"], out)
    assert out.exists()
    capsys.readouterr()
    assert main(["export", str(run["run"]), "--out", str(out)]) == EXIT_USAGE
    err = capsys.readouterr().err
    named = {"config.json": "RUN_DIR file config.json", "pool.json": "RUN_DIR file rounds/round_001/pool.json",
             "config via a hard link": "the run's configuration file"}.get(target, "the run's data")
    assert "--out" in err and "same file as the input" in err and named in err, err
    assert _inputs(run) == before
    assert main(["export", str(run["run"]), "--out", str(tmp_path / "picked.jsonl")]) == EXIT_OK


def test_export_data_x_out_x_is_refused(run: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    before = _inputs(run)
    assert main(["export", str(run["run"]), "--data", str(run["data"]), "--out", str(run["data"])]) == EXIT_USAGE
    assert "--data" in capsys.readouterr().err
    assert _inputs(run) == before


# --------------------------------------------------------------------------------------------
# item 2: compare never writes over DATA, and --out is replaced as a whole
# --------------------------------------------------------------------------------------------
def _compare(data: Path, emb: Path, out: Path, *extra: str) -> list[str]:
    return ["compare", str(data), "--embeddings", str(emb), "--k", "4", "--pool-size", "3", "--no-plots",
            "--samplers", "kcenter,random", "--out", str(out), *extra]


@pytest.mark.parametrize("name", ["runs.json", "compare.csv", "compare.md", "mine.jsonl"])
def test_compare_refuses_an_out_folder_holding_data(tmp_path: Path, name: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp"
    out.mkdir()
    data = out / name
    data.write_text(json.dumps(_records()) if name.endswith("json") else "".join(json.dumps(r) + "\n" for r in _records()))
    emb = tmp_path / "e.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(N, 3)))
    before = _digest(data)
    args = _compare(data, emb, out)
    if name.endswith((".csv", ".md")):  # not a records file, but still an input that must survive
        args[1] = str(data)
    assert main(args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "contains the input DATA" in err, err
    assert _digest(data) == before and sorted(p.name for p in out.iterdir()) == [name]


def test_compare_out_rules(run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, emb = run["data"], run["emb"]
    afile = tmp_path / "afile"
    afile.write_text("keep")
    assert main(_compare(data, emb, afile)) == EXIT_USAGE  # an existing regular file
    assert "existing file" in capsys.readouterr().err and afile.read_text() == "keep"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main(_compare(data, emb, mine)) == EXIT_USAGE  # a folder holding other files
    assert "notes.txt" in capsys.readouterr().err and _tree(mine) == {"notes.txt": b"keep"}
    out = tmp_path / "cmp"
    assert main(_compare(data, emb, out, "--label", "category")) == EXIT_OK
    first = _tree(out)
    assert main(_compare(data, emb, out, "--seeds", "1,2")) == EXIT_OK  # a folder compare wrote: replaced
    second = _tree(out)
    assert set(second) == {"compare.csv", "compare.md", "runs.json"}
    assert all(second[name] != first[name] for name in second)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


_KILLABLE = r"""
import os, sys, time
if os.environ.get("NO_EXCHANGE"):
    import diverseevol.outputs as outputs
    outputs._exchange = lambda a, b: False
count = [0]
def marked(real, name):
    def call(src, dst, *args, **kwargs):
        result = real(src, dst, *args, **kwargs)
        count[0] += 1
        print(f"@{name} {count[0]} {os.path.basename(dst)}", flush=True)
        time.sleep(0.25)
        return result
    return call
os.replace = marked(os.replace, "replace")
os.rename = marked(os.rename, "rename")
from diverseevol.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _killed_at(argv: list[str], after: int, no_exchange: bool) -> int:
    """Run the command in a subprocess and SIGKILL it after its ``after``-th rename; return the renames seen."""
    env = {**os.environ, "DIVERSEEVOL_PROGRESS": "0", "DIVERSEEVOL_FSYNC": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    if no_exchange:
        env["NO_EXCHANGE"] = "1"
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    seen = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("@"):
            seen += 1
            if seen == after:
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait(timeout=120)
    return seen


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
@pytest.mark.parametrize("no_exchange", [False, True], ids=["renameat2", "two-renames"])
def test_a_killed_compare_never_leaves_old_and_new_files_mixed(run: dict[str, Path], tmp_path: Path,
                                                              no_exchange: bool) -> None:
    """kill -9 after each rename of a compare that replaces an earlier one: --out holds the old files
    or the new ones (or, between two renames, nothing, with the old folder put back by the next run);
    the next run leaves no temporary behind."""
    data, emb = run["data"], run["emb"]
    out = tmp_path / "cmp"
    assert main(_compare(data, emb, out)) == EXIT_OK
    old = _tree(out)
    new_argv = _compare(data, emb, out, "--seeds", "1,2")
    for after in (1, 2, 3, 4, 5):
        seen = _killed_at(new_argv, after, no_exchange)
        state = _tree(out) if out.is_dir() else None
        if state is None:  # killed between the two renames: the old folder waits beside it
            assert no_exchange
            aside = [p for p in tmp_path.iterdir() if ".diverseevol.old." in p.name]
            assert len(aside) == 1 and _tree(aside[0]) == old
        elif state != old:
            assert set(state) == set(old) and all(state[name] != old[name] for name in state), (after, seen)
        # The next run cleans what the killed one left and restores or replaces the folder whole.
        assert main(_compare(data, emb, out)) == EXIT_OK
        old = _tree(out)
        assert set(old) == {"compare.csv", "compare.md", "runs.json"}
        leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".cmp."))
        assert leftovers == [], leftovers


# --------------------------------------------------------------------------------------------
# report and select under the same rule
# --------------------------------------------------------------------------------------------
def test_report_out_is_replaced_whole_and_never_the_run(run: dict[str, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("diverseevol.report")
    before = _inputs(run)
    assert main(["report", str(run["run"]), "--out", str(run["run"])]) == EXIT_USAGE
    assert main(["report", str(run["run"]), "--out", str(run["run"] / "rounds")]) == EXIT_USAGE
    assert _inputs(run) == before
    assert main(["report", str(run["run"])]) == EXIT_OK  # RUN_DIR/report, inside the run: allowed
    (run["run"] / "report" / "stale.csv").write_text("from an older version")
    assert main(["report", str(run["run"])]) == EXIT_OK  # replaced as a whole
    assert not (run["run"] / "report" / "stale.csv").exists() and (run["run"] / "report" / "table.md").is_file()
    capsys.readouterr()


def test_select_removes_the_temporary_a_killed_select_left(run: dict[str, Path], tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    out = tmp_path / "o.jsonl"
    stale = tmp_path / f".o.jsonl.diverseevol.tmp.{proc.pid}.0123abcd"
    stale.write_text('{"half": ')
    assert main(["select", str(run["data"]), "--embeddings", str(run["emb"]), "--k", "2", "--out", str(out)]) == EXIT_OK
    assert not stale.exists() and len(out.read_text().splitlines()) == 2


def test_demo_out_may_not_be_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep")
    assert main(["demo", "--samplers", "random", "--out", str(afile)]) == EXIT_USAGE
    assert "existing file" in capsys.readouterr().err and afile.read_text() == "keep"


# --------------------------------------------------------------------------------------------
# export RUN_DIR reads records through the configuration's data section (dataset_info too)
# --------------------------------------------------------------------------------------------
@pytest.fixture
def info_run(tmp_path: Path) -> dict[str, Path]:
    """A finished run whose data comes from a LLaMA-Factory dataset_info.json entry (no data.path)."""
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps({"mine": {"file_name": "d.jsonl"}}))
    emb = tmp_path / "e.npy"
    np.save(emb, np.random.default_rng(1).normal(size=(N, 3)).astype(np.float32))
    cfg = tmp_path / "c.toml"
    cfg.write_text('run_dir = "r"\n[data]\ndataset_info = "dataset_info.json"\ndataset = "mine"\nembeddings = "e.npy"\n'
                   '[budget]\ninit_size = 4\nk = 3\nrounds = 2\n')
    assert main(["run", str(cfg), "--no-progress"]) == EXIT_OK
    return {"data": data, "info": info, "emb": emb, "cfg": cfg, "run": tmp_path / "r"}


def test_export_reads_a_dataset_info_run_through_its_data_section(info_run: dict[str, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from diverseevol.run.result import EvolutionResult

    out = tmp_path / "picked.jsonl"
    assert main(["export", str(info_run["run"]), "--out", str(out)]) == EXIT_OK, capsys.readouterr().err
    lines = info_run["data"].read_text().splitlines(keepends=True)
    chosen = EvolutionResult.load(info_run["run"]).subset_indices()
    assert out.read_text() == "".join(lines[int(i)] for i in chosen)  # the source lines, byte for byte
    # the entry's data file and the dataset_info.json are inputs: neither may be the output
    before = {p: _digest(p) for p in (info_run["data"], info_run["info"], info_run["cfg"])}
    for target in (info_run["data"], info_run["info"], tmp_path / "." / "d.jsonl"):
        assert main(["export", str(info_run["run"]), "--out", str(target)]) == EXIT_USAGE
    assert {p: _digest(p) for p in before} == before
    capsys.readouterr()


def test_export_removes_the_temporary_a_killed_export_left(run: dict[str, Path], tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    out = tmp_path / "o.jsonl"
    out.write_text("the old export\n")
    stale = tmp_path / f".o.jsonl.diverseevol.tmp.{proc.pid}.0123abcd"
    stale.write_text('{"half": ')
    mine = tmp_path / f".o.jsonl.diverseevol.tmp.{os.getpid()}.0123abcd"  # a live writer's: kept
    mine.write_text("in progress")
    assert main(["export", str(run["run"]), "--out", str(out)]) == EXIT_OK
    assert not stale.exists() and mine.exists() and len(out.read_text().splitlines()) == 4 + 3 * 3


def test_select_removes_the_temporary_a_killed_select_left_beside_indices_out(run: dict[str, Path],
                                                                                tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    idx = tmp_path / "idx.txt"
    stale = tmp_path / f".idx.txt.diverseevol.tmp.{proc.pid}.89abcdef"
    stale.write_text("[1, ")
    assert main(["select", str(run["data"]), "--embeddings", str(run["emb"]), "--k", "2",
                 "--out", str(tmp_path / "o.jsonl"), "--indices-out", str(idx)]) == EXIT_OK
    assert not stale.exists() and len(idx.read_text().split()) == 2


def test_bakeoff_out_may_not_hold_a_dataset_info_entrys_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The data a dataset_info entry names is an input of bakeoff, as data.path is."""
    pytest.importorskip("yaml")
    import yaml

    out = tmp_path / "out"
    out.mkdir()
    data = out / "results.json"  # the entry's data, under a name bakeoff writes in --out
    data.write_text(json.dumps(_records()))
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps({"mine": {"file_name": "out/results.json"}}))
    (tmp_path / "base").mkdir()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"dataset_info": "dataset_info.json", "dataset": "mine"},
        "model": {"name_or_path": str(tmp_path / "base")},
        "budget": {"init_size": 4, "k": 4, "rounds": 1},
        "bakeoff": {"samplers": ["random", "kcenter"], "baseline": "random",
                    "heldout": {"label_field": "category", "per_label": 2}, "generation": False},
    }))
    before = {p: _digest(p) for p in (data, info, cfg)}
    capsys.readouterr()
    assert main(["bakeoff", str(cfg), "--out", str(out)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "results.json" in err
    assert {p: _digest(p) for p in before} == before
    # the dataset_info.json itself is an input too
    assert main(["bakeoff", str(cfg), "--out", str(info)]) == EXIT_USAGE
    assert {p: _digest(p) for p in before} == before
