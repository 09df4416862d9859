"""The demo's TinyScorer gives a per-record ``loss``: the mean NLL of the answer tokens (oracle: heldout_nll)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from diverseevol.demo.model import PromptCodec, TinyModelSpec, TinyScorer, _network, heldout_nll
from diverseevol.demo.tasks import TASK_FAMILIES, make_suite


def test_tiny_scorer_loss_is_the_mean_answer_nll():
    torch.manual_seed(0)
    codec = PromptCodec(TASK_FAMILIES)
    model = _network(TinyModelSpec(hidden_size=32, num_layers=1, num_heads=2), codec.size).eval()
    records = make_suite(n_train=60, seed=1).train[:25]
    scores = TinyScorer(codec)(model, records)
    assert set(scores) == {"confidence", "margin", "loss"}
    nll, tokens = heldout_nll(model, codec, records)
    np.testing.assert_allclose(scores["loss"], nll / tokens, rtol=1e-5)
    assert np.ptp(scores["loss"]) > 0
