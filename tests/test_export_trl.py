"""Interop: a subset exported by `diverseevol select` (OpenAI messages with an extra column) is read by datasets
and trained on by TRL's SFTTrainer as is (a tiny model built from a config, a few steps, CPU)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("torch")
trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from diverseevol.cli import EXIT_OK, main  # noqa: E402
from diverseevol.hf.tiny import build_char_tokenizer, build_tiny_llama  # noqa: E402

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def test_sfttrainer_trains_on_an_exported_messages_subset(tmp_path, monkeypatch):
    monkeypatch.setenv("DIVERSEEVOL_PROGRESS", "0")
    rows = [{"messages": [{"role": "system", "content": "Answer with a number."},
                          {"role": "user", "content": f"What is {i} + {i}?"},
                          {"role": "assistant", "content": str(2 * i)}], "id": i} for i in range(30)]
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    emb = tmp_path / "emb.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(30, 6)).astype(np.float32))
    out, idx = tmp_path / "subset.jsonl", tmp_path / "idx.txt"
    assert main(["select", str(data), "--embeddings", str(emb), "--k", "8", "--out", str(out),
                 "--indices-out", str(idx)]) == EXIT_OK
    picks = [int(x) for x in idx.read_text().split()]

    ds = datasets.load_dataset("json", data_files=str(out), split="train")
    assert ds.to_list() == [rows[i] for i in picks]
    tok = build_char_tokenizer()
    tok.chat_template = CHATML
    model = build_tiny_llama(tok, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32)
    config = trl.SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=3, per_device_train_batch_size=4,
                           report_to="none", logging_steps=1, save_strategy="no", use_cpu=True, max_length=256,
                           disable_tqdm=True)
    trainer = trl.SFTTrainer(model=model, args=config, train_dataset=ds, processing_class=tok)
    assert len(trainer.train_dataset) == len(picks)
    result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses) and math.isfinite(result.training_loss)
