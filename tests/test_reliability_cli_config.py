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
