"""Issue 12 item 14: resuming deletes only the temporary files the library's own writer creates
(one recognisable name pattern), never a trainer's files that merely look temporary."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import loop_fakes as fakes

from diverseevol._files import is_temp_name, write_json
from diverseevol.run import RunDirectory


@pytest.fixture(autouse=True)
def _fast_disk(monkeypatch):
    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "0")


def _loop(run_dir, trainer=None):
    return fakes.small_loop(run_dir, trainer=trainer or fakes.FakeTrainer(), sampler="random", seed=1)


def _leftover_temp(target: Path) -> Path:
    """The temporary file a write of ``target`` killed before its rename leaves behind."""
    seen = {}
    real = os.replace

    def die(src, dst):
        seen["tmp"] = Path(src)
        raise KeyboardInterrupt  # stands for the kill; atomic_write's cleanup is skipped below

    try:
        os.replace = die
        original_unlink = Path.unlink
        Path.unlink = lambda self, *a, **k: None  # a killed process cleans nothing up
        with pytest.raises(KeyboardInterrupt):
            write_json(target, {"v": 1})
    finally:
        os.replace = real
        Path.unlink = original_unlink
    assert seen["tmp"].exists()
    return seen["tmp"]


def test_the_writer_names_its_temporary_files_with_one_pattern(tmp_path):
    tmp = _leftover_temp(tmp_path / "status.json")
    assert is_temp_name(tmp.name)
    for other in (".foo.tmp.1", "a.tmp", ".model.safetensors.tmp.123.abcd", "x.json", ".lock", "tmp"):
        assert not is_temp_name(other), other


def test_resume_removes_only_the_library_temp_files(tmp_path):
    run_dir = tmp_path / "run"
    _loop(run_dir).run()
    model = run_dir / "rounds" / "round_001" / "model"
    theirs = [model / ".foo.tmp.1", model / ".ckpt.tmp.42.deadbeef", model / "w.tmp.3", run_dir / ".notes.tmp.9"]
    for path in theirs:
        path.write_text("the trainer's")
    ours = [_leftover_temp(run_dir / "status.json"), _leftover_temp(model / "state.json")]
    assert RunDirectory(run_dir).remove_temp_files() == len(ours)
    assert all(p.read_text() == "the trainer's" for p in theirs)
    assert not any(p.exists() for p in ours)
    # and through a real resume
    ours = [_leftover_temp(run_dir / "rounds" / "round_000" / "judge.json")]
    _loop(run_dir).run()
    assert all(p.read_text() == "the trainer's" for p in theirs)
    assert not any(p.exists() for p in ours)


def test_a_directory_with_only_our_temp_files_counts_as_empty(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _leftover_temp(run_dir / "config.json")
    assert RunDirectory(run_dir).is_empty()
    (run_dir / ".foo.tmp.1").write_text("x")
    assert not RunDirectory(run_dir).is_empty()
