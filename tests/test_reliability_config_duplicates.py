"""Issue 22 item 7: a duplicate key in a configuration file is refused, naming the key and both lines
(YAML keeps the last value silently; TOML refuses duplicates itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from diverseevol.config import load_config
from diverseevol.errors import ConfigError

pytest.importorskip("yaml")

BASE = "run_dir: runs/x\ndata: {path: d.jsonl, embeddings: e.npy}\n"


@pytest.mark.parametrize(
    "text, key, line, first",
    [
        (BASE + "seed: 1\nseed: 2\n", "seed", 4, 3),
        ("run_dir: runs/x\ndata:\n  path: d.jsonl\n  embeddings: e.npy\n  path: other.jsonl\n", "path", 5, 3),
        (BASE + "budget: {k: 5, rounds: 2, k: 7}\n", "k", 3, 3),
        (BASE + "sampler:\n  name: kcenter\n  params: {metric: cosine}\n  params: {metric: euclidean}\n",
         "params", 6, 5),
        ('{"run_dir": "a", "data": {"path": "d.jsonl", "embeddings": "e.npy"}, "run_dir": "b"}\n', "run_dir", 1, 1),
    ],
    ids=["top level", "in a section", "flow mapping", "nested mapping", "JSON syntax"],
)
def test_a_duplicate_yaml_key_is_refused_with_its_lines(tmp_path: Path, text, key, line, first):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    message = str(info.value)
    assert str(cfg) in message and f"{key!r}" in message
    assert f"line {line}" in message and f"line {first}" in message and "twice" in message


def test_merge_keys_and_equal_keys_in_different_mappings_are_fine(tmp_path: Path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "run_dir: runs/x\ndata: {path: d.jsonl, embeddings: e.npy}\n"
        "budget: {k: 5, rounds: 2, init_size: 4}\nsampler: {name: kcenter, params: {k: 1}}\n"
    )
    assert load_config(cfg).budget.k == 5
    anchors = tmp_path / "a.yaml"
    anchors.write_text(
        "run_dir: runs/x\ndata: {path: d.jsonl, embeddings: e.npy}\n"
        "budget:\n  <<: &b {k: 5, rounds: 2}\n  k: 7\n"  # an explicit key overrides a merged one: allowed
    )
    assert load_config(anchors).budget.k == 7


def test_a_duplicate_toml_key_is_refused_too(tmp_path: Path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('run_dir = "a"\nseed = 1\nseed = 2\n[data]\npath = "d.jsonl"\n')
    with pytest.raises(ConfigError, match="seed|line 3"):
        load_config(cfg)
