"""The Hugging Face trainer's bars (tqdm, metric printing, shard writing) obey DIVERSEEVOL_PROGRESS."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("torch")
pytest.importorskip("transformers")

from diverseevol.hf import HFTrainer
from diverseevol.hf.tiny import save_tiny_model


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "base", seed=0)


@pytest.mark.parametrize(("env", "requested", "shown"), [
    ("0", True, False),  # the switch wins over HFTrainer(progress=True), the default
    ("1", True, True),
    ("1", False, False),
])
def test_trainer_bars_follow_the_switch(base, tmp_path, monkeypatch, env, requested, shown):
    monkeypatch.setenv("DIVERSEEVOL_PROGRESS", env)
    trainer = HFTrainer(base, lora=False, epochs=1, batch_size=4, per_device_batch_size=4, progress=requested)
    args = trainer._training_arguments(tmp_path, 8, 0)
    assert args.disable_tqdm is (not shown)
