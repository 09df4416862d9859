"""ROUGE-L F1 against the rouge-score package and hand cases; the held-out judge's macro averages."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diverseevol.data import InstructionRecord, Turn
from diverseevol.errors import ValidationError
from diverseevol.judge.heldout import HeldoutJudge, reference_answer
from diverseevol.judge.rouge import rouge_l_f1, rouge_tokens


def test_hand_cases():
    # LCS("a b c d", "a c d e") = "a c d" = 3; P = 3/4, R = 3/4
    assert rouge_l_f1("a b c d", "a c d e") == pytest.approx(0.75)
    # LCS = 2 ("x y"); P = 2/2, R = 2/5 -> F = 2 * 1 * 0.4 / 1.4
    assert rouge_l_f1("x y", "x a y b c") == pytest.approx(0.8 / 1.4)
    assert rouge_l_f1("", "anything") == 0.0
    assert rouge_l_f1("nothing shared", "at all") == 0.0
    assert rouge_tokens("Hello, World! It's 2024.") == ["hello", "world", "it", "s", "2024"]


words = st.sampled_from(["the", "cat", "sat", "on", "mat", "dog", "a", "Ran", "fast!", "42", "x-y"])


@settings(max_examples=200, deadline=None)
@given(st.lists(words, max_size=12), st.lists(words, max_size=12))
def test_matches_the_rouge_score_package(cand, ref):
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    expected = rouge_scorer.RougeScorer(["rougeL"]).score(" ".join(ref), " ".join(cand))["rougeL"].fmeasure
    assert rouge_l_f1(" ".join(cand), " ".join(ref)) == pytest.approx(expected, abs=1e-12)


def test_reference_answer_of_alpaca_and_chat_records():
    assert reference_answer(InstructionRecord("q", "", "the answer")) == "the answer"
    chat = InstructionRecord("", messages=(Turn("user", "hi"), Turn("assistant", "first"), Turn("user", "more"),
                                           Turn("assistant", "last")))
    assert reference_answer(chat) == "last"


def test_heldout_judge_macro_averages_over_labels():
    records = [InstructionRecord(f"q{i}", "", f"answer number {i}") for i in range(4)]
    labels = ["a", "a", "a", "b"]

    def loss(model, recs):
        # label a: nll sums 1, 2, 3 over 1, 1, 2 tokens -> 6 / 4 = 1.5; label b: 10 / 5 = 2.0
        return np.array([1.0, 2.0, 3.0, 10.0]), np.array([1, 1, 2, 5])

    def generate(model, recs):
        return ["answer number 0", "wrong", "wrong", "answer number 3"]

    out = HeldoutJudge(records, labels, loss=loss, generate=generate)(None, 0)
    assert out["heldout_loss/a"] == pytest.approx(1.5)
    assert out["heldout_loss/b"] == pytest.approx(2.0)
    assert out["heldout_loss"] == pytest.approx(1.75)  # macro, not the token-weighted 16 / 9
    assert out["rouge_l/a"] == pytest.approx(1 / 3)
    assert out["rouge_l/b"] == pytest.approx(1.0)
    assert out["rouge_l"] == pytest.approx((1 / 3 + 1.0) / 2)


def test_heldout_judge_refuses_mismatched_labels_and_no_metric():
    recs = [InstructionRecord("q", "", "a")]
    with pytest.raises(ValidationError, match="1 records but 2 labels"):
        HeldoutJudge(recs, ["x", "y"], loss=lambda m, r: ([0.0], [1]))
    with pytest.raises(ValidationError, match="needs `loss`, `generate` or both"):
        HeldoutJudge(recs)


def test_generate_rounds_limits_generation():
    recs = [InstructionRecord("q", "", "a b")]
    calls = []

    def generate(model, records):
        calls.append(model)
        return ["a b"]

    judge = HeldoutJudge(recs, loss=lambda m, r: ([1.0], [1]), generate=generate, generate_rounds=[2])
    assert "rouge_l" not in judge("m0", 0)
    assert judge("m2", 2)["rouge_l"] == 1.0
    assert calls == ["m2"]
