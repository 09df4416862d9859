"""Issue 12 item 13 (CLI part): ``--no-progress`` silences every bar of a command (training, model
writing, embedding, generation), even when ``DIVERSEEVOL_PROGRESS=1`` forces bars on, and
``main(argv)`` leaves the caller's environment as it found it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from diverseevol.cli import EXIT_OK, main

_BAR = re.compile(r"\d+%\|| \d+/\d+ \[|it/s\]|s/it\]|Writing model shards|Loading weights")


@pytest.mark.parametrize("before", [None, "1", "0"])
def test_main_restores_the_progress_variable(monkeypatch: pytest.MonkeyPatch, before: str | None,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    if before is None:
        monkeypatch.delenv("DIVERSEEVOL_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("DIVERSEEVOL_PROGRESS", before)
    assert main(["samplers", "--no-progress"]) == EXIT_OK
    assert os.environ.get("DIVERSEEVOL_PROGRESS") == before
    assert main(["--no-progress", "samplers", "--json"]) == EXIT_OK
    assert os.environ.get("DIVERSEEVOL_PROGRESS") == before


def test_no_progress_hides_every_bar_of_a_model_run(tmp_path: Path) -> None:
    """A run that trains (full fine-tuning: model shards written), embeds, scores and generates."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("tqdm")
    from diverseevol.hf.tiny import save_tiny_model

    save_tiny_model(tmp_path / "model", hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                    max_position_embeddings=256)
    with (tmp_path / "d.jsonl").open("w") as fh:
        for i in range(12):
            fh.write(json.dumps({"instruction": f"say {i}", "input": "", "output": str(i)}) + "\n")
    with (tmp_path / "t.jsonl").open("w") as fh:
        for i in range(3):
            fh.write(json.dumps({"instruction": f"say {i}", "input": "", "output": str(i)}) + "\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'run_dir = "run"\n[data]\npath = "d.jsonl"\n'
        '[model]\nname_or_path = "model"\n'
        "trainer = { lora = false, epochs = 1, batch_size = 4, per_device_batch_size = 4, logging_steps = 1 }\n"
        '[sampler]\nname = "margin"\n[budget]\ninit_size = 4\nk = 2\nrounds = 1\n'
        '[judge]\ntype = "exact_match"\npath = "t.jsonl"\ngeneration = { max_new_tokens = 2 }\n'
    )
    env = {**os.environ, "DIVERSEEVOL_PROGRESS": "1", "OMP_NUM_THREADS": "2", "PYTHONWARNINGS": "ignore"}

    def run(*flags: str, run_dir: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "diverseevol", "run", str(cfg), "--run-dir",
                               str(tmp_path / run_dir), *flags], capture_output=True, text=True, env=env,
                              timeout=600, check=False)

    forced = run(run_dir="forced")  # the control: forced bars are visible to this check
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert _BAR.search(forced.stderr), forced.stderr[-2000:]
    quiet = run("--no-progress", run_dir="quiet")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert not _BAR.search(quiet.stderr), quiet.stderr[-3000:]
    assert "'loss'" not in quiet.stdout and "train_runtime" not in quiet.stdout  # no metric dicts either
