"""Issue 22 items 10 and 12 (the CLI's parts): usage errors exit 2 with a message naming the fix,
malformed data exits 1, as docs/cli.md says; library messages name the command's flags; `run
--check` checks the files a configuration reads, relative to the configuration file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from diverseevol.cli import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, main

N = 12
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Path]:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"q{i}", "input": "", "output": f"a{i}",
                                        "tags": ["x", str(i % 2)], "category": f"c{i % 3}"}) + "\n"
                            for i in range(N)))
    emb = tmp_path / "e.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(N, 3)))
    return {"dir": tmp_path, "data": data, "emb": emb}


def _compare(e: dict[str, Path], *extra: str) -> list[str]:
    return ["compare", str(e["data"]), "--embeddings", str(e["emb"]), "--k", "2", "--pool-size", "2",
            "--samplers", "random", "--no-plots", "--out", str(e["dir"] / "cmp"), *extra]


def _config(e: dict[str, Path], text: str = "", *, name: str = "c.toml") -> Path:
    cfg = e["dir"] / "cfg" / name
    cfg.parent.mkdir(exist_ok=True)
    cfg.write_text(text or 'run_dir = "r"\n[data]\npath = "../d.jsonl"\nembeddings = "../e.npy"\n'
                           "[budget]\ninit_size = 2\nk = 2\nrounds = 3\n")
    return cfg


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


# --------------------------------------------------------------------------------------------
# item 10: wrong-code errors of export and compare
# --------------------------------------------------------------------------------------------
def test_export_round_out_of_range_names_the_valid_rounds(env: dict[str, Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(_config(env))]) == EXIT_OK
    run = env["dir"] / "cfg" / "r"
    capsys.readouterr()
    assert main(["export", str(run), "--round", "7", "--out", str(env["dir"] / "p.jsonl")]) == EXIT_USAGE
    err = _err(capsys)
    assert "--round 7" in err and "rounds 0 to 3" in err and "IndexError" not in err
    assert not (env["dir"] / "p.jsonl").exists()
    assert main(["export", str(run), "--round", "3", "--out", str(env["dir"] / "p.jsonl")]) == EXIT_OK
    assert len((env["dir"] / "p.jsonl").read_text().splitlines()) == 8
    assert main(["export", str(run), "--format", "alpaca", "--out", str(env["dir"] / "q.jsonl")]) == EXIT_USAGE
    assert "--format applies to --data" in _err(capsys)


@pytest.mark.parametrize("seeds", ["-1", "0,-1", "0,x", "", "1,1"])
def test_seeds_are_parsed_one_way_for_every_command(env: dict[str, Path], seeds: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_compare(env, "--seeds", seeds)) == EXIT_USAGE
    assert "--seeds" in capsys.readouterr().err
    assert main(["demo", "--seeds", seeds, "--out", str(env["dir"] / "demo")]) == EXIT_USAGE
    assert "--seeds" in capsys.readouterr().err
    assert not (env["dir"] / "cmp").exists() and not (env["dir"] / "demo").exists()


def test_compare_label_must_be_one_value_per_record(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_compare(env, "--label", "tags")) == EXIT_USAGE
    err = _err(capsys)
    assert "--label 'tags'" in err and "record 0 holds a list" in err and "unhashable" not in err
    assert main(_compare(env, "--label", "nosuch")) == EXIT_USAGE
    assert "--label" in _err(capsys)
    assert not (env["dir"] / "cmp").exists()
    assert main(_compare(env, "--label", "category")) == EXIT_OK


def test_compare_out_an_existing_file(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    (env["dir"] / "cmp").write_text("keep")
    assert main(_compare(env)) == EXIT_USAGE
    assert "existing file" in _err(capsys) and (env["dir"] / "cmp").read_text() == "keep"


# --------------------------------------------------------------------------------------------
# item 12: exit codes 1 vs 2 as docs/cli.md says
# --------------------------------------------------------------------------------------------
def _npy(env: dict[str, Path], name: str, array: np.ndarray) -> Path:
    path = env["dir"] / name
    np.save(path, array)
    return path


MALFORMED = {  # a file cannot be read as what it should be: exit 1
    "invalid JSONL": lambda e: ("data", _text(e, "bad.jsonl", '{"instruction": "a", "output": \n')),
    "no records": lambda e: ("data", _text(e, "empty.jsonl", "")),
    "unknown fields": lambda e: ("data", _text(e, "odd.jsonl", '{"a": 1}\n')),
    "1-D embeddings": lambda e: ("emb", _npy(e, "e1.npy", np.zeros(N))),
    "3-D embeddings": lambda e: ("emb", _npy(e, "e3.npy", np.zeros((N, 2, 2)))),
    "text embeddings": lambda e: ("emb", _npy(e, "es.npy", np.array([["a", "b"]] * N))),
    "truncated embeddings": lambda e: ("emb", _text(e, "et.npy", "not npy")),
    "NaN embeddings": lambda e: ("emb", _npy(e, "en.npy", np.full((N, 3), np.nan))),
}


def _text(env: dict[str, Path], name: str, text: str) -> Path:
    path = env["dir"] / name
    path.write_text(text)
    return path


def _commands(e: dict[str, Path], data: Path, emb: Path) -> dict[str, list[str]]:
    return {
        "select": ["select", str(data), "--embeddings", str(emb), "--k", "2", "--out", str(e["dir"] / "o.jsonl")],
        "compare": ["compare", str(data), "--embeddings", str(emb), "--k", "2", "--pool-size", "2", "--samplers",
                    "random", "--no-plots", "--out", str(e["dir"] / "cmp")],
        "vendi": ["vendi", str(data), "--embeddings", str(emb)],
    }


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_data_exits_1(env: dict[str, Path], case: str, capsys: pytest.CaptureFixture[str]) -> None:
    which, path = MALFORMED[case](env)
    data, emb = (path, env["emb"]) if which == "data" else (env["data"], path)
    for name, argv in _commands(env, data, emb).items():
        assert main(argv) == EXIT_RUNTIME, (case, name, capsys.readouterr().err)
        err = _err(capsys)
        assert path.name in err or "NaN" in err, (case, name, err)
    assert not (env["dir"] / "o.jsonl").exists() and not (env["dir"] / "cmp").exists()


def test_malformed_embeddings_in_a_configuration_exit_1(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _npy(env, "e1.npy", np.zeros(N))
    cfg = _config(env, 'run_dir = "r"\n[data]\npath = "../d.jsonl"\nembeddings = "../e1.npy"\n'
                       "[budget]\ninit_size = 2\nk = 2\nrounds = 1\n")
    assert main(["run", str(cfg)]) == EXIT_RUNTIME
    assert "data.embeddings" in _err(capsys)


USAGE = {  # the arguments do not fit together or the data: exit 2
    "embeddings rows != records": lambda e: _commands(e, e["data"], _npy(e, "e5.npy", np.zeros((5, 3)))),
    "--format typo": lambda e: {"select": _commands(e, e["data"], e["emb"])["select"] + ["--format", "alpacca"]},
    "--k too large": lambda e: {"select": _commands(e, e["data"], e["emb"])["select"][:4] + ["--k", "13", "--out",
                                                                                         str(e["dir"] / "o.jsonl")]},
}


@pytest.mark.parametrize("case", list(USAGE))
def test_arguments_that_do_not_fit_exit_2(env: dict[str, Path], case: str, capsys: pytest.CaptureFixture[str]) -> None:
    for name, argv in USAGE[case](env).items():
        assert main(argv) == EXIT_USAGE, (case, name, capsys.readouterr().err)
        _err(capsys)


def test_docs_state_the_rule_the_tests_hold() -> None:
    text = " ".join((ROOT / "docs" / "cli.md").read_text(encoding="utf-8").split())
    start = text.index("**Exit codes**")
    rule = text[start:text.index("Errors are printed", start)]
    one, two = rule.index("`1`"), rule.index("`2`")
    assert one < rule.index("malformed data") < two, "docs/cli.md: malformed data is a runtime error (1)"
    assert two < rule.index("row count") and two < rule.index("--round"), "docs/cli.md: misfits are usage errors (2)"


# --------------------------------------------------------------------------------------------
# item 12: library messages name the command's flag (--overwrite), not the Python argument
# --------------------------------------------------------------------------------------------
def test_run_mismatch_names_the_overwrite_flag(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(env)
    assert main(["run", str(cfg)]) == EXIT_OK
    cfg.write_text(cfg.read_text().replace("k = 2", "k = 1"))
    capsys.readouterr()
    assert main(["run", str(cfg)]) == EXIT_RUNTIME
    err = _err(capsys)
    assert "RunDirectoryMismatchError" in err and "--overwrite" in err and "overwrite=True" not in err


def test_demo_mismatch_names_the_overwrite_flag(env: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The demo's run directories refuse other settings with the library's own message (made here by a
    real run directory), which the command rewords."""
    import diverseevol.demo.run as demo_run
    from diverseevol.run.directory import RunDirectory

    run = RunDirectory(env["dir"] / "rd")
    run.create(config={"k": 2}, data={"n_records": 3, "sha256": "a"}, library_version="0")

    def fake_run_demo(*args, **kwargs):  # type: ignore[no-untyped-def]
        run.check_compatible(config={"k": 3}, data={"n_records": 3, "sha256": "a"}, compare_keys=("k",))

    monkeypatch.setattr(demo_run, "run_demo", fake_run_demo)
    monkeypatch.setattr(demo_run, "check_sampler_name", lambda name: None)
    assert main(["demo", "--samplers", "random", "--out", str(env["dir"] / "demo")]) == EXIT_RUNTIME
    err = _err(capsys)
    assert "--overwrite" in err and "overwrite=True" not in err and "RunDirectoryMismatchError" in err


