"""diverseevol.outputs: the one output rule (issue 22, "Outputs") and whole-folder replacement.

Oracles: the file system (bytes of every input before and after, the entries of a folder), and
paths built by hand in every spelling (relative, absolute, ``..``, symbolic link, hard link).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from diverseevol import outputs
from diverseevol.errors import DiverseEvolError, OutputPathError
from diverseevol.outputs import OutputFile, OutputFolder, check_outputs, claim_outputs, remove_stale_temps, replace_folder


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    data = tmp_path / "in" / "data.jsonl"
    data.parent.mkdir()
    data.write_text('{"instruction": "q", "output": "a"}\n')
    run = tmp_path / "run"
    (run / "rounds" / "round_000").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "rounds" / "round_000" / "pool.json").write_text("[0]")
    return {"data": data, "run": run}


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --------------------------------------------------------------------------------------------
# check_outputs: an output is never an input, under any spelling
# --------------------------------------------------------------------------------------------
def test_the_error_is_typed() -> None:
    assert issubclass(OutputPathError, DiverseEvolError) and issubclass(OutputPathError, ValueError)


def test_every_spelling_of_an_input_is_refused(files: dict[str, Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    data = files["data"]
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.jsonl"
    link.symlink_to(data)
    dir_link = tmp_path / "dirlink"
    dir_link.symlink_to(data.parent, target_is_directory=True)
    hard = tmp_path / "hard.jsonl"
    os.link(data, hard)
    monkeypatch.chdir(tmp_path / "sub")
    spellings = [data, Path("../in/data.jsonl"), tmp_path / "sub" / ".." / "in" / "data.jsonl", link,
                 dir_link / "data.jsonl", hard, Path("../in/./data.jsonl")]
    for spelling in spellings:
        with pytest.raises(OutputPathError, match="same file as the input DATA") as info:
            check_outputs([("--out", spelling)], [("DATA", data)])
        assert "--out" in str(info.value) and "another output path" in str(info.value)
    # The other way round too: the input spelled through the link, the output plainly.
    with pytest.raises(OutputPathError):
        check_outputs([("--out", data)], [("DATA", link)])
    assert data.read_text() == '{"instruction": "q", "output": "a"}\n'


def test_a_file_of_an_input_folder_is_refused_a_new_file_there_is_not(files: dict[str, Path]) -> None:
    run = files["run"]
    for target in (run / "config.json", run / "rounds" / "round_000" / "pool.json"):
        with pytest.raises(OutputPathError, match="RUN_DIR file"):
            check_outputs([("--out", target)], [("RUN_DIR", run)])
    check_outputs([("--out", run / "picked.jsonl")], [("RUN_DIR", run)])  # adds a file, replaces none


def test_outputs_must_differ_and_not_nest(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    with pytest.raises(OutputPathError, match="same path"):
        check_outputs([("--out", a), ("--indices-out", tmp_path / "x" / ".." / "a.txt")], [])
    folder = OutputFolder("--out", tmp_path / "cmp")
    with pytest.raises(OutputPathError, match="overlap"):
        check_outputs([folder, ("--table", tmp_path / "cmp" / "t.md")], [])
    check_outputs([("--out", a), ("--indices-out", tmp_path / "b.txt"), ("--unused", None)], [])


def test_the_kind_of_path_must_fit(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError, match="existing folder"):
        check_outputs([("--out", tmp_path / "d")], [])
    with pytest.raises(OutputPathError, match="existing file"):
        check_outputs([OutputFolder("--out", tmp_path / "f")], [])
    with pytest.raises(OutputPathError, match="existing file"):
        check_outputs([OutputFolder("--out", tmp_path / "f", whole=False)], [])


def test_a_folder_replaced_whole_may_not_hold_an_input_or_foreign_files(files: dict[str, Path], tmp_path: Path) -> None:
    data = files["data"]
    with pytest.raises(OutputPathError, match="contains the input DATA"):
        check_outputs([OutputFolder("--out", data.parent, writes=("*.csv",))], [("DATA", data)])
    with pytest.raises(OutputPathError, match="contains the input DATA"):  # DATA under one of the output names
        renamed = data.parent / "runs.json"
        os.replace(data, renamed)
        check_outputs([OutputFolder("--out", data.parent, writes=("runs.json",))], [("DATA", renamed)])
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "compare.csv").write_text("old")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputPathError, match=r"entries this command does not write \(notes.txt\)"):
        check_outputs([OutputFolder("--out", out, writes=("compare.csv",))], [])
    (out / "notes.txt").unlink()
    check_outputs([OutputFolder("--out", out, writes=("compare.csv",))], [])  # a folder it wrote before


def test_an_own_entry_linked_to_an_input_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    run = files["run"]
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "metrics.csv").symlink_to(run / "config.json")
    with pytest.raises(OutputPathError, match="--out file metrics.csv"):
        check_outputs([OutputFolder("--out", rep, writes=("*.csv",))], [("RUN_DIR", run)])


def test_an_output_folder_inside_an_input_folder_is_allowed(files: dict[str, Path]) -> None:
    """`report RUN_DIR` writes RUN_DIR/report: its old files are the report's, not the run's inputs."""
    run = files["run"]
    (run / "report").mkdir()
    (run / "report" / "table.md").write_text("old")
    check_outputs([OutputFolder("--out", run / "report", writes=("*.md",))], [("RUN_DIR", run)])
    with pytest.raises(OutputPathError):  # the run's own rounds are another matter
        check_outputs([OutputFolder("--out", run / "rounds", writes=("*.md",))], [("RUN_DIR", run)])


# --------------------------------------------------------------------------------------------
# replace_folder: whole or not at all
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_replace_folder_replaces_the_whole_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   exchange: bool) -> None:
    if not exchange:
        monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)
    out = tmp_path / "cmp"

    def fill(names: dict[str, str]):
        def write(tmp: Path) -> dict[str, Path]:
            for name, text in names.items():
                (tmp / name).write_text(text)
            return {name: tmp / name for name in names}
        return write

    got = replace_folder(out, fill({"a.csv": "1", "labels.png": "2"}))
    assert _tree(out) == {"a.csv": b"1", "labels.png": b"2"} and set(got) == {"a.csv", "labels.png"}
    replace_folder(out, fill({"a.csv": "3"}))
    assert _tree(out) == {"a.csv": b"3"}  # labels.png of the old folder is gone: no mix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp"]  # no temporary left


def test_a_failing_fill_leaves_the_old_folder_and_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "a.csv").write_text("old")

    def fill(tmp: Path) -> None:
        (tmp / "a.csv").write_text("new")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        replace_folder(out, fill)
    assert _tree(out) == {"a.csv": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp"]


def test_replace_folder_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError):
        replace_folder(tmp_path / "f", lambda tmp: None)
    assert (tmp_path / "f").read_text() == "x"


def test_a_second_rename_that_fails_puts_the_old_folder_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "a.csv").write_text("old")
    real_rename = os.rename
    calls = []

    def rename(src, dst):  # type: ignore[no-untyped-def]
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        return real_rename(src, dst)

    monkeypatch.setattr(outputs.os, "rename", rename)
    with pytest.raises(OSError, match="Input/output"):
        replace_folder(out, lambda tmp: (tmp / "a.csv").write_text("new"))
    monkeypatch.undo()
    assert _tree(out) == {"a.csv": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp"]


# --------------------------------------------------------------------------------------------
# what killed writes leave, and the clean-up
# --------------------------------------------------------------------------------------------
def test_stale_temporaries_of_a_dead_writer_are_removed(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getppid()
    out = tmp_path / "picked.jsonl"
    stale_file = tmp_path / f".picked.jsonl.diverseevol.tmp.{dead}.0123abcd"
    stale_dir = tmp_path / f".cmp.diverseevol.tmp.{dead}.0123abcd"
    running = tmp_path / f".picked.jsonl.diverseevol.tmp.{alive}.0123abcd"
    others = [tmp_path / f".other.jsonl.diverseevol.tmp.{dead}.0123abcd", tmp_path / ".picked.jsonl.tmp.1",
              tmp_path / f".picked.jsonl.diverseevol.tmp.{dead}.xyz"]
    for p in [stale_file, running, *others]:
        p.write_text("x")
    (stale_dir / "sub").mkdir(parents=True)
    (stale_dir / "sub" / "f").write_text("x")
    assert remove_stale_temps(out) == 1 and not stale_file.exists()
    assert running.exists() and all(p.exists() for p in others)
    assert remove_stale_temps(tmp_path / "cmp") == 1 and not stale_dir.exists()
    assert remove_stale_temps(tmp_path / "missing" / "x") == 0


def test_an_old_folder_left_between_two_renames_is_put_back(tmp_path: Path) -> None:
    dead = _dead_pid()
    old = tmp_path / f".cmp.diverseevol.old.{dead}.0123abcd"
    new = tmp_path / f".cmp.diverseevol.tmp.{dead}.89abcdef"
    for folder, text in ((old, "old"), (new, "new")):
        folder.mkdir()
        (folder / "a.csv").write_text(text)
    assert remove_stale_temps(tmp_path / "cmp") == 1  # the new, unfinished one; the old one is put back
    assert _tree(tmp_path / "cmp") == {"a.csv": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp"]


def test_claim_outputs_checks_then_cleans(files: dict[str, Path], tmp_path: Path) -> None:
    dead = _dead_pid()
    stale = tmp_path / f".o.jsonl.diverseevol.tmp.{dead}.0123abcd"
    stale.write_text("x")
    with pytest.raises(OutputPathError):
        claim_outputs([("--out", tmp_path / "o.jsonl"), ("--indices-out", files["data"])], [("DATA", files["data"])])
    assert stale.exists()  # a refused command changes nothing
    claim_outputs([OutputFile("--out", tmp_path / "o.jsonl")], [("DATA", files["data"])])
    assert not stale.exists()
