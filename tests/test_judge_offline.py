"""ExactMatchJudge, PairwiseLoopJudge and the benchmark loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shared_data import shared_data_dir as _shared_data

from diverseevol.errors import DataFormatError, JudgeError, ValidationError
from diverseevol.judge import (
    Benchmark,
    ExactMatchJudge,
    Judge,
    PairwiseJudge,
    PairwiseLoopJudge,
    load_answers,
    load_benchmark,
)
from diverseevol.judge.loopback import LoopbackChatServer, length_responder

DATA = _shared_data()
needs_data = pytest.mark.skipif(not (DATA / "vicuna_bench").is_dir(), reason=f"shared test data not found at {DATA}")


# ---------------------------------------------------------------- ExactMatchJudge
def echo_generator(model, prompts):
    """A 'model' is a dict prompt -> answer; unknown prompts get 'no idea'."""
    return [model.get(p, "no idea") for p in prompts]


def test_exact_match_accuracy_and_groups():
    prompts = ["2+2", "3+3", "capital of France", "capital of Peru"]
    refs = ["4", "6", "Paris", "Lima"]
    judge = ExactMatchJudge(prompts, refs, echo_generator, groups=["math", "math", "geo", "geo"])
    assert isinstance(judge, Judge)
    model = {"2+2": " 4\n", "3+3": "7", "capital of France": "PARIS", "capital of Peru": "Lima, Peru"}
    out = judge(model, 0)
    assert out == {"accuracy": 50.0, "accuracy/geo": 50.0, "accuracy/math": 50.0}
    assert judge.last_correct == [True, False, True, False]
    assert judge.last_answers[0] == " 4\n"


@pytest.mark.parametrize(
    "normalize, match, expected",
    [
        ("none", "exact", [False, False, False, True]),
        ("strip", "exact", [True, False, False, True]),
        ("casefold", "exact", [True, True, False, True]),
        ("words", "exact", [True, True, True, True]),
        ("casefold", "prefix", [True, True, True, True]),
        ("casefold", "contains", [True, True, True, True]),
        (lambda s: s.strip().lower()[:5], "exact", [True, True, True, True]),
    ],
)
def test_normalizers_and_match_modes(normalize, match, expected):
    refs = ["Paris", "Paris", "Paris", "Paris"]
    answers = [" Paris ", "PARIS", "paris.  ", "Paris"]
    judge = ExactMatchJudge(["p"] * 4, refs, echo_generator, normalize=normalize, match=match)
    judge.score(answers)
    assert judge.last_correct == expected


def test_prefix_vs_contains():
    judge = ExactMatchJudge(["p", "q"], ["42", "42"], echo_generator, match="prefix")
    assert judge.score(["42 is the answer", "the answer is 42"]) == {"accuracy": 50.0}
    judge = ExactMatchJudge(["p", "q"], ["42", "42"], echo_generator, match="contains")
    assert judge.score(["42 is the answer", "the answer is 42"]) == {"accuracy": 100.0}


def test_exact_match_validation_and_generator_errors():
    with pytest.raises(ValidationError, match="2 prompts but 1 references"):
        ExactMatchJudge(["a", "b"], ["x"], echo_generator)
    with pytest.raises(ValidationError, match="normalize"):
        ExactMatchJudge(["a"], ["x"], echo_generator, normalize="lower")
    with pytest.raises(ValidationError, match="match"):
        ExactMatchJudge(["a"], ["x"], echo_generator, match="fuzzy")
    with pytest.raises(ValidationError, match="group labels"):
        ExactMatchJudge(["a"], ["x"], echo_generator, groups=["g", "h"])
    with pytest.raises(JudgeError, match="1 answers for 2 prompts"):
        ExactMatchJudge(["a", "b"], ["x", "y"], lambda m, p: ["x"])(None, 0)
    with pytest.raises(JudgeError, match="non-string"):
        ExactMatchJudge(["a"], ["x"], lambda m, p: [None])(None, 0)


def test_prompt_format_is_applied_before_generation():
    seen = []

    def gen(model, prompts):
        seen.extend(prompts)
        return ["x"] * len(prompts)

    ExactMatchJudge(["a"], ["x"], gen, prompt_format=lambda q: f"### Instruction:\n{q}")(None, 3)
    assert seen == ["### Instruction:\na"]


# ---------------------------------------------------------------- PairwiseLoopJudge
def test_pairwise_loop_judge_returns_rs_wtr_invalid(tmp_path):
    refs = ["word " * 50] * 4  # 50 words -> toy score 6
    bench = Benchmark.from_lists("toy", [f"q{i}" for i in range(4)], refs)

    def generate(model, prompts):  # the model's answers have `model` words
        return ["word " * model for _ in prompts]

    with LoopbackChatServer(length_responder) as server:
        pj = PairwiseJudge("toy-judge", base_url=server.url, api_key="none", cache=tmp_path / "c.sqlite", progress=False)
        judge = PairwiseLoopJudge(pj, bench, generate, output_dir=tmp_path / "eval")
        assert isinstance(judge, Judge)
        low = judge(10, 0)  # 10 words -> score 2
        high = judge(90, 1)  # 90 words -> score 10
        again = judge(90, 2)
        assert server.n_requests == 16  # round 2 repeats round 1's answers: all cached
    assert low == {"toy/rs": pytest.approx(100 * 2 / 6), "toy/wtr": 0.0, "toy/invalid": 0.0}
    assert high == {"toy/rs": pytest.approx(100 * 10 / 6), "toy/wtr": 100.0, "toy/invalid": 0.0}
    assert again == high
    assert judge.reports[(1, "toy")].rs == high["toy/rs"]
    saved = json.loads((tmp_path / "eval" / "round_0" / "toy.report.json").read_text())
    assert saved["rs"] == pytest.approx(low["toy/rs"]) and len(saved["questions"]) == 4
    lines = (tmp_path / "eval" / "round_1" / "toy.answers.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["answer"] == "word " * 90


def test_pairwise_loop_judge_needs_references():
    with pytest.raises(ValidationError, match="no reference answers"):
        PairwiseLoopJudge(object(), Benchmark.from_lists("x", ["q"]), echo_generator)  # type: ignore[arg-type]


# ---------------------------------------------------------------- benchmarks
@needs_data
@pytest.mark.parametrize(
    "name, qfile, afile, n, first_id",
    [
        ("vicuna", "vicuna_bench/vicuna_test_set.jsonl", "vicuna_bench/vicuna_test_gpt35_0624_answers.jsonl", 80, "1"),
        ("koala", "koala_test_set/koala_test_set.jsonl", "koala_test_set/koala_test_gpt35_0624_answers.jsonl", 180,
         "koala_0"),
        ("wizardlm", "wizardlm_test_set/wizardlm_test_set.jsonl",
         "wizardlm_test_set/wizardlm_test_gpt35_0624_answers.jsonl", 218, "1"),
    ],
)
def test_load_paper_benchmarks(name, qfile, afile, n, first_id):
    bench = load_benchmark(name, DATA / qfile, reference_answers=DATA / afile)
    assert len(bench) == n and bench.ids[0] == first_id
    assert all(isinstance(q, str) and q for q in bench.questions)
    assert all(isinstance(a, str) and a for a in bench.references)
    # Independent check: the answer file's own question text matches the question of that id.
    rows = [json.loads(line) for line in (DATA / afile).read_text().splitlines() if line.strip()]
    qkey = {"vicuna": "text", "koala": "prompt", "wizardlm": "Instruction"}[name]
    by_id = {str(r[{"vicuna": "question_id", "koala": "id", "wizardlm": "idx"}[name]]): r for r in rows}
    for qid, q, a in zip(bench.ids, bench.questions, bench.references):
        assert by_id[qid][qkey] == q and by_id[qid]["answer"] == a


@needs_data
def test_reference_answers_are_joined_by_id_not_by_line(tmp_path):
    qfile = DATA / "vicuna_bench" / "vicuna_test_set.jsonl"
    rows = [json.loads(line) for line in (DATA / "vicuna_bench" / "vicuna_test_gpt35_0624_answers.jsonl").open()]
    shuffled = tmp_path / "answers.jsonl"
    order = np.random.default_rng(0).permutation(len(rows))
    shuffled.write_text("".join(json.dumps(rows[i]) + "\n" for i in order))
    bench = load_benchmark("vicuna", qfile, reference_answers=shuffled)
    assert bench.references[0] == rows[0]["answer"] and bench.references[79] == rows[79]["answer"]
    shuffled.write_text("".join(json.dumps(rows[i]) + "\n" for i in order if rows[i]["question_id"] not in (5, 77)))
    with pytest.raises(DataFormatError, match=r"lack 2 of the 80 question ids.*'5', '77'"):
        load_benchmark("vicuna", qfile, reference_answers=shuffled)


def test_any_jsonl_with_a_named_field(tmp_path):
    q = tmp_path / "q.jsonl"
    q.write_text('{"query": "first?"}\n\n{"query": "second?"}\n')
    a = tmp_path / "a.jsonl"
    a.write_text('{"answer": "one"}\n{"answer": "two"}\n')
    bench = load_benchmark("mine", q, question_field="query", reference_answers=a)
    assert bench.ids == ("0", "1") and bench.questions == ("first?", "second?") and bench.references == ("one", "two")
    with pytest.raises(ValidationError, match="question_field"):
        load_benchmark("mine", q)
    with pytest.raises(DataFormatError, match="no field 'text'"):
        load_benchmark("mine", q, question_field="text")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "x"}\n{oops\n')
    with pytest.raises(DataFormatError, match=r"bad.jsonl:2: invalid JSON"):
        load_benchmark("mine", bad, question_field="query")
    with pytest.raises(DataFormatError, match="does not exist"):
        load_benchmark("vicuna", tmp_path / "missing.jsonl")


def test_load_answers_for_model_outputs(tmp_path):
    bench = Benchmark.from_lists("koala", ["a?", "b?"], ids=["koala_0", "koala_1"])
    f = tmp_path / "rd_0.jsonl"
    f.write_text('{"id": "koala_1", "answer": "B"}\n{"id": "koala_0", "answer": "A"}\n{"id": "koala_9", "answer": "Z"}\n')
    assert load_answers(f, bench) == ("A", "B")
    f.write_text('{"id": "koala_1", "answer": "B"}\n{"id": "koala_1", "answer": "C"}\n')
    with pytest.raises(DataFormatError, match="more than one answer"):
        load_answers(f, bench)


def test_benchmark_validation():
    with pytest.raises(ValidationError, match="duplicate"):
        Benchmark.from_lists("x", ["a", "b"], ids=[1, 1])
    with pytest.raises(ValidationError, match="no questions"):
        Benchmark.from_lists("x", [])
    with pytest.raises(ValidationError, match="2 questions but 1 references"):
        Benchmark.from_lists("x", ["a", "b"], ["r"])


def test_loop_with_pairwise_judge_keeps_the_key_out_of_the_run_dir(tmp_path, monkeypatch):
    from diverseevol import EvolutionLoop
    from diverseevol.data import InstructionRecord

    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "0")
    secret = "sk-loop-secret-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    records = [InstructionRecord(f"task {i}", "", f"answer {i}") for i in range(20)]
    feats = np.random.default_rng(0).normal(size=(20, 3))
    bench = Benchmark.from_lists("toy", ["q1", "q2"], ["word " * 30] * 2)
    with LoopbackChatServer(length_responder) as server:
        pj = PairwiseJudge("toy-judge", base_url=server.url, cache=tmp_path / "run" / "judge.sqlite", progress=False)
        judge = PairwiseLoopJudge(pj, bench, lambda model, prompts: ["word " * (10 * model)] * len(prompts),
                                  output_dir=tmp_path / "run" / "eval")
        loop = EvolutionLoop(records, trainer=lambda recs, t, out: len(recs) // 2, embedder=lambda m, r: feats,
                             judge=judge, init_size=2, k=2, rounds=2, run_dir=tmp_path / "run", progress=False)
        result = loop.run()
        assert server.auth_headers[0] == f"Bearer {secret}"
    assert [round(m["toy/rs"], 2) for m in result.metrics] == [pytest.approx(100 * 2 / 4), pytest.approx(100 * 3 / 4),
                                                                pytest.approx(100 * 4 / 4)]
    pj.close()
    # The cache and the answers/reports live inside the run dir (created lazily, after the loop set it up).
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "config.json" for p in files) and any(p.suffix == ".sqlite" for p in files)
    for p in files:
        assert secret.encode() not in p.read_bytes(), p
