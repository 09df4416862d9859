"""Issue 12 item 10, end to end: a missing local model path fails at once (config validation,
``run --check`` and HFTrainer), never going to the Hugging Face Hub."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from diverseevol.cli import EXIT_OK, EXIT_USAGE, main
from diverseevol.config import load_config
from diverseevol.errors import ConfigError

pytest.importorskip("torch")
pytest.importorskip("transformers")


def _config(tmp_path: Path, name: str) -> Path:
    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir(exist_ok=True)
    cfg = cfg_dir / "c.yaml"
    cfg.write_text(f"run_dir: runs/x\ndata: {{path: d.jsonl}}\nmodel: {{name_or_path: '{name}'}}\n")
    return cfg


@pytest.mark.parametrize("name", ["./no_such_dir", "../no_such_dir", "no_such_dir/", "a/b/c", "model.gguf",
                                  "~/no_such_dir_diverseevol"])
def test_a_missing_model_path_fails_config_validation_at_once(tmp_path: Path, name: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, name)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    text = str(info.value)
    assert str(cfg) in text and "model.name_or_path" in text and "does not exist" in text and "hub:" in text
    assert main(["run", str(cfg), "--check"]) == EXIT_USAGE
    assert "model.name_or_path" in capsys.readouterr().err
    assert time.perf_counter() - start < 5.0  # no network retries


def test_paths_are_relative_to_the_config_file_and_hub_ids_stay_ids(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cfg" / "models" / "base").mkdir(parents=True)
    assert load_config(_config(tmp_path, "./models/base")).model.name_or_path == str(tmp_path / "cfg" / "models" / "base")
    assert load_config(_config(tmp_path, "models/base")).model.name_or_path == str(tmp_path / "cfg" / "models" / "base")
    for hub in ("gpt2", "HuggingFaceTB/SmolLM2-135M", "hub:HuggingFaceTB/SmolLM2-135M"):
        assert load_config(_config(tmp_path, hub)).model.name_or_path == hub
    # `models/other` where models/ exists next to the config file: a local path, and missing.
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(_config(tmp_path, "models/other"))
    # A directory that exists only relative to the working directory is not the config's.
    work = tmp_path / "work"
    (work / "here_only").mkdir(parents=True)
    monkeypatch.chdir(work)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(_config(tmp_path, "./here_only"))


def test_hf_trainer_checks_its_base_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from diverseevol.data import InstructionRecord
    from diverseevol.errors import ModelNotFoundError
    from diverseevol.hf import HFTrainer

    import torch  # noqa: F401 - imported before the clock starts: the check itself is what is timed
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer  # noqa: F401

    monkeypatch.chdir(tmp_path)
    records = [InstructionRecord("say a", "", "a"), InstructionRecord("say b", "", "b")]
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match="no_such_dir"):
        HFTrainer("./no_such_dir", progress=False)(records, 0, tmp_path / "round0")
    with pytest.raises(ModelNotFoundError):
        HFTrainer(tmp_path / "missing").base_path()  # a Path is always a local path
    assert time.perf_counter() - start < 5.0
    assert not (tmp_path / "round0").exists() or not any((tmp_path / "round0").iterdir())
    assert HFTrainer("hub:gpt2").base_path() == "gpt2"
    (tmp_path / "m").mkdir()
    assert HFTrainer("./m").base_path() == "m"


def test_run_with_a_missing_model_fails_before_anything_is_written(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "./no_such_dir")
    (cfg.parent / "d.jsonl").write_text('{"instruction": "a", "input": "", "output": "b"}\n')
    assert main(["run", str(cfg)]) == EXIT_USAGE
    assert not (cfg.parent / "runs").exists()
    (cfg.parent / "no_such_dir").mkdir()
    assert main(["run", str(cfg), "--check"]) == EXIT_OK
