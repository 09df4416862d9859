"""parse_scores on hand cases and on the 43,020 real GPT-4 replies recorded by DiverseEvol."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_data import shared_data_dir as _shared_data

from diverseevol.judge import parse_scores, relative_score, summarize_rounds, win_tie_rate

DAVINCI = _shared_data() / "judge_reference" / "davinci.jsonl.gz"
REF = "gpt/gpt35_0624"
needs_davinci = pytest.mark.skipif(not DAVINCI.is_file(), reason=f"recorded judgments not found at {DAVINCI}")


@lru_cache(maxsize=1)
def _records() -> tuple[dict, ...]:
    with gzip.open(DAVINCI, "rt", encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh)


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("8 9\nAssistant 1 was brief.", (8.0, 9.0)),
        ("8.5 9", (8.5, 9.0)),
        ("8, 9", (8.0, 9.0)),
        ("(8, 9)", (8.0, 9.0)),
        ("**8 9**\nexplanation", (8.0, 9.0)),
        ("\n\n  7 3  \nleading blank lines", (7.0, 3.0)),
        ("Scores: 8/10 9/10", (8.0, 9.0)),
        ("8 out of 10, 9 out of 10", (8.0, 9.0)),
        ("7 8.", (7.0, 8.0)),
        ("Assistant 1: 8, Assistant 2: 9", (8.0, 9.0)),
        ("Assistant 1: 8\nAssistant 2: 9\nBoth are fine.", (8.0, 9.0)),
        ("Assistant 1's score: 6\nAssistant 2's score: 8", (6.0, 8.0)),
        ("Assistant 1 score: 7.5 out of 10; Assistant 2 score: 9", (7.5, 9.0)),
        ("10 10", (10.0, 10.0)),
        ("1 1", (1.0, 1.0)),
    ],
)
def test_parses_tolerated_styles(reply, expected):
    assert parse_scores(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [
        None,
        "",
        "   \n  \n",
        "8",
        "8 9 10",
        "11 3",
        "-1 -1",
        "I would rate them 8 and 9",
        "Assistant 1: 8 but Assistant 2 did better",
        "Both answers are good.\n8 9",  # the scores must be on the first line
        "8.5.6 3",
        "1. 8 9",
    ],
)
def test_unparseable_replies_give_none(reply):
    assert parse_scores(reply) is None


_SCORE = st.one_of(st.integers(0, 10).map(float), st.sampled_from([0.5, 2.5, 6.5, 7.5, 8.5, 9.5]))
_STYLES = [
    "{a} {b}", "{a}, {b}", "({a}, {b})", "**{a} {b}**", "Scores: {a}/10 {b}/10", "{a} out of 10 and {b} out of 10",
    "Assistant 1: {a}, Assistant 2: {b}", "Assistant 1: {a}\nAssistant 2: {b}", "  {a}   {b}  ",
]


@settings(max_examples=200, deadline=None)
@given(a=_SCORE, b=_SCORE, style=st.sampled_from(_STYLES), tail=st.text(max_size=40))
def test_any_tolerated_style_round_trips(a, b, style, tail):
    fmt = lambda x: str(int(x)) if x.is_integer() else str(x)
    reply = style.format(a=fmt(a), b=fmt(b)) + "\n\n" + tail
    assert parse_scores(reply) == (a, b)


def test_custom_range():
    assert parse_scores("80 90", high=100) == (80.0, 90.0)
    assert parse_scores("80 90") is None


def _model_ref(record: dict, order: str, scores: tuple[float, float]) -> list[float]:
    a1, a2 = record[order]["assistant1"], record[order]["assistant2"]
    assert (a1 == REF) != (a2 == REF), "exactly one answer is the reference"
    return [scores[1], scores[0]] if a1 == REF else [scores[0], scores[1]]


@needs_davinci
def test_every_recorded_reply_parses_to_the_recorded_scores():
    records = _records()
    assert len(records) == 21_510
    agree = total = 0
    disagreements = []
    for r in records:
        for i, order in enumerate(("order0", "order1")):
            total += 1
            scores = parse_scores(r[order]["judge_output"])
            got = None if scores is None else _model_ref(r, order, scores)
            if got == r["recorded_scores_model_first"][i]:
                agree += 1
            else:
                disagreements.append((r["testset"], r["run"], r["round"], r["question_id"], i, got))
    assert total == 43_020
    # Measured: 43,020 / 43,020 (100%); every recorded first line is "<score> <score>".
    assert agree == total, disagreements[:10]


@needs_davinci
def test_order_convention_of_recorded_data():
    # order0 shows the model first, order1 the reference first: our ORDERS convention.
    for r in _records()[:500]:
        assert r["order0"]["assistant2"] == REF and r["order1"]["assistant1"] == REF


def _arrays_from_replies(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    m = np.empty((len(records), 2))
    g = np.empty((len(records), 2))
    for q, r in enumerate(records):
        for i, order in enumerate(("order0", "order1")):
            m[q, i], g[q, i] = _model_ref(r, order, parse_scores(r[order]["judge_output"]))
    return m, g


@needs_davinci
def test_rs_wtr_per_run_and_round_match_an_independent_computation():
    groups: dict[tuple[str, str, int], list[dict]] = defaultdict(list)
    for r in _records():
        groups[(r["testset"], r["run"], r["round"])].append(r)
    n_q = {"vicuna": 80, "koala": 180, "wizardlm": 218}
    assert len(groups) == 3 * (4 * 11 + 1)
    for (testset, _run, _rd), recs in groups.items():
        assert len(recs) == n_q[testset]
        model, ref = _arrays_from_replies(recs)
        # Independent oracle: plain Python over the recorded (model, reference) pairs.
        rec = [r["recorded_scores_model_first"] for r in recs]
        sum_m = sum(pair[0] for q in rec for pair in q)
        sum_r = sum(pair[1] for q in rec for pair in q)
        wins = sum(1 for q in rec if sum(p[0] for p in q) >= sum(p[1] for p in q))
        assert relative_score(model, ref) == pytest.approx(100.0 * sum_m / sum_r, rel=1e-12)
        assert win_tie_rate(model, ref) == pytest.approx(100.0 * wins / len(rec), rel=1e-12)


@needs_davinci
def test_table1_columns_from_recorded_rounds():
    per_round: dict[tuple[str, str], dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in _records():
        if r["run"] != "baseline_davinci":
            per_round[(r["testset"], r["run"])][r["round"]].append(r)
    for key, rounds in per_round.items():
        rds = sorted(rounds)
        assert rds == list(range(11)), key
        rs, wtr = [], []
        for rd in rds:
            m, g = _arrays_from_replies(rounds[rd])
            rs.append(relative_score(m, g))
            wtr.append(win_tie_rate(m, g))
        s = summarize_rounds(rds, [100 * (rd + 1) for rd in rds], rs, wtr)
        best = max(range(len(rds)), key=lambda i: (rs[i], -i))  # earliest peak
        assert s.peak_rs == rs[best] and s.n_best == 100 * (best + 1) and s.peak_round == best
        assert s.best_wtr == max(wtr)


@needs_davinci
@pytest.mark.parametrize("testset, run, rd", [("vicuna", "kc_davinci_initRAND100", 10), ("koala", "rand_davinci_initRAND100", 3)])
def test_pairwise_judge_replaying_recorded_gpt4_replies(testset, run, rd, tmp_path):
    """End to end: PairwiseJudge over HTTP, a server replaying GPT-4's recorded replies, RS/WTR as recorded."""
    pytest.importorskip("openai")
    from diverseevol.judge import PairwiseJudge, load_benchmark
    from diverseevol.judge.loopback import LoopbackChatServer, extract_answers

    files = {
        "vicuna": ("vicuna_bench/vicuna_test_set.jsonl", "vicuna_bench/vicuna_test_gpt35_0624_answers.jsonl"),
        "koala": ("koala_test_set/koala_test_set.jsonl", "koala_test_set/koala_test_gpt35_0624_answers.jsonl"),
    }[testset]
    data = _shared_data()
    bench = load_benchmark(testset, data / files[0], reference_answers=data / files[1])
    recs = {str(r["question_id"]): r for r in _records() if (r["testset"], r["run"], r["round"]) == (testset, run, rd)}
    assert set(recs) == set(bench.ids)
    by_question = {q: recs[qid] for qid, q in zip(bench.ids, bench.questions)}
    model_answers = [f"(model answer to {qid})" for qid in bench.ids]  # the recorded answers are not shipped

    def replay(request):
        question, a1, _ = extract_answers(request)
        rec = by_question[question]
        return rec["order0" if a1.startswith("(model answer") else "order1"]["judge_output"]  # order0: model first

    with LoopbackChatServer(replay) as server:
        report = PairwiseJudge("gpt-4", base_url=server.url, api_key="x", cache=tmp_path / "c.sqlite",
                               progress=False, max_concurrency=8).compare(bench, model_answers)
    recorded = np.array([recs[qid]["recorded_scores_model_first"] for qid in bench.ids])  # (n, order, [m, r])
    np.testing.assert_array_equal(report.model_scores, recorded[..., 0])
    np.testing.assert_array_equal(report.reference_scores, recorded[..., 1])
    assert report.n_invalid == 0
    assert report.rs == pytest.approx(100 * recorded[..., 0].sum() / recorded[..., 1].sum())
    assert report.wtr == pytest.approx(100 * np.mean(recorded[..., 0].sum(1) >= recorded[..., 1].sum(1)))
