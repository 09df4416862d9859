"""HFTrainer(report_to="tensorboard"): the training losses land in an event file per round."""

from __future__ import annotations

import importlib.util
import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
from tracking_readers import read_scalars, tensorboard_reader_available  # noqa: E402

if not tensorboard_reader_available():
    pytest.skip("needs tensorboard or tensorboardX", allow_module_level=True)

from diverseevol.data import InstructionRecord  # noqa: E402
from diverseevol.hf import HFTrainer  # noqa: E402
from diverseevol.hf.tiny import save_tiny_model  # noqa: E402
from diverseevol.hf.trainer import MARKER_NAME  # noqa: E402

RECORDS = [InstructionRecord(f"Repeat {i % 4}", "", f"{i % 4} {i % 4} ok") for i in range(8)]


def _run_name_logged(log_dir) -> str:
    """The ``run_name`` of the TrainingArguments the trainer wrote as its ``args`` text summary."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    acc.Reload()
    (event,) = acc.Tensors("args/text_summary")
    return json.loads(event.tensor_proto.string_val[0].decode())["run_name"]


def test_hf_trainer_writes_its_losses_to_tensorboard(tmp_path, monkeypatch):
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    base = save_tiny_model(tmp_path / "base", seed=0)
    trainer = HFTrainer(base, lora=False, epochs=1, batch_size=4, per_device_batch_size=4, lr=1e-3,
                        logging_steps=1, progress=False, report_to="tensorboard", run_name="exp")
    out = tmp_path / "run" / "round_000" / "model"
    trainer(RECORDS, 0, out)
    meta = json.loads((out / MARKER_NAME).read_text())
    assert meta["global_steps"] == 2 and len(meta["logged_losses"]) == 2
    log_dirs = {p.parent for p in (out / "tensorboard").rglob("events.out.tfevents.*")}
    assert len(log_dirs) == 1 and not (out / "_trainer").exists()
    (log_dir,) = log_dirs
    losses = read_scalars(log_dir)["train/loss"]
    assert [step for step, _ in losses] == [1, 2]
    assert [v for _, v in losses] == pytest.approx(meta["logged_losses"], rel=1e-5)
    if importlib.util.find_spec("tensorboard") is not None:  # text summaries read with TensorBoard's reader
        assert _run_name_logged(log_dir) == "exp-round_000"
    # the per-round run name does not enter the model's settings: the round is not retrained
    assert HFTrainer(base, lora=False, epochs=1, batch_size=4, per_device_batch_size=4, lr=1e-3,
                     logging_steps=1, progress=False).is_complete(out, RECORDS)
