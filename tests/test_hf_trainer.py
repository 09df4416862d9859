"""HFTrainer: LoRA / full fine-tuning of the tiny model, saving, completion marker, reloading."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from diverseevol.data import InstructionRecord
from diverseevol.errors import ValidationError
from diverseevol.hf import HFTrainer, ModelHandle
from diverseevol.hf._records import tokenize_records
from diverseevol.hf.tiny import save_tiny_model
from diverseevol.hf.trainer import MARKER_NAME

torch.set_num_threads(2)
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

RECORDS = [InstructionRecord(f"Repeat {i % 5}", "", f"{i % 5} {i % 5} ok") for i in range(20)]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "base", seed=0)


def _response_nll(handle: ModelHandle, records) -> float:
    """Mean negative log-likelihood of the response tokens (an independent re-computation)."""
    tok = tokenize_records(handle.tokenizer, records, max_length=512)
    total, count = 0.0, 0
    with torch.no_grad():
        for ids, start in zip(tok.input_ids, tok.response_start):
            x = torch.tensor([ids])
            logp = torch.log_softmax(handle.model(x).logits[0].double(), -1)
            for p in range(int(start), len(ids)):
                total -= logp[p - 1, ids[p]].item()
                count += 1
    return total / count


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_full_finetune_learns_and_is_saved(base, tmp_path):
    from diverseevol.hf import load_model

    before = load_model(base)
    tr = HFTrainer(base, lora=False, epochs=4, batch_size=8, per_device_batch_size=4, lr=5e-3, progress=False)
    out = tmp_path / "r0"
    h = tr(RECORDS, 0, out)
    assert isinstance(h, ModelHandle) and h.path == out and h.round == 0
    assert (out / "model.safetensors").exists() and (out / MARKER_NAME).exists()
    meta = json.loads((out / MARKER_NAME).read_text())
    # 20 records, effective batch 8 -> 3 optimizer steps per epoch, 4 epochs
    assert meta["global_steps"] == 12 and meta["n_records"] == 20 and meta["complete"]
    assert not (out / "_trainer").exists()
    assert _response_nll(h, RECORDS) < _response_nll(before, RECORDS) - 0.5
    reloaded = tr.load(out, 0)
    x = torch.tensor([[1, 40, 50, 60, 70]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded.model(x).logits, h.model(x).logits)


def test_lora_trains_adapter_only_and_base_stays(base, tmp_path):
    from diverseevol.hf import load_model

    ref = _params(load_model(base).model)
    tr = HFTrainer(
        base,
        lora=True,
        lora_r=4,
        lora_alpha=8,
        epochs=3,
        batch_size=8,
        per_device_batch_size=8,
        lr=1e-2,
        progress=False,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = tr(RECORDS, 1, tmp_path / "r1")
    # peft's read of transformers' deprecated attribute is not passed on to the user
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]
    assert (tmp_path / "r1" / "adapter_model.safetensors").exists()
    assert not (tmp_path / "r1" / "model.safetensors").exists()
    after = _params(h.model)  # merged: plain LlamaForCausalLM keys
    assert set(after) == set(ref)
    changed = [k for k in ref if not torch.equal(ref[k], after[k])]
    assert changed and all(("q_proj" in k or "v_proj" in k) for k in changed)  # peft's LLaMA default targets
    # the base directory is untouched: a fresh load equals the original weights
    fresh = _params(load_model(base).model)
    assert all(torch.equal(ref[k], fresh[k]) for k in ref)
    reloaded = tr.load(tmp_path / "r1", 1)
    x = torch.tensor([[1, 40, 50, 60, 70]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded.model(x).logits, h.model(x).logits, atol=1e-5, rtol=1e-5)


def test_finished_round_is_not_retrained(base, tmp_path, monkeypatch):
    tr = HFTrainer(base, lora=True, epochs=1, batch_size=8, per_device_batch_size=8, progress=False)
    out = tmp_path / "r0"
    first = tr(RECORDS, 0, out)

    def fail(*a, **k):
        raise AssertionError("retrained a finished round")

    monkeypatch.setattr(HFTrainer, "_train", fail)
    again = tr(RECORDS, 0, out)
    assert again.info["records_sha256"] == first.info["records_sha256"]
    # other records or other settings -> the marker does not match -> training runs
    assert not tr.is_complete(out, RECORDS[:10])
    other = HFTrainer(base, lora=True, epochs=2, batch_size=8, per_device_batch_size=8, progress=False)
    assert not other.is_complete(out)
    with pytest.raises(AssertionError, match="retrained"):
        other(RECORDS, 0, out)


def test_seeded_training_is_reproducible(base, tmp_path):
    kw = {
        "lora": True,
        "epochs": 1,
        "batch_size": 4,
        "per_device_batch_size": 2,
        "lr": 1e-2,
        "seed": 3,
        "progress": False,
    }
    a = HFTrainer(base, **kw)(RECORDS[:8], 0, tmp_path / "a")
    b = HFTrainer(base, **kw)(RECORDS[:8], 0, tmp_path / "b")
    pa, pb = _params(a.model), _params(b.model)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


def test_validation(base, tmp_path):
    with pytest.raises(ValidationError, match="base_model"):
        HFTrainer()
    with pytest.raises(ValidationError, match="precision"):
        HFTrainer(base, precision="fp8")
    with pytest.raises(ValidationError, match="empty"):
        HFTrainer(base, progress=False)([], 0, tmp_path)
    with pytest.raises(FileNotFoundError, match="no finished model"):
        HFTrainer(base).load(tmp_path / "nothing", 0)
    assert np.isclose(HFTrainer(base).get_params()["lr"], 2e-5)
