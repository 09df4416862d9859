"""HFScorer's per-record ``loss`` and ``record_lengths``, against transformers' own loss and the tokenizer."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hf_fixtures import tiny_handle, word_records

from diverseevol.data import InstructionRecord, format_prompt
from diverseevol.hf import HFEmbedder, HFScorer

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def handle():
    return tiny_handle(seed=1)


@pytest.fixture(scope="module")
def records():
    words = ["alpha", "beta", "gamma", "sum", "list", "write", "poem", "why"]
    return word_records(9, seed=2, words=words, instruction_words=(1, 6), input_words=(0, 4), response_words=(1, 10))


def _ids(tok, rec):
    prompt = tok(format_prompt(rec), add_special_tokens=True)["input_ids"]
    answer = tok(rec.output, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    return prompt, answer


def test_loss_is_the_models_own_response_loss(handle, records):
    scores = HFScorer(batch_size=4, progress=False)(handle, records)
    assert set(scores) == {"confidence", "margin", "entropy", "loss"}
    for i, rec in enumerate(records):
        prompt, answer = _ids(handle.tokenizer, rec)
        ids = torch.tensor([prompt + answer])
        labels = torch.tensor([[-100] * len(prompt) + answer])
        with torch.no_grad():
            want = handle.model(input_ids=ids, labels=labels).loss.item()  # transformers' mean NLL of the response
        assert scores["loss"][i] == pytest.approx(want, rel=1e-5)


def test_the_shared_pass_gives_the_same_loss(handle, records):
    _, shared = HFEmbedder(batch_size=3, progress=False).embed_and_score(handle, records)
    alone = HFScorer(batch_size=5, progress=False)(handle, records)
    np.testing.assert_allclose(shared["loss"], alone["loss"], rtol=1e-5)


def test_a_cut_response_has_no_loss(handle):
    sc = HFScorer(max_length=150, progress=False)(handle, [InstructionRecord("x" * 200, "", "short"),
                                                          InstructionRecord("a", "", "b")])
    assert np.isnan(sc["loss"][0]) and np.isfinite(sc["loss"][1])


def test_record_lengths_count_the_tokens_of_the_whole_rendered_record(handle, records):
    scorer = HFScorer(max_length=16, progress=False)  # the lengths are not cut to max_length
    got = scorer.record_lengths(handle, records)
    want = [sum(len(part) for part in _ids(handle.tokenizer, rec)) for rec in records]
    assert got.dtype == np.float64 and got.tolist() == want and max(want) > 16
    got[0] = -1  # a copy: the kept result is not changed
    assert scorer.record_lengths(handle, records).tolist() == want
    with_tok = HFScorer(tokenizer=handle.tokenizer, progress=False)
    assert with_tok.record_lengths(handle.model, records).tolist() == want
