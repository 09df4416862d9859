"""The chunked response-token training loss against transformers' own ``labels=`` loss, its gradient and its bound on logits."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hf_fixtures import tiny_handle, word_records

from diverseevol.hf._records import CausalLMCollator, TrainingDataset, tokenize_records
from diverseevol.hf._response_loss import ResponseLoss, response_loss_applies, response_nll_sum, response_targets

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def handle():
    return tiny_handle(seed=3)


@pytest.fixture(scope="module")
def batch(handle):
    words = ["alpha", "beta", "gamma", "sum", "list", "write", "poem", "why"]
    records = word_records(5, seed=4, words=words, instruction_words=(1, 6), input_words=(0, 4),
                           response_words=(1, 10))
    tok = tokenize_records(handle.tokenizer, records, max_length=512)
    data = TrainingDataset(tok)
    return CausalLMCollator(handle.tokenizer.pad_token_id)([data[i] for i in range(len(data))])


def _vocab(model):
    return int(model.get_output_embeddings().weight.shape[0])


def _chunked(model, batch, num_items=None, rows_per_chunk=3):
    loss = ResponseLoss(model, max_logit_elements=rows_per_chunk * _vocab(model))
    try:
        inputs = loss.collator(lambda f: dict(batch))([])
        labels = inputs.pop("labels")
        out = model(**inputs)
        assert out.logits.numel() == 0  # the model's own head computed nothing
        return loss(out, labels, num_items_in_batch=num_items)
    finally:
        loss.remove()


def test_response_targets_by_hand():
    labels = torch.tensor([[-100, -100, 7, 8, -100], [-100, 5, -100, 6, 9]])
    predicts, targets = response_targets(labels)
    assert predicts.tolist() == [[False, True, True, False, False], [True, False, True, True, False]]
    assert targets.tolist() == [7, 8, 5, 6, 9]


def test_mean_loss_equals_the_models_own_loss(handle, batch):
    model = handle.model
    with torch.no_grad():
        want = model(**batch).loss  # transformers' mean cross-entropy over the response tokens
        got = _chunked(model, batch)
    assert float(got) == pytest.approx(float(want), rel=1e-6)


def test_summed_loss_over_num_items_equals_the_models_own(handle, batch):
    model = handle.model
    n_items = torch.tensor(37)  # the Trainer's count over an accumulated batch
    with torch.no_grad():
        want = model(**batch, num_items_in_batch=n_items).loss
        got = _chunked(model, batch, num_items=n_items)
    assert float(got) == pytest.approx(float(want), rel=1e-6)


def test_gradients_equal_the_models_own(handle, batch):
    model = handle.model
    model.train()
    try:
        model.zero_grad()
        model(**batch).loss.backward()
        want = {k: p.grad.clone() for k, p in model.named_parameters()}
        model.zero_grad()
        _chunked(model, batch, rows_per_chunk=4).backward()
        for k, p in model.named_parameters():  # the head (tied to the embeddings) included
            torch.testing.assert_close(p.grad, want[k], rtol=1e-4, atol=1e-6, msg=k)
    finally:
        model.zero_grad()
        model.eval()


def test_no_more_than_one_chunk_of_logits_at_once(handle, batch):
    """The head only ever sees response positions, at most ``rows_per_chunk`` rows per call, forward and backward."""
    model = handle.model
    head = model.get_output_embeddings()
    rows = []
    hook = head.register_forward_hook(lambda m, a, out: rows.append(out.reshape(-1, out.shape[-1]).shape[0]))
    model.train()
    try:
        loss = _chunked(model, batch, rows_per_chunk=3)
        loss.backward()
    finally:
        hook.remove()
        model.zero_grad()
        model.eval()
    n_resp = int((batch["labels"][:, 1:] != -100).sum())
    calls = [r for r in rows if r > 0]  # the model's own head call keeps no position
    assert max(calls) <= 3
    assert sum(calls) == 2 * n_resp  # each chunk once forward, once recomputed backward
    assert n_resp < batch["input_ids"].numel() / 2


def test_no_response_token_gives_the_models_nan_mean_and_a_zero_sum(handle, batch):
    model = handle.model
    empty = {**batch, "labels": torch.full_like(batch["labels"], -100)}
    with torch.no_grad():
        assert np.isnan(float(model(**empty).loss)) and np.isnan(float(_chunked(model, empty)))
    model.train()
    try:
        got = _chunked(model, empty, num_items=torch.tensor(4))
        got.backward()  # still part of the graph: a backward pass runs
        assert float(got.detach()) == 0.0
    finally:
        model.zero_grad()
        model.eval()


def test_sum_of_chunks_is_the_sum_over_positions(handle):
    gen = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(6, 11, bias=False)
    hidden = torch.randn(2, 5, 6, generator=gen)
    predicts = torch.tensor([[True, False, True, True, False], [False, True, True, False, False]])
    targets = torch.randint(0, 11, (5,), generator=gen)
    got = response_nll_sum(head, hidden, predicts, targets, max_logit_elements=2 * 11)
    logp = torch.log_softmax(head(hidden[predicts]), -1)
    want = -logp[torch.arange(5), targets].sum()
    assert float(got) == pytest.approx(float(want), rel=1e-6)


def test_applies_to_llama_and_not_with_label_smoothing_or_scaled_logits(handle):
    from transformers import LlamaForCausalLM

    assert response_loss_applies(handle.model)

    class Args:
        label_smoothing_factor = 0.1

    assert not response_loss_applies(handle.model, Args())

    class ScaledLogits(LlamaForCausalLM):  # logits that are not the head on the last hidden state
        def forward(self, *args, logits_to_keep=0, **kwargs):
            out = super().forward(*args, logits_to_keep=logits_to_keep, **kwargs)
            out.logits = out.logits * 2.0
            return out

    scaled = ScaledLogits(handle.model.config).train()
    assert not response_loss_applies(scaled)
    assert scaled.training  # the check leaves the mode as it found it


def test_heldout_loss_equals_the_full_logits_computation(handle):
    """HFResponseLoss (chunked scorer path) against the old full-vocabulary computation, record by record."""
    from diverseevol.data import InstructionRecord
    from diverseevol.hf import HFResponseLoss

    words = ["alpha", "beta", "gamma", "sum", "list", "write", "poem", "why"]
    records = word_records(7, seed=5, words=words, instruction_words=(1, 6), input_words=(0, 4),
                           response_words=(1, 12))
    records.append(InstructionRecord("x" * 300, "", "cut away"))  # the whole response is cut at 300 tokens
    tok = tokenize_records(handle.tokenizer, records, max_length=300, warn_truncated=False)
    nll, count = HFResponseLoss(max_length=300, batch_size=2)(handle, records)
    assert nll.dtype == np.float64 and count.dtype == np.int64
    for i, ids in enumerate(tok.input_ids):
        x = torch.tensor([ids])
        with torch.no_grad():
            logp = torch.log_softmax(handle.model(input_ids=x).logits[0, :-1].double(), -1)
        mask = tok.mask(i)[1:]
        per_token = -logp.gather(-1, x[0, 1:, None])[:, 0].numpy()
        assert count[i] == int(mask.sum())
        assert nll[i] == pytest.approx(float(per_token[mask].sum()), rel=1e-5, abs=1e-9)
    assert count[-1] == 0 and nll[-1] == 0.0 and count[:-1].min() > 0
