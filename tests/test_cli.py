"""Tests of the `diverseevol` command: every subcommand through main(argv), exit codes, one subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diverseevol import __version__
from diverseevol.cli import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, main


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """60 records in 3 well-separated clusters of embeddings (20 each), as JSONL + .npy."""
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    labels = np.repeat(np.arange(3), 20)
    emb = (centers[labels] + rng.normal(scale=1.0, size=(60, 2))).astype(np.float32)
    data = tmp_path / "data.jsonl"
    with data.open("w") as fh:
        for i in range(60):
            fh.write(json.dumps({"instruction": f"task {i}", "input": "", "output": f"answer {i}",
                                 "category": f"c{labels[i]}"}) + "\n")
    path = tmp_path / "emb.npy"
    np.save(path, emb)
    return data, path, labels


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == EXIT_OK
    out = capsys.readouterr().out
    for cmd in ("demo", "run", "select", "vendi", "report", "samplers"):
        assert cmd in out
    assert main(["--version"]) == EXIT_OK
    assert __version__ in capsys.readouterr().out
    for cmd in ("demo", "run", "select", "vendi", "report", "samplers"):
        assert main([cmd, "--help"]) == EXIT_OK
        text = capsys.readouterr().out
        assert "--debug" in text and "usage: diverseevol " + cmd in text


def test_no_command_and_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_USAGE
    assert main(["frobnicate"]) == EXIT_USAGE
    assert main(["select", "x.jsonl", "--k", "0", "--out", "o.jsonl"]) == EXIT_USAGE
    assert "positive integer" in capsys.readouterr().err
    assert main(["select", "x.jsonl", "--k", "3", "--out", "o.jsonl", "--param", "novalue"]) == EXIT_USAGE


def test_samplers_lists_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["samplers"]) == EXIT_OK
    out = capsys.readouterr().out
    for name in ("kcenter", "random", "least_confidence", "margin", "entropy"):
        assert name in out
    assert main(["samplers", "--json"]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"]: r["requires"] for r in rows}["kcenter"] == ["embeddings"]


def test_select_kcenter_covers_every_cluster(dataset: tuple[Path, Path, np.ndarray], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    data, emb, labels = dataset
    out = tmp_path / "picked.jsonl"
    idx = tmp_path / "picked.txt"
    rc = main(["select", str(data), "--embeddings", str(emb), "--k", "3", "--out", str(out), "--indices-out", str(idx)])
    assert rc == EXIT_OK, capsys.readouterr().err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3
    picked = [int(x) for x in idx.read_text().split()]
    assert sorted(labels[picked]) == [0, 1, 2]  # farthest-first reaches all 3 clusters
    source = [json.loads(line) for line in data.read_text().splitlines()]
    assert rows == [source[i] for i in picked]  # the input's own records, unchanged, in pick order


def test_select_with_pool_params_and_plugins(dataset: tuple[Path, Path, np.ndarray], tmp_path: Path) -> None:
    data, emb, labels = dataset
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps([int(i) for i in np.flatnonzero(labels < 2)]))
    out = tmp_path / "o.jsonl"
    assert main(["select", str(data), "--embeddings", str(emb), "--k", "2", "--out", str(out), "--pool", str(pool),
                 "--param", "metric=cosine"]) == EXIT_OK
    picked = [int(json.loads(line)["instruction"].split()[1]) for line in out.read_text().splitlines()]
    assert all(labels[i] == 2 for i in picked)  # the pool's clusters are covered already

    from diverseevol.samplers.registry import register_sampler, unregister_sampler

    @register_sampler("cli_test_last")
    class Last:
        requires = frozenset()

        def select(self, ctx, k):  # type: ignore[no-untyped-def]
            return np.sort(ctx.candidate_idx)[-k:][::-1]

    try:
        assert main(["select", str(data), "--embeddings", str(emb), "--k", "2", "--out", str(out),
                     "--sampler", "cli_test_last"]) == EXIT_OK
        assert [int(json.loads(line)["instruction"].split()[1]) for line in out.read_text().splitlines()] == [59, 58]
    finally:
        unregister_sampler("cli_test_last")


def test_select_errors(dataset: tuple[Path, Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, emb, _ = dataset
    out = str(tmp_path / "o.jsonl")
    assert main(["select", str(data), "--embeddings", str(emb), "--k", "3", "--out", out, "--sampler", "kcentre"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Did you mean 'kcenter'" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert main(["select", str(data), "--embeddings", str(emb), "--k", "61", "--out", out]) == EXIT_USAGE
    assert main(["select", str(data), "--embeddings", str(emb), "--k", "3", "--out", out, "--sampler", "margin"]) == EXIT_USAGE
    assert "--embedder" in capsys.readouterr().err
    assert main(["select", str(data), "--k", "3", "--out", out]) == EXIT_USAGE
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((5, 2), dtype=np.float32))
    assert main(["select", str(data), "--embeddings", str(bad), "--k", "3", "--out", out]) == EXIT_USAGE
    assert "has 5 rows but the data has 60" in capsys.readouterr().err
    # Runtime errors: missing file -> 1, one line; --debug adds the traceback.
    assert main(["select", str(tmp_path / "none.jsonl"), "--embeddings", str(emb), "--k", "3", "--out", out]) == EXIT_RUNTIME
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert main(["--debug", "select", str(tmp_path / "none.jsonl"), "--embeddings", str(emb), "--k", "3", "--out", out]) == EXIT_RUNTIME
    assert "Traceback" in capsys.readouterr().err


def test_vendi_matches_library_and_reference(dataset: tuple[Path, Path, np.ndarray], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    data, emb, _ = dataset
    assert main(["vendi", str(data), "--embeddings", str(emb), "--json"]) == EXIT_OK
    got = json.loads(capsys.readouterr().out)
    x = np.load(emb).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = np.clip(np.linalg.eigvalsh(x @ x.T / len(x)), 0, None)
    w = w[w > 1e-12]
    assert got["vendi"] == pytest.approx(np.exp(-(w * np.log(w)).sum()), rel=1e-5)
    assert (got["n"], got["d"], got["q"]) == (60, 2, 1.0)
    idx = tmp_path / "idx.txt"
    idx.write_text("0\n1\n")
    assert main(["vendi", "--embeddings", str(emb), "--indices", str(idx)]) == EXIT_OK
    assert "over 2 records" in capsys.readouterr().out
    assert main(["vendi", str(data)]) == EXIT_USAGE  # needs --embeddings or --embedder


def test_run_from_config_and_resume(dataset: tuple[Path, Path, np.ndarray], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    data, emb, _ = dataset
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'run_dir = "runs/x"\nseed = 1\n[data]\npath = "{data.name}"\nembeddings = "{emb.name}"\n'
                   '[sampler]\nname = "kcenter"\n[budget]\ninit_size = 4\nk = 3\nrounds = 2\n')
    assert main(["run", str(cfg), "--check"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["budget"]["k"] == 3
    assert main(["run", str(cfg)]) == EXIT_OK
    from diverseevol.run import EvolutionResult

    res = EvolutionResult.load(tmp_path / "runs" / "x")
    assert [len(p) for p in res.pools] == [4, 7, 10] and res.finished
    # Resuming a finished run does nothing new and succeeds; a changed budget is refused (exit 1).
    assert main(["run", str(cfg)]) == EXIT_OK
    cfg.write_text(cfg.read_text().replace("k = 3", "k = 2"))
    assert main(["run", str(cfg)]) == EXIT_RUNTIME
    assert main(["run", str(cfg), "--overwrite"]) == EXIT_OK
    assert [len(p) for p in EvolutionResult.load(tmp_path / "runs" / "x").pools] == [4, 6, 8]
    # Invalid configuration -> usage error, one line naming the key.
    cfg.write_text(cfg.read_text().replace("rounds = 2", "roundz = 2"))
    capsys.readouterr()
    assert main(["run", str(cfg)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "budget.roundz: unknown key" in err and "'budget.rounds'" in err
    assert main(["run", str(tmp_path / "missing.toml")]) == EXIT_USAGE


def test_report(dataset: tuple[Path, Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("diverseevol.report")
    data, emb, _ = dataset
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'run_dir = "r"\n[data]\npath = "{data.name}"\nembeddings = "{emb.name}"\n'
                   '[budget]\ninit_size = 4\nk = 3\nrounds = 2\n')
    caplog.clear()
    assert main(["run", str(cfg)]) == EXIT_OK  # without -v: the command's loggers stay at WARNING
    # one summary line per round reaches the command's log handler, and none of the loop's other INFO lines
    assert [r.getMessage().split(",")[0] for r in caplog.records if r.name == "diverseevol.loop"] \
        == ["round 0/2: pool 4 (+3)", "round 1/2: pool 7 (+3)", "round 2/2: pool 10"]
    assert main(["report", str(tmp_path / "r"), "--out", str(tmp_path / "rep")]) == EXIT_OK
    assert (tmp_path / "rep").is_dir() and any((tmp_path / "rep").iterdir())
    printed = capsys.readouterr().out  # a run without a judge: the per-round table all the same
    assert "| round | pool size | Vendi | covering radius | norm ratio |" in printed
    assert [line.split("|")[1:3] for line in printed.splitlines() if line.startswith("| 2 |")] == [[" 2 ", " 10 "]]
    assert main(["report", str(tmp_path / "nope")]) == EXIT_RUNTIME


def test_demo_tiny_through_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import torch

    torch.set_num_threads(2)
    monkeypatch.setenv("DIVERSEEVOL_CACHE", str(tmp_path / "cache"))
    rc = main(["demo", "--tiny", "--samplers", "random", "--rounds", "1", "--no-plots", "--no-progress",
               "--out", str(tmp_path / "demo")])
    assert rc == EXIT_OK, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "Task coverage" in out and "| random |" in out
    assert (tmp_path / "demo" / "results.csv").is_file()
    assert main(["demo", "--samplers", "nosuch", "--out", str(tmp_path / "d2")]) == EXIT_USAGE


def test_subprocess_entry_points() -> None:
    env = {**os.environ, "DIVERSEEVOL_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, "-m", "diverseevol", "--help"], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert proc.returncode == 0 and "diverseevol" in proc.stdout
    # --help must not import the heavy stack.
    code = ("import sys; from diverseevol.cli import main; rc = main(['--help']); "
            "heavy = [m for m in ('torch', 'transformers', 'faiss', 'matplotlib', 'pandas', 'numpy') if m in sys.modules]; "
            "print('HEAVY', heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert "HEAVY []" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "diverseevol", "select"], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert proc.returncode == 2 and "required" in proc.stderr
    script = Path(sys.executable).with_name("diverseevol")
    if script.exists():
        proc = subprocess.run([str(script), "samplers"], capture_output=True, text=True, env=env, timeout=120, check=False)
        assert proc.returncode == 0 and "kcenter" in proc.stdout


def test_select_and_vendi_with_an_embedder_model(dataset: tuple[Path, Path, np.ndarray], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from diverseevol.hf.tiny import save_tiny_model

    monkeypatch.setenv("DIVERSEEVOL_PROGRESS", "0")
    data, _, _ = dataset
    model = save_tiny_model(tmp_path / "m", hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32)
    out = tmp_path / "o.jsonl"
    for sampler in ("kcenter", "margin"):
        assert main(["select", str(data), "--embedder", str(model), "--k", "4", "--out", str(out),
                     "--sampler", sampler]) == EXIT_OK
        picked = [int(json.loads(line)["instruction"].split()[1]) for line in out.read_text().splitlines()]
        assert len(set(picked)) == 4 and all(0 <= i < 60 for i in picked)
    # margin: the 4 records with the smallest mean response margin, as the HF scorer computes it.
    from diverseevol import load_instructions
    from diverseevol.hf import HFScorer, load_model

    margins = HFScorer(progress=False)(load_model(str(model)), load_instructions(data))["margin"]
    assert sorted(picked) == sorted(np.argsort(margins, kind="stable")[:4].tolist())
    assert main(["vendi", str(data), "--embedder", str(model), "--json"]) == EXIT_OK
    assert main(["select", str(data), "--embedder", str(tmp_path / "none"), "--k", "2", "--out", str(out)]) == EXIT_RUNTIME
