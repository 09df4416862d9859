"""HFEmbedder / HFScorer against independent oracles computed from the full model output."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hf_fixtures import tiny_handle, word_records

from diverseevol.data import InstructionRecord
from diverseevol.errors import ValidationError
from diverseevol.hf import HFEmbedder, HFScorer
from diverseevol.hf import _token_scores as token_scores_mod
from diverseevol.hf._records import tokenize_records
from diverseevol.hf.tiny import build_tiny_llama

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def handle():
    return tiny_handle(seed=0)


@pytest.fixture(scope="module")
def records():
    words = ["alpha", "beta", "gamma", "delta", "sum", "list", "write", "poem", "why", "how"]
    return word_records(13, seed=0, words=words, instruction_words=(1, 8), input_words=(0, 5), response_words=(1, 12))


def _oracle(handle, rec, max_length=512):
    """Unpadded single-record forward through the full model: mean of hidden_states[-1]; and
    the response-token scores from a full softmax + full sort."""
    tok = tokenize_records(handle.tokenizer, [rec], max_length=max_length)
    ids = torch.tensor([tok.input_ids[0]])
    start = int(tok.response_start[0])
    with torch.no_grad():
        out = handle.model(input_ids=ids, output_hidden_states=True)
    emb = out.hidden_states[-1][0].double().mean(0).numpy()
    probs = torch.softmax(out.logits[0].double(), dim=-1)
    pred = probs[start - 1 : ids.shape[1] - 1]  # position p predicts token p + 1
    srt = torch.sort(pred, dim=-1, descending=True).values
    conf = srt[:, 0].mean().item()
    margin = (srt[:, 0] - srt[:, 1]).mean().item()
    ent = (-(pred * torch.log(pred)).sum(-1)).mean().item()
    return emb, {"confidence": conf, "margin": margin, "entropy": ent}


def test_embeddings_and_scores_match_full_model_oracle(handle, records):
    emb, scores = HFEmbedder(batch_size=4, progress=False).embed_and_score(handle, records)
    assert emb.dtype == np.float32 and emb.shape == (len(records), 64)
    for name in ("confidence", "margin", "entropy"):
        assert scores[name].shape == (len(records),)
    for i, rec in enumerate(records):
        e, s = _oracle(handle, rec)
        np.testing.assert_allclose(emb[i], e, atol=1e-5, rtol=1e-5)
        for name, v in s.items():
            assert scores[name][i] == pytest.approx(v, rel=1e-5, abs=1e-7), name


def test_padding_does_not_change_a_row(handle, records):
    batched = HFEmbedder(batch_size=13, progress=False)(handle, records)
    for i in (0, 5, 12):
        alone = HFEmbedder(batch_size=1, progress=False)(handle, [records[i]])
        np.testing.assert_allclose(batched[i], alone[0], atol=1e-4)


def test_rows_follow_record_order(handle, records):
    perm = np.random.default_rng(1).permutation(len(records))
    a = HFEmbedder(batch_size=3, progress=False)(handle, records)
    b = HFEmbedder(batch_size=3, progress=False)(handle, [records[i] for i in perm])
    np.testing.assert_allclose(b, a[perm], atol=1e-5)


def test_memmap_output(handle, records, tmp_path):
    path = tmp_path / "emb.npy"
    out = HFEmbedder(batch_size=5, memmap_path=path, progress=False)(handle, records)
    assert isinstance(out, np.memmap)
    ref = HFEmbedder(batch_size=5, progress=False)(handle, records)
    np.testing.assert_array_equal(np.load(path), ref)


def test_scorer_matches_embedder_pass_and_reuses_cache(handle, records, monkeypatch):
    emb = HFEmbedder(batch_size=4, scores=True, progress=False)
    e1 = emb(handle, records)
    plain = HFScorer(batch_size=5, progress=False)(handle, records)
    for k in plain:
        np.testing.assert_allclose(plain[k], emb.last_scores[k], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(e1, HFEmbedder(progress=False)(handle, records), atol=1e-6)

    def boom(*a, **k):
        raise AssertionError("a second forward pass was run")

    monkeypatch.setattr("diverseevol.hf.scoring.forward_pass", boom)
    cached = HFScorer(embedder=emb, progress=False)(handle, records)
    assert cached is emb.last_scores
    with pytest.raises(AssertionError, match="second forward pass"):
        HFScorer(embedder=emb, progress=False)(handle, records[:-1])  # other records: no reuse


def test_truncated_response_scores_nan(handle):
    rec = InstructionRecord("x" * 200, "", "short")
    sc = HFScorer(max_length=150, progress=False)(handle, [rec, InstructionRecord("a", "", "b")])
    assert np.isnan(sc["margin"][0]) and np.isfinite(sc["margin"][1])


def test_logit_chunking_gives_same_scores(handle, records, monkeypatch):
    ref = HFScorer(progress=False)(handle, records)
    monkeypatch.setattr(token_scores_mod, "_MAX_LOGIT_ELEMENTS", 300)  # ~3 positions per chunk
    got = HFScorer(progress=False)(handle, records)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-8)


def test_model_inputs_accepted(handle, records):
    ref = HFEmbedder(progress=False)(handle, records[:3])
    np.testing.assert_allclose(HFEmbedder(progress=False)((handle.model, handle.tokenizer), records[:3]), ref)
    np.testing.assert_allclose(
        HFEmbedder(progress=False, tokenizer=handle.tokenizer)(handle.model, records[:3]), ref
    )
    bare = build_tiny_llama(handle.tokenizer)
    with pytest.raises(ValidationError, match="tokenizer"):
        HFEmbedder(progress=False)(bare, records[:3])


def test_lora_peft_model_embeds_like_merged(handle, records):
    peft = pytest.importorskip("peft")
    tok = handle.tokenizer
    base = build_tiny_llama(tok, seed=5)
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    pm = peft.get_peft_model(base, cfg)
    a = HFEmbedder(progress=False)((pm, tok), records[:4])
    merged = pm.merge_and_unload()
    b = HFEmbedder(progress=False)((merged, tok), records[:4])
    np.testing.assert_allclose(a, b, atol=1e-5)


def _count_batches(model):
    seen = []
    hook = model.model.register_forward_hook(
        lambda mod, args, kwargs, out: seen.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    return seen, hook


def test_token_budget_batching_equals_batch_size_one(handle, records):
    seen, hook = _count_batches(handle.model)
    try:
        alone = HFEmbedder(max_batch_tokens=1, progress=False)(handle, records)  # every record alone
        assert len(seen) == len(records) and all(rows == 1 for rows, _ in seen)
        seen.clear()
        budget = 400
        packed, sc = HFEmbedder(max_batch_tokens=budget, progress=False).embed_and_score(handle, records)
        assert len(seen) < len(records) and any(rows > 1 for rows, _ in seen)
        assert all(rows * width <= budget or rows == 1 for rows, width in seen)
        assert sum(rows for rows, _ in seen) == len(records)
    finally:
        hook.remove()
    np.testing.assert_allclose(packed, alone, rtol=1e-5, atol=1e-5)
    one_by_one = HFScorer(max_batch_tokens=1, progress=False)(handle, records)
    for name in sc:
        np.testing.assert_allclose(sc[name], one_by_one[name], rtol=1e-5, atol=1e-7)
    # and against the unpadded full-model oracle
    for i in (0, 7, 12):
        np.testing.assert_allclose(packed[i], _oracle(handle, records[i])[0], atol=1e-5, rtol=1e-5)


def test_plan_batches_budget_padding_and_coverage():
    from diverseevol.hf._batches import padded_tokens, plan_batches

    rng = np.random.default_rng(0)
    lengths = np.sort(rng.integers(5, 300, size=500))[::-1]
    budget, max_padding, floor = 2048, 0.02, 256
    batches = plan_batches(lengths, max_tokens=budget, max_padding=max_padding, min_tokens=floor)
    assert batches[0].start == 0 and batches[-1].stop == len(lengths)
    assert all(a.stop == b.start for a, b in zip(batches, batches[1:]))

    def fits(a, b):  # the rule, written out: records a..b-1 as one batch
        seg = lengths[a:b]
        w = int(seg[0])
        if (b - a) * w > budget:
            return b - a == 1
        return (b - a) * w <= floor or (w - seg).sum() <= max_padding * seg.sum()

    for sl in batches:
        assert fits(sl.start, sl.stop)
        if sl.stop < len(lengths):
            assert not fits(sl.start, sl.stop + 1)  # the batch cannot take the next record
    real = int(lengths.sum())
    assert padded_tokens(lengths, batches) / real - 1 < 0.05
    one_each = plan_batches(lengths, max_tokens=1)
    assert [s.stop - s.start for s in one_each] == [1] * len(lengths)
    with pytest.raises(ValueError, match="longest first"):
        plan_batches(lengths[::-1], max_tokens=100)


def test_eager_attention_model_runs_with_sdpa_and_is_restored(handle, records):
    eager = build_tiny_llama(handle.tokenizer, seed=0)
    eager.set_attn_implementation("eager")
    used = []
    hook = eager.model.register_forward_hook(
        lambda mod, args, out: used.append(eager.config._attn_implementation)
    )
    try:
        got = HFEmbedder(progress=False)((eager, handle.tokenizer), records)
    finally:
        hook.remove()
    assert used and set(used) == {"sdpa"}
    assert eager.config._attn_implementation == "eager"
    np.testing.assert_allclose(got, HFEmbedder(progress=False)(handle, records), atol=1e-5)


def test_max_batch_tokens_is_checked(handle, records):
    with pytest.raises(ValidationError, match="max_batch_tokens"):
        HFEmbedder(max_batch_tokens=0, progress=False)(handle, records)


def test_default_batch_tokens_hand_computed():
    from diverseevol.hf._batches import CPU_ACTIVATION_BYTES, default_batch_tokens

    assert CPU_ACTIVATION_BYTES == 12 * 2**20
    cpu = dict(device_type="cpu", itemsize=4)
    # SmolLM2-135M: widest output 1,536 floats -> 12 MiB / 6,144 bytes = 2,048 tokens
    assert default_batch_tokens(32, 512, widest=1536, **cpu) == 2048
    # a 1B shape (5,632): 558 tokens by the bytes, lifted to the 2,048 floor
    assert default_batch_tokens(32, 512, widest=5632, **cpu) == 2048
    # the tiny LLaMA (128): cap 24,576, above 32 x 512, so the budget is unchanged
    assert default_batch_tokens(32, 512, widest=128, **cpu) == 16384
    # bfloat16 halves the bytes: 4,096 tokens at 1,536
    assert default_batch_tokens(32, 512, widest=1536, device_type="cpu", itemsize=2) == 4096
    # a budget already under the cap, a GPU, an unknown width: batch_size x max_length
    assert default_batch_tokens(4, 256, widest=1536, **cpu) == 1024
    assert default_batch_tokens(32, 512, widest=1536, device_type="cuda", itemsize=4) == 16384
    assert default_batch_tokens(32, 512, widest=0, **cpu) == 16384


def test_default_budget_on_cpu_is_capped_by_the_widest_activation(records):
    """A tiny LLaMA with a wide MLP (6,144) gets 2,048-token batches by default, the asked budget when given."""
    tok = tiny_handle(seed=0).tokenizer
    model = build_tiny_llama(tok, intermediate_size=6144, seed=1)
    many = list(records) * 12  # 156 records, well over 2,048 tokens
    n_tokens = int(sum(tokenize_records(tok, many, max_length=512).lengths))
    assert n_tokens > 3 * 2048
    seen, hook = _count_batches(model)
    try:
        default = HFEmbedder(progress=False)((model, tok), many)
        capped = list(seen)
        seen.clear()
        wide = HFEmbedder(progress=False, max_batch_tokens=16384)((model, tok), many)
        asked = list(seen)
    finally:
        hook.remove()
    assert all(rows * width <= 2048 for rows, width in capped)
    assert len(capped) >= n_tokens // 2048
    assert max(rows * width for rows, width in asked) > 2048 and len(asked) < len(capped)
    np.testing.assert_allclose(default, wide, rtol=1e-5, atol=1e-5)


def test_default_budget_on_cpu_counts_the_activations_bytes(records):
    """bfloat16 activations of a 1,536-wide MLP: 12 MiB / (1,536 x 2 bytes) = 4,096 tokens, twice float32's 2,048."""
    tok = tiny_handle(seed=0).tokenizer
    model = build_tiny_llama(tok, intermediate_size=1536, seed=1).to(torch.bfloat16)
    many = list(records) * 24
    seen, hook = _count_batches(model)
    try:
        HFEmbedder(progress=False)((model, tok), many)
    finally:
        hook.remove()
    sizes = [rows * width for rows, width in seen]
    assert max(sizes) <= 4096 and max(sizes) > 2048
