"""The offline tiny model and char tokenizer (diverseevol.hf.tiny) and the hf import gate."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import AutoModelForCausalLM, AutoTokenizer

from diverseevol.data import format_prompt
from diverseevol.hf.tiny import (
    BASE_ALPHABET,
    SPECIAL_TOKENS,
    build_char_tokenizer,
    build_tiny_llama,
    save_tiny_model,
)

torch.set_num_threads(2)


def test_char_tokenizer_roundtrip_and_special_ids():
    tok = build_char_tokenizer()
    assert [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2, 3]
    assert len(tok) == len(SPECIAL_TOKENS) + len(BASE_ALPHABET)
    text = format_prompt("Add 2 and 3.", "x = {2, 3}\ttab") + "5\n~!"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id
    assert len(ids) == len(text) + 1  # one id per character
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok(text, add_special_tokens=False)["input_ids"] == ids[1:]


def test_unknown_and_extra_chars():
    tok = build_char_tokenizer()
    assert tok("é", add_special_tokens=False)["input_ids"] == [tok.unk_token_id]
    tok2 = build_char_tokenizer(extra_chars="éa")  # "a" is already in the base alphabet
    assert len(tok2) == len(tok) + 1
    ids = tok2("é", add_special_tokens=False)["input_ids"]
    assert ids != [tok2.unk_token_id] and tok2.decode(ids) == "é"
    with pytest.raises(ValueError, match="single characters"):
        build_char_tokenizer(extra_chars=["ab"])


def test_save_and_reload(tmp_path):
    tok = build_char_tokenizer()
    model = build_tiny_llama(tok, seed=3)
    path = save_tiny_model(tmp_path / "m", tokenizer=tok, model=model)
    assert (path / "model.safetensors").exists()
    tok2 = AutoTokenizer.from_pretrained(path)
    model2 = AutoModelForCausalLM.from_pretrained(path)
    text = "### Response:\nhello"
    assert tok2(text)["input_ids"] == tok(text)["input_ids"]
    assert tok2.pad_token_id == 0 and tok2.eos_token_id == 2
    x = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, model2(x).logits)


def test_tiny_llama_shape_seed_and_global_rng():
    tok = build_char_tokenizer()
    state = torch.random.get_rng_state()
    a = build_tiny_llama(tok, seed=1, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    assert torch.equal(state, torch.random.get_rng_state())
    b = build_tiny_llama(tok, seed=1, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    c = build_tiny_llama(tok, seed=2, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    assert a.config.vocab_size == len(tok) and a.config.num_hidden_layers == 1
    assert a.config.pad_token_id == tok.pad_token_id
    wa, wb, wc = (m.get_input_embeddings().weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    with pytest.raises(ValueError, match="divisible"):
        build_tiny_llama(tok, hidden_size=30, num_heads=4)


def test_missing_torch_names_the_hf_extra():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "try:\n"
        "    import diverseevol.hf\n"
        "except ImportError as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "OptionalDependencyError" in out.stdout
    assert "diverseevol[hf]" in out.stdout
