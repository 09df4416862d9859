"""Tokenisation with the Alpaca template: labels -100 on the prompt, eos after the response."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from diverseevol.data import InstructionRecord, format_prompt
from diverseevol.errors import ValidationError
from diverseevol.hf._records import IGNORE_INDEX, CausalLMCollator, tokenize_records
from diverseevol.hf.tiny import build_char_tokenizer


@pytest.fixture(scope="module")
def tok():
    return build_char_tokenizer()


def test_prompt_masked_response_and_eos_labelled(tok):
    recs = [InstructionRecord("Add", "2 3", "5"), InstructionRecord("Greet", "", "Hello there")]
    t = tokenize_records(tok, recs, max_length=512)
    for i, r in enumerate(recs):
        prompt = format_prompt(r)
        ids = t.input_ids[i]
        # char tokenizer: bos + one id per prompt char, then one per response char, then eos
        assert int(t.response_start[i]) == 1 + len(prompt)
        assert len(ids) == 1 + len(prompt) + len(r.output) + 1
        assert tok.decode(ids[: t.response_start[i]], skip_special_tokens=True) == prompt
        assert tok.decode(ids[t.response_start[i] : -1]) == r.output
        assert ids[-1] == tok.eos_token_id
        labels = t.labels(i)
        assert labels[: t.response_start[i]] == [IGNORE_INDEX] * int(t.response_start[i])
        assert labels[t.response_start[i] :] == ids[t.response_start[i] :]


def test_truncation(tok):
    rec = InstructionRecord("Say", "", "x" * 100)
    start = 1 + len(format_prompt(rec))
    t = tokenize_records(tok, [rec], max_length=start + 10)
    assert len(t.input_ids[0]) == start + 10 and t.input_ids[0][-1] != tok.eos_token_id
    t2 = tokenize_records(tok, [rec], max_length=20)  # the whole response is cut away
    assert len(t2.input_ids[0]) == 20 and int(t2.response_start[0]) == 20
    assert t2.labels(0) == [IGNORE_INDEX] * 20


def test_rejects_non_records(tok):
    with pytest.raises(ValidationError, match="InstructionRecord"):
        tokenize_records(tok, [{"instruction": "x"}])


def test_collator_pads_right():
    coll = CausalLMCollator(pad_token_id=0)
    batch = coll([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
