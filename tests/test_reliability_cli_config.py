"""Issue 12, configuration files: item 8 (the judge cache path is relative to the file, like every
other path)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from diverseevol.config import load_config


def _pairwise(tmp_path: Path, cache: str) -> Path:
    cfg_dir = tmp_path / "configs"
    cfg_dir.mkdir(exist_ok=True)
    for name in ("d.jsonl", "vicuna.jsonl", "refs.jsonl"):  # the files it reads exist (`run --check` checks them)
        (cfg_dir / name).write_text('{"instruction": "q", "input": "", "output": "a"}\n')
    cfg = cfg_dir / "c.toml"
    cfg.write_text(
        'run_dir = "runs/x"\n[data]\npath = "d.jsonl"\n[model]\nname_or_path = "hub:gpt2"\n'
        '[judge]\ntype = "pairwise"\npath = "vicuna.jsonl"\nreferences = "refs.jsonl"\n'
        f'[judge.params]\nmodel = "gpt-4"\ncache = "{cache}"\n'
    )
    return cfg


def test_judge_cache_path_is_resolved_against_the_config_directory(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _pairwise(tmp_path, "cache/judge.sqlite")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory must not matter
    config = load_config(cfg)
    assert Path(config.judge.params["cache"]) == tmp_path / "configs" / "cache" / "judge.sqlite"
    assert config.data.path == tmp_path / "configs" / "d.jsonl"  # the rule every other path follows
    # Loading through a relative path of the file gives the same absolute location from any directory.
    monkeypatch.chdir(tmp_path)
    again = load_config(Path("configs") / "c.toml")
    assert os.path.abspath(again.judge.params["cache"]) == str(tmp_path / "configs" / "cache" / "judge.sqlite")


def test_absolute_home_and_memory_caches(tmp_path: Path) -> None:
    absolute = tmp_path / "abs.sqlite"
    assert load_config(_pairwise(tmp_path, str(absolute))).judge.params["cache"] == str(absolute)
    assert load_config(_pairwise(tmp_path, ":memory:")).judge.params["cache"] == ":memory:"
    home = load_config(_pairwise(tmp_path, "~/j.sqlite")).judge.params["cache"]
    assert home == str(Path("~/j.sqlite").expanduser())


# --------------------------------------------------------------------------------------------
# item 9: the API key never comes from a configuration file, and `run --check` prints no secret
# --------------------------------------------------------------------------------------------
_KEY = "sk-proj-" + "Ab3" * 12


@pytest.mark.parametrize("name", ["api_key", "API_KEY", "apiKey", "openai_api_key"])
def test_an_api_key_in_judge_params_is_refused(tmp_path: Path, name: str) -> None:
    from diverseevol.errors import ConfigError

    cfg = _pairwise(tmp_path, "c.sqlite")
    cfg.write_text(cfg.read_text() + f'{name} = "{_KEY}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    text = str(info.value)
    assert f"judge.params.{name}" in text and "OPENAI_API_KEY" in text and str(cfg) in text
    assert _KEY not in text and "Ab3Ab3" not in text


def test_run_check_refuses_the_key_and_prints_no_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from diverseevol.cli import EXIT_OK, EXIT_USAGE, main

    cfg = _pairwise(tmp_path, "c.sqlite")
    text = cfg.read_text()
    cfg.write_text(text + f'api_key = "{_KEY}"\n')
    assert main(["run", str(cfg), "--check"]) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert "OPENAI_API_KEY" in err and _KEY not in out + err
    # Secrets elsewhere (a Hugging Face token in the trainer's training arguments) are printed redacted.
    token = "hf_" + "Zq9" * 10
    cfg.write_text(text.replace("[judge]", f'[model.trainer.training_args]\nhub_token = "{token}"\n[judge]'))
    assert main(["run", str(cfg), "--check"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert token not in out + err and "<redacted>" in out and '"hub_token"' in out
    # A secret in a value of the wrong type is not echoed by the error message either.
    cfg.write_text(text.replace('run_dir = "runs/x"', f'run_dir = "runs/x"\nseed = "{_KEY}"'))
    assert main(["run", str(cfg), "--check"]) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert "seed" in err and _KEY not in out + err
    assert main(["--debug", "run", str(cfg), "--check"]) == EXIT_USAGE  # the traceback too
    out, err = capsys.readouterr()
    assert "Traceback" in err and "seed" in err and _KEY not in out + err


# --------------------------------------------------------------------------------------------
# item 11: a binary file given as the configuration is a ConfigError naming the file
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".toml", ".json"])
@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", b"run_dir: r\n\xff\xfe\xfa\n"])
def test_a_binary_configuration_file_is_a_config_error(tmp_path: Path, suffix: str, content: bytes,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from diverseevol.cli import EXIT_USAGE, main
    from diverseevol.errors import ConfigError

    path = tmp_path / f"c{suffix}"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "UTF-8" in str(info.value)
    assert main(["run", str(path), "--check"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "ConfigError" in err and str(path) in err and "UnicodeDecodeError" not in err


def test_a_deeply_nested_configuration_is_a_config_error(tmp_path: Path) -> None:
    from diverseevol.errors import ConfigError

    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match="deep.yaml"):
        load_config(path)
