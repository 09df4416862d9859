"""A bake-off from a configuration file with the tiny offline LLaMA: held-out loss and ROUGE-L per model."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("yaml")

from diverseevol.bakeoff.from_config import run_bakeoff_config  # noqa: E402
from diverseevol.data import InstructionRecord  # noqa: E402
from diverseevol.hf import HFResponseLoss  # noqa: E402
from diverseevol.hf.tiny import save_tiny_model  # noqa: E402

from hf_fixtures import tiny_handle  # noqa: E402

torch.set_num_threads(2)
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

WORDS = ["add", "list", "poem", "why", "sum", "sky", "blue", "code", "tree", "sort"]


def write_data(path, n=36):
    rng = np.random.default_rng(0)
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({
                "instruction": " ".join(rng.choice(WORDS, size=rng.integers(1, 5))),
                "context": "",
                "response": f"{i} " + " ".join(rng.choice(WORDS, size=rng.integers(1, 6))),
                "category": ["open_qa", "brainstorming"][i % 2],
            }) + "\n")


def test_response_loss_counts_only_response_tokens_and_matches_a_manual_sum():
    handle = tiny_handle(seed=1)
    records = [InstructionRecord("say hi", "", "hi there"), InstructionRecord("add", "1 2", "3")]
    nll, count = HFResponseLoss(max_length=128, batch_size=1)(handle, records)
    from diverseevol.hf import tokenize_records

    tok = tokenize_records(handle.tokenizer, records, max_length=128)
    for i in range(2):
        ids = torch.tensor([tok.input_ids[i]])
        with torch.no_grad():
            logp = torch.log_softmax(handle.model(input_ids=ids).logits[0, :-1].float(), -1)
        start = int(tok.response_start[i])
        targets = ids[0, start:]
        manual = -logp[start - 1:].gather(-1, targets[:, None]).sum().item()
        assert count[i] == len(tok.input_ids[i]) - start
        assert nll[i] == pytest.approx(manual, rel=1e-5)
    # batching (right padding) does not change the figures
    nll2, count2 = HFResponseLoss(max_length=128, batch_size=2)(handle, records)
    np.testing.assert_allclose(nll2, nll, rtol=1e-5)
    np.testing.assert_array_equal(count2, count)


def test_bakeoff_from_a_config_file_with_the_tiny_model(tmp_path):
    base = save_tiny_model(tmp_path / "base", seed=0)
    write_data(tmp_path / "data.jsonl")
    (tmp_path / "bakeoff.yaml").write_text(f"""
data: {{path: data.jsonl}}
model:
  name_or_path: {base}
  trainer: {{lora: true, epochs: 1, batch_size: 8, per_device_batch_size: 8, lr: 0.001, progress: false, max_length: 320}}
  embedder: {{batch_size: 16, progress: false}}
budget: {{init_size: 4, k: 4, rounds: 1}}
bakeoff:
  samplers: [random, kcenter]
  baseline: random
  heldout: {{label_field: category, per_label: 2}}
  generation: {{max_new_tokens: 8, batch_size: 4}}
""")
    result = run_bakeoff_config(tmp_path / "bakeoff.yaml", tmp_path / "out", seeds=[0], plots=False, progress=False)
    assert len(result.rows) == 2 * 2  # 2 recipes x pools of 4 and 8
    for row in result.rows:
        assert np.isfinite(row["heldout_loss"]) and 0.0 <= row["rouge_l"] <= 1.0
        assert set(row["per_label"]) == {"open_qa", "brainstorming"}
    assert result.round0_computed == {0: {"train": 1, "embed": 1, "judge": 1}}
    assert len(result.heldout_idx) == 4
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["settings"]["samplers"] == ["random", "kcenter"]
