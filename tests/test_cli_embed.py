"""``diverseevol embed`` (diverseevol.embed_file): the file equals the embedder's one-shot output, a killed
run resumes from the last finished chunk, two gloo processes write the same file as one, and
``compare --embedder`` equals ``compare --embeddings`` of that file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diverseevol.cli import EXIT_OK, EXIT_USAGE, main
from diverseevol.data import InstructionRecord
from diverseevol.embed_file import embed_to_file, partial_paths


def _records(n: int) -> list[InstructionRecord]:
    return [InstructionRecord(f"task {i}", "", f"answer {i}") for i in range(n)]


def _fake_rows(chunk):
    """An embedding that depends only on the record (its number), so any chunking gives the same rows."""
    ids = np.array([int(r.instruction.split()[1]) for r in chunk], dtype=np.float32)
    return np.stack([ids, ids ** 2, -ids], axis=1), {}


class _Killed(Exception):
    pass


def test_a_killed_run_resumes_from_the_last_finished_chunk(tmp_path: Path) -> None:
    records = _records(23)
    out = tmp_path / "emb.npy"
    calls: list[tuple[int, int]] = []

    def dies_in_third_chunk(chunk):
        if len(calls) == 2:
            raise _Killed
        calls.append((int(chunk[0].instruction.split()[1]), len(chunk)))
        return _fake_rows(chunk)

    with pytest.raises(_Killed):
        embed_to_file(records, out, dies_in_third_chunk, chunk_size=5, progress=False)
    partial, progress = partial_paths(out)
    assert not out.exists() and partial.is_file()
    assert json.loads(progress.read_text())["rows_done"] == 10

    seen: list[tuple[int, int]] = []

    def counting(chunk):
        seen.append((int(chunk[0].instruction.split()[1]), len(chunk)))
        return _fake_rows(chunk)

    assert embed_to_file(records, out, counting, chunk_size=5, progress=False) == out
    assert seen == [(10, 5), (15, 5), (20, 3)]  # rows 0-9 were not embedded again
    assert not partial.exists() and not progress.exists()
    got = np.load(out)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, _fake_rows(records)[0])


def test_other_records_start_again(tmp_path: Path) -> None:
    out = tmp_path / "emb.npy"
    calls = []

    def dies_after_one(chunk):
        if calls:
            raise _Killed
        calls.append(1)
        return _fake_rows(chunk)

    with pytest.raises(_Killed):
        embed_to_file(_records(12), out, dies_after_one, chunk_size=4, progress=False)
    other = [InstructionRecord(f"task {i + 100}", "", "x") for i in range(12)]  # same count, other data
    seen = []

    def counting(chunk):
        seen.append(len(chunk))
        return _fake_rows(chunk)

    embed_to_file(other, out, counting, chunk_size=4, progress=False)
    assert sum(seen) == 12
    np.testing.assert_array_equal(np.load(out), _fake_rows(other)[0])


def test_rows_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    from diverseevol.errors import ValidationError

    with pytest.raises(ValidationError, match=r"expected \(4, d\)"):
        embed_to_file(_records(8), tmp_path / "e.npy", lambda chunk: (np.zeros((1, 2)), {}), chunk_size=4,
                      progress=False)


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from diverseevol.hf.tiny import save_tiny_model

    monkeypatch.setenv("DIVERSEEVOL_PROGRESS", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rng = np.random.default_rng(0)
    words = ["add", "list", "poem", "why", "sum", "sky", "blue", "code", "tree", "sort"]
    data = tmp_path / "data.jsonl"
    with data.open("w") as fh:
        for i in range(30):
            fh.write(json.dumps({"instruction": f"{i} " + " ".join(rng.choice(words, size=rng.integers(1, 6))),
                                 "input": "", "output": " ".join(rng.choice(words, size=rng.integers(1, 8))),
                                 "category": f"c{i % 3}"}) + "\n")
    model = save_tiny_model(tmp_path / "m", hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32)
    return data, model


def test_embed_writes_what_the_embedder_returns(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    from diverseevol import load_instructions
    from diverseevol.hf import HFEmbedder, load_model

    data, model = tiny
    out = tmp_path / "emb.npy"
    assert main(["embed", str(data), "--embedder", str(model), "--out", str(out), "--chunk-size", "7"]) == EXIT_OK
    expected = HFEmbedder(progress=False)(load_model(str(model)), load_instructions(data))
    got = np.load(out, mmap_mode="r")
    assert got.shape == (30, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not any(p.exists() for p in partial_paths(out))
    # compare --embedder: the same table as compare --embeddings of that file
    for flag, value, folder in (("--embeddings", out, "a"), ("--embedder", model, "b")):
        assert main(["compare", str(data), flag, str(value), "--k", "5", "--pool-size", "5", "--seeds", "0",
                     "--samplers", "kcenter,random", "--no-plots", "--out", str(tmp_path / folder)]) == EXIT_OK
    runs_a = json.loads((tmp_path / "a" / "runs.json").read_text())
    runs_b = json.loads((tmp_path / "b" / "runs.json").read_text())
    assert [(r["sampler"], r["picks"]) for r in runs_a] == [(r["sampler"], r["picks"]) for r in runs_b]
    assert len(runs_a) == 2 and all(len(r["picks"]) == 5 for r in runs_a)


def test_embed_usage_errors(tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, model = tiny
    assert main(["embed", str(data), "--embedder", str(model), "--out", str(tmp_path / "e.txt")]) == EXIT_USAGE
    assert ".npy" in capsys.readouterr().err
    assert main(["embed", str(data), "--embedder", str(model), "--out", str(data)]) == EXIT_USAGE
    assert main(["compare", str(data), "--k", "2", "--out", str(tmp_path / "c")]) == EXIT_USAGE
    assert "--embedder" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_processes_write_the_file_of_one(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("peft")
    data, model = tiny
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", DIVERSEEVOL_PROGRESS="0",
               TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    outs = {}
    for world in (1, 2):
        out = tmp_path / f"emb{world}.npy"
        launcher = [sys.executable] if world == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
            "--master_port", str(_free_port())]
        args = [*launcher, "-m", "diverseevol", "embed", str(data), "--embedder", str(model), "--out", str(out),
                "--chunk-size", "8"]
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise AssertionError(f"{args} timed out:\n{stderr[-4000:]}") from None
        assert proc.returncode == 0, f"{args} failed:\n{stdout[-2000:]}\n{stderr[-4000:]}"
        assert stdout.count("embedded 30 records") == 1  # rank 0 alone reports (it wrote the file)
        outs[world] = np.load(out)
        assert not any(p.exists() for p in partial_paths(out))
    np.testing.assert_allclose(outs[2], outs[1], atol=1e-5)
