"""Issue 12 item 15 (rest): .npy inputs of the CLI, config runs and the demo are read with
``_files.load_npy`` (typed errors naming the file, never numpy's "allow_pickle" advice), and a
uint64 index is shown as its real value."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from diverseevol.cli import EXIT_RUNTIME, EXIT_USAGE, main

N = 8


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"q{i}", "input": "", "output": "a"}) + "\n" for i in range(N)))
    return path


BROKEN = {
    "empty": (b"", "empty (0 bytes)"),
    "csv": (b"0.1,0.2\n0.3,0.4\n", "not a .npy file"),
    "pickle": (None, "Python objects"),
    "truncated": (None, "truncated"),
}


def _broken(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.npy"
    content, _ = BROKEN[kind]
    if content is not None:
        path.write_bytes(content)
    elif kind == "pickle":
        np.save(path, np.array([{"a": 1}] * N, dtype=object), allow_pickle=True)
    else:
        np.save(path, np.zeros((N, 3)))
        path.write_bytes(path.read_bytes()[:-20])
    return path


def _check_message(err: str, path: Path, kind: str) -> None:
    assert str(path) in err and BROKEN[kind][1] in err, err
    assert "allow_pickle" not in err and "unsafely" not in err and "EOFError" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", list(BROKEN))
def test_select_and_vendi_name_a_broken_embeddings_file(data: Path, tmp_path: Path, kind: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    emb = _broken(tmp_path, kind)
    assert main(["select", str(data), "--embeddings", str(emb), "--k", "2", "--out", str(tmp_path / "o.jsonl")]) \
        == EXIT_RUNTIME
    _check_message(capsys.readouterr().err, emb, kind)
    assert main(["vendi", "--embeddings", str(emb)]) == EXIT_RUNTIME
    _check_message(capsys.readouterr().err, emb, kind)


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_config_run_names_a_broken_embeddings_file(data: Path, tmp_path: Path, kind: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    emb = _broken(tmp_path, kind)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'run_dir = "r"\n[data]\npath = "{data.name}"\nembeddings = "{emb.name}"\n'
                   "[budget]\ninit_size = 2\nk = 2\nrounds = 1\n")
    assert main(["run", str(cfg)]) == EXIT_RUNTIME
    err = capsys.readouterr().err
    _check_message(err, emb, kind)
    assert "data.embeddings" in err


def test_a_uint64_index_is_reported_as_its_real_value(data: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    emb = tmp_path / "e.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(N, 2)))
    for value in (2**64 - 1, 2**63 + 5, 2**40):
        pool = tmp_path / "p.npy"
        np.save(pool, np.array([1, value], dtype=np.uint64))
        assert main(["select", str(data), "--embeddings", str(emb), "--k", "2", "--pool", str(pool),
                     "--out", str(tmp_path / "o.jsonl")]) == EXIT_USAGE
        err = capsys.readouterr().err
        assert str(value) in err and str(value - 2**64) not in err.replace(str(tmp_path), ""), err
        assert main(["vendi", "--embeddings", str(emb), "--indices", str(pool)]) == EXIT_USAGE
        assert str(value) in capsys.readouterr().err


def test_the_demo_recomputes_an_unreadable_reference_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The demo's reference-embedding cache, cut short, is named in a warning and recomputed."""
    import logging

    import diverseevol.demo.run as demo_run

    path = _broken(tmp_path, "truncated")
    calls = []

    def fake_embed(base, records, **kw):  # type: ignore[no-untyped-def]
        calls.append(len(records))
        return np.arange(len(records) * 2, dtype=np.float64).reshape(len(records), 2), {}

    class Suite:
        train = [object()] * N

    class Settings:
        model = "smollm2"  # the path that embeds through assemble.embed_with_model (faked here)
        embed_batch_size = 4

    import diverseevol.assemble as assemble

    monkey = pytest.MonkeyPatch()
    monkey.setattr(assemble, "embed_with_model", fake_embed)
    try:
        with caplog.at_level(logging.WARNING, logger="diverseevol"):
            emb = demo_run._reference_embeddings(tmp_path, tmp_path, Suite(), path, Settings(), False)  # type: ignore[arg-type]
    finally:
        monkey.undo()
    assert calls == [N] and emb.shape == (N, 2)
    assert str(path) in caplog.text and "truncated" in caplog.text
    assert np.load(path).shape == (N, 2)  # the cache was rewritten whole
