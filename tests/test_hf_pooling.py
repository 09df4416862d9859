"""HFEmbedder pooling ("mean", "weighted_mean", "last_token") and layer choice, against a hand-computed
pooling of the full model's output_hidden_states on each record alone (no padding)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hf_fixtures import tiny_handle, word_records

from diverseevol.errors import ConfigError, ValidationError
from diverseevol.hf import HFEmbedder
from diverseevol.hf._records import tokenize_records
from diverseevol.hf.tiny import build_char_tokenizer, build_tiny_llama

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def handle():
    return tiny_handle(seed=1, num_layers=3)


@pytest.fixture(scope="module")
def records():
    words = ["alpha", "beta", "gamma", "sum", "list", "poem", "why"]
    return word_records(9, seed=3, words=words, instruction_words=(1, 6), response_words=(1, 9))


def _hand_pooled(handle, rec, pooling, layer):
    """Forward one record alone; pool hidden_states[layer] in float64 with explicit loops."""
    ids = tokenize_records(handle.tokenizer, [rec], max_length=512).input_ids[0]
    with torch.no_grad():
        out = handle.model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    h = out.hidden_states[layer][0].double().numpy()  # (L, d)
    n = h.shape[0]
    if pooling == "mean":
        return sum(h[i] for i in range(n)) / n
    if pooling == "weighted_mean":  # token i (1-based) weighs i / (1 + 2 + ... + L)
        return sum((i + 1) * h[i] for i in range(n)) / (n * (n + 1) / 2)
    return h[n - 1]


@pytest.mark.parametrize("pooling", ["mean", "weighted_mean", "last_token"])
@pytest.mark.parametrize("layer", [-1, -2, 0])
def test_pooling_matches_hand_computed_hidden_states(handle, records, pooling, layer):
    emb = HFEmbedder(batch_size=4, progress=False, pooling=pooling, layer=layer)(handle, records)
    assert emb.dtype == np.float32 and emb.shape == (len(records), 64)
    for i, rec in enumerate(records):
        np.testing.assert_allclose(emb[i], _hand_pooled(handle, rec, pooling, layer), atol=2e-5, rtol=2e-5)


def test_defaults_are_the_papers_mean_of_the_last_layer(handle, records):
    default = HFEmbedder(batch_size=3, progress=False)
    assert (default.pooling, default.layer) == ("mean", -1)
    # 3 layers: hidden state 3 is the last one, -1
    explicit_last = HFEmbedder(batch_size=3, progress=False, layer=3)(handle, records)
    np.testing.assert_allclose(default(handle, records), explicit_last, atol=1e-6)
    assert default.get_params()["pooling"] == "mean" and default.get_params()["layer"] == -1


def test_the_poolings_differ(handle, records):
    out = {p: HFEmbedder(batch_size=9, progress=False, pooling=p)(handle, records) for p in
           ("mean", "weighted_mean", "last_token")}
    assert not np.allclose(out["mean"], out["weighted_mean"], atol=1e-4)
    assert not np.allclose(out["mean"], out["last_token"], atol=1e-4)


def test_scores_still_come_from_the_last_layer(handle, records):
    base_emb, base_sc = HFEmbedder(batch_size=4, progress=False).embed_and_score(handle, records)
    emb, sc = HFEmbedder(batch_size=4, progress=False, pooling="last_token", layer=0).embed_and_score(
        handle, records)
    for name in base_sc:
        np.testing.assert_allclose(sc[name], base_sc[name], rtol=1e-6)
    assert not np.allclose(emb, base_emb)


@pytest.mark.parametrize("kwargs, match", [
    ({"pooling": "max"}, "pooling must be one of"),
    ({"pooling": "mean", "layer": 1.5}, "layer must be an int"),
    ({"pooling": "mean", "layer": True}, "layer must be an int"),
])
def test_bad_settings_fail_at_construction(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        HFEmbedder(**kwargs)


def test_layer_out_of_range_names_the_range(handle, records):
    with pytest.raises(ValidationError, match=r"layer=7 is out of range.*4 hidden states.*-4 \.\. 3"):
        HFEmbedder(progress=False, layer=7)(handle, records[:2])


def test_config_model_embedder_section_reaches_the_embedder(tmp_path):
    from diverseevol.assemble import build_hf_parts
    from diverseevol.config import parse_config

    tok = build_char_tokenizer()
    model_dir = tmp_path / "tiny"
    build_tiny_llama(tok, seed=0).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    cfg = parse_config({
        "run_dir": str(tmp_path / "run"),
        "data": {"path": str(tmp_path / "d.jsonl")},
        "model": {"name_or_path": str(model_dir), "embedder": {"pooling": "weighted_mean", "layer": -2}},
    }, base_dir=tmp_path)
    m = cfg.model
    parts = build_hf_parts(m.name_or_path, scores=False, progress=False, embedder=m.embedder)
    assert (parts.embedder.pooling, parts.embedder.layer) == ("weighted_mean", -2)
    with pytest.raises(ConfigError, match="pool"):
        build_hf_parts(m.name_or_path, scores=False, embedder={"poolng": "mean"})
