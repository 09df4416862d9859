"""Issue 12 item 15 (part): an OSError from an atomic write (disk full, read-only file system,
quota, I/O error) names the file, keeps its errno and leaves the old file and no temp file."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import loop_fakes as fakes

from diverseevol import _files
from diverseevol._files import atomic_write, write_json
from diverseevol.errors import DiverseEvolError


@pytest.fixture(autouse=True)
def _fast_disk(monkeypatch):
    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "0")


def _loop(run_dir, trainer=None):
    return fakes.small_loop(run_dir, trainer=trainer or fakes.FakeTrainer(), sampler="random", seed=1)



# ---- item 15: OSErrors carry the path ----------------------------------------------------------------
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO])
def test_write_errors_name_the_file(tmp_path, code):
    target = tmp_path / "sub" / "a.json"
    write_json(target, {"v": 1})

    def full(fh):
        fh.write(b"{")
        raise OSError(code, os.strerror(code))

    with pytest.raises(OSError) as info:
        atomic_write(target, full)
    err = info.value
    assert isinstance(err, DiverseEvolError)
    assert err.errno == code and err.filename == str(target)
    assert str(target) in str(err) and os.strerror(code) in str(err)
    if code == errno.ENOSPC:
        assert "space" in str(err) and "free" in str(err).lower()
    assert json.loads(target.read_text()) == {"v": 1}  # the old file is intact
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_a_full_disk_during_a_run_names_the_file(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    real = _files.os.replace
    calls = {"n": 0}

    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 6:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst)

    monkeypatch.setattr(_files.os, "replace", replace)
    with pytest.raises(OSError, match="No space left on device") as info:
        _loop(run_dir).run()
    assert info.value.errno == errno.ENOSPC and str(run_dir) in str(info.value)
    monkeypatch.setattr(_files.os, "replace", real)
    assert _loop(run_dir).run().finished  # space freed: the run resumes


def test_errors_of_the_write_callback_that_are_ours_pass_unchanged(tmp_path):
    from diverseevol.errors import RunDirectoryError

    def refuse(fh):
        raise RunDirectoryError("refused on purpose")

    with pytest.raises(RunDirectoryError, match="^refused on purpose$"):
        atomic_write(tmp_path / "x.json", refuse)