# --------------------------------------------------------------------------------------------
# item 12: `run --check` checks the files; paths are relative to the configuration file
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "text"), [
    ("data.path", 'run_dir = "r"\n[data]\npath = "d.jsonl"\nembeddings = "../e.npy"\n'),
    ("data.embeddings", 'run_dir = "r"\n[data]\npath = "../d.jsonl"\nembeddings = "e.npy"\n'),
    ("judge.path", 'run_dir = "r"\n[data]\npath = "../d.jsonl"\n[model]\nname_or_path = "./m"\n'
                   '[judge]\ntype = "exact_match"\npath = "test.jsonl"\n'),
    ("model.name_or_path", 'run_dir = "r"\n[data]\npath = "../d.jsonl"\n[model]\nname_or_path = "./nomodel"\n'),
])
def test_run_check_fails_on_a_missing_file(env: dict[str, Path], key: str, text: str,
                                           capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    if key == "model.name_or_path":
        pytest.importorskip("transformers")
    cfg = _config(env, text)
    (cfg.parent / "m").mkdir(exist_ok=True)
    monkeypatch.chdir(env["dir"])  # d.jsonl and e.npy exist here, but paths are the config file's
    for argv in (["run", str(cfg), "--check"], ["run", str(cfg)]):
        assert main(argv) == EXIT_USAGE, capsys.readouterr()
        err = _err(capsys)
        assert key in err and "does not exist" in err and f"relative to the config file {cfg}" in err, err
    assert not (cfg.parent / "r").exists()


def test_a_run_started_through_a_relative_config_path_exports_from_anywhere(env: dict[str, Path],
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(env)
    monkeypatch.chdir(env["dir"])
    assert main(["run", str(Path("cfg") / cfg.name)]) == EXIT_OK
    run = env["dir"] / "cfg" / "r"
    assert run.is_dir()
    elsewhere = env["dir"] / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["export", str(run), "--out", "p.jsonl"]) == EXIT_OK
    assert len((elsewhere / "p.jsonl").read_text().splitlines()) == 8
