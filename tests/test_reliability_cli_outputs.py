"""Issue 12 item 1: no CLI output may be one of its inputs, and an interrupted write leaves no half file.

The oracle is the file system: the bytes of every input before and after the command, the set of
files in the output directory, and the exit code documented in docs/cli.md (2 for a usage error).
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


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A 30-record dataset, its (30, 3) embeddings and a pool file."""
    rng = np.random.default_rng(1)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"q{i}", "input": "", "output": f"a{i}"}) + "\n"
                            for i in range(30)))
    emb = tmp_path / "e.npy"
    np.save(emb, rng.normal(size=(30, 3)).astype(np.float32))
    pool = tmp_path / "pool.json"
    pool.write_text("[0, 1]")
    return {"data": data, "emb": emb, "pool": pool}


def _select(f: dict[str, Path], *extra: str) -> list[str]:
    return ["select", str(f["data"]), "--embeddings", str(f["emb"]), "--k", "3", "--pool", str(f["pool"]), *extra]


@pytest.mark.parametrize(
    ("option", "target"),
    [
        ("--out", "data"),
        ("--out", "emb"),
        ("--out", "pool"),
        ("--indices-out", "data"),
        ("--indices-out", "emb"),
        ("--indices-out", "pool"),
    ],
)
def test_an_output_that_is_an_input_is_a_usage_error(files: dict[str, Path], tmp_path: Path, option: str,
                                                     target: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = {k: _digest(p) for k, p in files.items()}
    args = _select(files) + [option, str(files[target])]
    if option == "--indices-out":
        args += ["--out", str(tmp_path / "picked.jsonl")]
    assert main(args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert option in err and str(files[target]) in err, err
    assert {k: _digest(p) for k, p in files.items()} == before
    assert not (tmp_path / "picked.jsonl").exists()


def test_same_file_through_a_relative_path_and_a_symlink(files: dict[str, Path], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    before = _digest(files["data"])
    sub = tmp_path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert main(_select(files) + ["--out", "../d.jsonl"]) == EXIT_USAGE  # relative spelling of the data
    link = tmp_path / "link.jsonl"
    link.symlink_to(files["data"])
    assert main(_select(files) + ["--out", str(link)]) == EXIT_USAGE
    assert "d.jsonl" in capsys.readouterr().err
    hard = tmp_path / "hard.jsonl"
    os.link(files["data"], hard)
    assert main(_select(files) + ["--out", str(hard)]) == EXIT_USAGE
    assert _digest(files["data"]) == before and link.is_symlink()


def test_the_two_outputs_must_differ(files: dict[str, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.txt"
    assert main(_select(files) + ["--out", str(out), "--indices-out", str(out)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--out" in err and "--indices-out" in err
    assert not out.exists()


def test_an_output_may_not_replace_a_file_of_the_embedder_directory(files: dict[str, Path], tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    rc = main(["select", str(files["data"]), "--embedder", str(model), "--k", "2",
               "--out", str(model / "config.json")])
    assert rc == EXIT_USAGE
    assert (model / "config.json").read_text() == "{}"


def test_valid_outputs_still_work(files: dict[str, Path], tmp_path: Path) -> None:
    out, idx = tmp_path / "o.jsonl", tmp_path / "o.npy"
    assert main(_select(files) + ["--out", str(out), "--indices-out", str(idx)]) == EXIT_OK
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    picked = np.load(idx).tolist()
    assert [r["instruction"] for r in rows] == [f"q{i}" for i in picked] and not {0, 1} & set(picked)
    # Writing over the previous outputs (not inputs) is allowed.
    assert main(_select(files) + ["--out", str(out), "--indices-out", str(idx)]) == EXIT_OK


_LIMITED = r"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
from diverseevol.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs POSIX file-size limits")
@pytest.mark.parametrize("old", [None, "previous selection\n"])
def test_a_records_write_that_fails_midway_leaves_no_half_file(tmp_path: Path, old: str | None) -> None:
    """The process may write only 4096 bytes per file: the --out file (about 40 kB) fails midway."""
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"q{i} " + "x" * 2000, "input": "", "output": "a"}) + "\n"
                            for i in range(40)))
    emb = tmp_path / "e.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(40, 2)))
    out = tmp_path / "out" / "picked.jsonl"
    out.parent.mkdir()
    if old is not None:
        out.write_text(old)
    args = ["select", str(data), "--embeddings", str(emb), "--k", "20", "--out", str(out)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "DIVERSEEVOL_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, "-c", _LIMITED, *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "File too large" in proc.stderr, proc.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ([out.name] if old is not None else [])
    if old is not None:
        assert out.read_text() == old


@pytest.mark.parametrize("old", [None, b"previous"])
@pytest.mark.parametrize("suffix", [".npy", ".txt"])
def test_an_indices_write_that_fails_midway_leaves_no_half_file(files: dict[str, Path], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                old: bytes | None, suffix: str) -> None:
    """The file handle accepts a few bytes, then the disk is full (ENOSPC)."""
    import errno
    import io

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    idx = out_dir / f"picked{suffix}"
    if old is not None:
        idx.write_bytes(old)
    real_open = open

    class _FullDisk(io.FileIO):
        def write(self, b: object) -> int:  # type: ignore[override]
            super().write(bytes(memoryview(b))[:5])  # type: ignore[arg-type]
            raise OSError(errno.ENOSPC, "No space left on device")

    def fake_open(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        if isinstance(file, (str, os.PathLike)) and Path(file).parent == out_dir and "w" in mode:
            return _FullDisk(file, "wb")
        return real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", fake_open)
    rc = main(_select(files) + ["--out", str(tmp_path / "records.jsonl"), "--indices-out", str(idx)])
    monkeypatch.undo()
    assert rc == 1
    assert sorted(p.name for p in out_dir.iterdir()) == ([idx.name] if old is not None else [])
    if old is not None:
        assert idx.read_bytes() == old


def _run_dir(files: dict[str, Path], tmp_path: Path) -> Path:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'run_dir = "r"\n[data]\npath = "{files["data"].name}"\nembeddings = "{files["emb"].name}"\n'
                   '[budget]\ninit_size = 4\nk = 3\nrounds = 1\n')
    assert main(["run", str(cfg), "--no-progress"]) == EXIT_OK
    return tmp_path / "r"


def test_report_outputs_may_not_be_run_directory_files(files: dict[str, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("diverseevol.report")
    run = _run_dir(files, tmp_path)
    metrics = run / "metrics.json"
    before = _digest(metrics)
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "metrics.csv").symlink_to(metrics)  # report's metrics.csv would be the run's metrics.json
    capsys.readouterr()
    assert main(["report", str(run), "--out", str(rep)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "metrics.csv" in err and "metrics.json" in err
    assert _digest(metrics) == before and (rep / "metrics.csv").is_symlink()
    assert main(["report", str(run), "--out", str(tmp_path / "rep2")]) == EXIT_OK
