"""Issue 12 item 12: exit codes follow docs/cli.md (0 ok, 1 runtime error, 2 usage or configuration error).

One table: every configuration and argument error exits 2 with one line on stderr naming what to
fix; the runtime errors at the end exit 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from diverseevol.cli import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, main

N = 12


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Path]:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"q{i}", "input": "", "output": f"a{i}"}) + "\n"
                            for i in range(N)))
    emb = tmp_path / "e.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(N, 3)))
    (tmp_path / "model").mkdir()
    return {"dir": tmp_path, "data": data, "emb": emb}


def _config(env: dict[str, Path], extra: str = "", *, seed: str = "0", budget: str = "init_size = 2\nk = 2\nrounds = 1",
            model: bool = False) -> Path:
    cfg = env["dir"] / "c.toml"
    view = '[model]\nname_or_path = "model"\n' if model else ""
    cfg.write_text(f'run_dir = "runs/x"\nseed = {seed}\n[data]\npath = "d.jsonl"\nembeddings = "e.npy"\n'
                   f"{extra}\n[budget]\n{budget}\n{view}")
    return cfg


def _file(env: dict[str, Path], name: str, content: str) -> str:
    path = env["dir"] / name
    path.write_text(content)
    return str(path)


def _select(env: dict[str, Path], *extra: str) -> list[str]:
    return ["select", str(env["data"]), "--embeddings", str(env["emb"]), "--k", "2",
            "--out", str(env["dir"] / "o.jsonl"), *extra]


Case = Callable[[dict[str, Path]], list[str]]

USAGE_CASES: dict[str, tuple[Case, str]] = {
    # configuration files
    "sampler.params typo (run)": (lambda e: ["run", str(_config(e, '[sampler]\nname = "kcenter"\n[sampler.params]\n'
                                                            'metricc = "cosine"'))], "sampler.params"),
    "sampler.params bad value (run --check)": (lambda e: ["run", "--check", str(_config(
        e, '[sampler]\nname = "kcenter"\n[sampler.params]\nmetric = "cosinee"'))], "sampler.params"),
    "data.fields typo": (lambda e: [], "data.fields"),
    "data.fields name typo": (lambda e: [], "data.fields"),
    "negative seed in a config": (lambda e: ["run", "--check", str(_config(e, seed="-1"))], "seed"),
    "negative k in a config": (lambda e: ["run", "--check", str(_config(e, budget="k = -1"))], "budget.k"),
    "model.trainer typo": (lambda e: [], "model.trainer"),
    "unknown sampler in a config": (lambda e: ["run", str(_config(e, '[sampler]\nname = "kcentre"'))], "kcenter"),
    # arguments
    "negative seed (select)": (lambda e: _select(e, "--seed", "-1"), "--seed"),
    "negative seed (demo)": (lambda e: ["demo", "--seed", "-3", "--out", str(e["dir"] / "demo")], "--seed"),
    "vendi --q -1": (lambda e: ["vendi", "--embeddings", str(e["emb"]), "--q", "-1"], "--q"),
    "vendi --q nan": (lambda e: ["vendi", "--embeddings", str(e["emb"]), "--q", "nan"], "--q"),
    "bad --param value": (lambda e: _select(e, "--param", "metric=cosinee"), "metric"),
    "bad --param name": (lambda e: _select(e, "--param", "metricc=cosine"), "metricc"),
    "--param without =": (lambda e: _select(e, "--param", "metric"), "KEY=VALUE"),
    "duplicate --pool": (lambda e: _select(e, "--pool", _file(e, "p.json", "[1, 1]")), "--pool"),
    "out-of-range --pool": (lambda e: _select(e, "--pool", _file(e, "p.json", f"[{N}]")), "--pool"),
    "negative --pool": (lambda e: _select(e, "--pool", _file(e, "p.json", "[-1]")), "--pool"),
    "fractional --pool": (lambda e: _select(e, "--pool", _file(e, "p.json", "[1.5]")), "--pool"),
    "duplicate --indices": (lambda e: ["vendi", "--embeddings", str(e["emb"]), "--indices",
                                       _file(e, "i.txt", "3\n3\n")], "--indices"),
    "out-of-range --indices": (lambda e: ["vendi", "--embeddings", str(e["emb"]), "--indices",
                                          _file(e, "i.txt", "99\n")], "--indices"),
    "negative --k": (lambda e: _select(e)[:4] + ["--k", "-1", "--out", "o.jsonl"], "--k"),
    "--k larger than the candidates": (lambda e: _select(e, "--pool", _file(e, "p.json", "[0, 1, 2]"))[:5]
                                       + ["--k", str(N - 2), "--out", "o.jsonl", "--pool", str(e["dir"] / "p.json")],
                                       "--k"),
    "unknown sampler": (lambda e: _select(e, "--sampler", "kcentre"), "kcenter"),
}


def _fix_cases(env: dict[str, Path], name: str) -> list[str]:
    """Cases whose file needs more than one line of setup."""
    if name == "data.fields typo":
        cfg = _config(env)
        cfg.write_text(cfg.read_text().replace('embeddings = "e.npy"\n', 'embeddings = "e.npy"\nfields = "alpacca"\n'))
        return ["run", "--check", str(cfg)]
    if name == "data.fields name typo":  # a mapping naming a key load_instructions does not know
        cfg = _config(env)
        cfg.write_text(cfg.read_text().replace(
            'embeddings = "e.npy"\n', 'embeddings = "e.npy"\nfields = {instructon = "q", output = "a"}\n'))
        return ["run", str(cfg)]
    if name == "model.trainer typo":  # `epoch` for `epochs`, found when the parts are built
        cfg = _config(env, model=True)
        cfg.write_text(cfg.read_text() + "[model.trainer]\nepoch = 1\n")
        return ["run", str(cfg)]
    return USAGE_CASES[name][0](env)


@pytest.mark.parametrize("name", list(USAGE_CASES))
def test_every_usage_or_configuration_error_exits_2(env: dict[str, Path], name: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    if name == "model.trainer typo":
        pytest.importorskip("torch")
        pytest.importorskip("transformers")
    argv = _fix_cases(env, name)
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE, (name, rc, err)
    lines = err.strip().splitlines()
    assert lines and "Traceback" not in err
    assert lines[-1].startswith("diverseevol ") or lines[-1].startswith("usage:") or "error:" in lines[-1]
    fragment = USAGE_CASES[name][1]
    assert fragment in err, (name, err)
    assert not (env["dir"] / "runs").exists()  # nothing was started
    assert not (env["dir"] / "o.jsonl").exists()


RUNTIME_CASES: dict[str, Case] = {
    "missing data file": lambda e: ["select", str(e["dir"] / "none.jsonl"), "--embeddings", str(e["emb"]),
                                    "--k", "2", "--out", str(e["dir"] / "o.jsonl")],
    "missing pool file": lambda e: _select(e, "--pool", str(e["dir"] / "none.json")),
    "malformed data": lambda e: ["select", _file(e, "bad.jsonl", '{"instruction": "a", "output": \n'),
                                 "--embeddings", str(e["emb"]), "--k", "2", "--out", str(e["dir"] / "o.jsonl")],
    "missing run directory": lambda e: ["report", str(e["dir"] / "nope")],
}


@pytest.mark.parametrize("name", list(RUNTIME_CASES))
def test_runtime_errors_exit_1(env: dict[str, Path], name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(RUNTIME_CASES[name](env)) == EXIT_RUNTIME
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_valid_versions_of_the_same_commands_succeed(env: dict[str, Path]) -> None:
    assert main(_select(env, "--seed", "3", "--param", "metric=cosine", "--pool",
                        _file(env, "p.json", "[1.0, 2]"))) == EXIT_OK
    assert main(["vendi", "--embeddings", str(env["emb"]), "--q", "inf"]) == EXIT_OK
    assert main(["run", str(_config(env, '[sampler]\nname = "kcenter"\n[sampler.params]\nmetric = "cosine"'))]) == EXIT_OK
