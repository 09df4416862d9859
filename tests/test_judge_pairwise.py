"""PairwiseJudge end to end against a loopback chat-completions server (real HTTP, real openai client)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from diverseevol.errors import JudgeError, OptionalDependencyError, ValidationError
from diverseevol.judge import (
    JUDGE_SYSTEM_PROMPT,
    Benchmark,
    JudgeCache,
    PairwiseJudge,
    relative_score,
    render_judge_prompt,
    win_tie_rate,
)
from diverseevol.judge.loopback import LoopbackChatServer, LoopbackReply, extract_answers

pytest.importorskip("openai")

SECRET = "sk-test-THIS-KEY-MUST-NEVER-BE-STORED-0123456789"


def score_of(answer: str) -> int:
    """The scripted judge's opinion: answers are "<text> #<score>"."""
    return int(answer.rsplit("#", 1)[1])


def scripted(request: dict) -> str:
    _, a1, a2 = extract_answers(request)
    return f"{score_of(a1)} {score_of(a2)}\nscripted explanation"


def make_bench(n: int = 5) -> tuple[Benchmark, list[str]]:
    rng = np.random.default_rng(0)
    refs = [f"reference answer {i} #{int(rng.integers(1, 11))}" for i in range(n)]
    answers = [f"model answer {i} {{with braces}} #{int(rng.integers(1, 11))}" for i in range(n)]
    bench = Benchmark.from_lists("toy", [f"question {i}?" for i in range(n)], refs, ids=[f"q{i}" for i in range(n)])
    return bench, answers


def make_judge(server: LoopbackChatServer, tmp_path=None, **kw) -> PairwiseJudge:
    kw.setdefault("retry_base_delay", 0.001)
    kw.setdefault("retry_max_delay", 0.01)
    kw.setdefault("progress", False)
    kw.setdefault("timeout", 5.0)
    if tmp_path is not None:
        kw.setdefault("cache", tmp_path / "cache.sqlite")
    return PairwiseJudge("judge-model", base_url=server.url, api_key=SECRET, **kw)


@pytest.fixture
def server():
    with LoopbackChatServer(scripted) as s:
        yield s


def test_both_orders_mapped_back_to_model_and_reference(server, tmp_path):
    bench, answers = make_bench(6)
    report = make_judge(server, tmp_path).compare(bench, answers)
    expected_m = np.array([[score_of(a)] * 2 for a in answers], dtype=float)
    expected_r = np.array([[score_of(r)] * 2 for r in bench.references], dtype=float)
    np.testing.assert_array_equal(report.model_scores, expected_m)
    np.testing.assert_array_equal(report.reference_scores, expected_r)
    assert report.rs == pytest.approx(relative_score(expected_m, expected_r))
    assert report.wtr == pytest.approx(win_tie_rate(expected_m, expected_r))
    assert report.n_invalid == 0 and report.n_requests == 12 and report.n_cached == 0
    assert server.n_requests == 12
    # Each question was asked twice, once per order, with the paper's prompt at temperature 0.
    seen = {}
    for req in server.requests:
        assert req["model"] == "judge-model" and req["temperature"] == 0
        assert req["messages"][0] == {"role": "system", "content": JUDGE_SYSTEM_PROMPT}
        q, a1, a2 = extract_answers(req)
        seen[(q, a1, a2)] = req["messages"][1]["content"]
    for i, (q, a, r) in enumerate(zip(bench.questions, answers, bench.references)):
        assert seen[(q, a, r)] == render_judge_prompt(q, a, r)  # order 0: model first
        assert seen[(q, r, a)] == render_judge_prompt(q, r, a)  # order 1: reference first


def test_position_bias_is_mapped_per_order(tmp_path):
    # A judge that always prefers Assistant 1: model gets 9 when first, 3 when second.
    with LoopbackChatServer(lambda req: "9 3\nfirst is best") as s:
        bench, answers = make_bench(4)
        report = make_judge(s, tmp_path).compare(bench, answers)
    np.testing.assert_array_equal(report.model_scores, [[9, 3]] * 4)
    np.testing.assert_array_equal(report.reference_scores, [[3, 9]] * 4)
    assert report.rs == 100.0 and report.wtr == 100.0  # ties count as wins


def test_garbage_replies_are_listed_never_scored(tmp_path):
    def responder(req):
        q, a1, _ = extract_answers(req)
        if q == "question 1?" and a1.startswith("reference"):
            return "I cannot decide between these."
        if q == "question 3?":
            return ""
        return scripted(req)

    with LoopbackChatServer(responder) as s:
        bench, answers = make_bench(5)
        report = make_judge(s, tmp_path).compare(bench, answers)
    assert report.n_invalid == 3
    assert {(i.question_id, i.order) for i in report.invalid} == {("q1", 1), ("q3", 0), ("q3", 1)}
    assert any(i.reply == "I cannot decide between these." for i in report.invalid)
    assert report.excluded_ids == ["q1", "q3"] and report.n_valid == 3
    assert np.isnan(report.model_scores[1, 1]) and not np.isnan(report.model_scores[1, 0])
    keep = [0, 2, 4]
    m = [[score_of(answers[i])] * 2 for i in keep]
    r = [[score_of(bench.references[i])] * 2 for i in keep]
    assert report.rs == pytest.approx(relative_score(m, r))
    assert report.wtr == pytest.approx(win_tie_rate(m, r))
    metrics = report.metrics()
    assert metrics["toy/invalid"] == 3 and metrics["toy/n_valid"] == 3
    d = report.to_dict()
    assert d["excluded_ids"] == ["q1", "q3"] and d["questions"][3]["model_scores"] == [None, None]


def test_all_invalid_gives_nan_metrics(tmp_path):
    with LoopbackChatServer(lambda req: "no scores here") as s:
        bench, answers = make_bench(2)
        report = make_judge(s, tmp_path).compare(bench, answers)
    assert report.n_invalid == 4 and np.isnan(report.rs) and np.isnan(report.wtr)


def test_retries_on_429_500_and_timeouts(tmp_path):
    calls = {"n": 0}
    lock = threading.Lock()

    def responder(req):
        with lock:
            calls["n"] += 1
            n = calls["n"]
        if n == 1:
            return LoopbackReply(status=429, content="rate limited", headers={"Retry-After": "0"})
        if n == 2:
            return LoopbackReply(status=500, content="boom")
        if n == 3:
            return LoopbackReply(status=503)
        if n == 4:
            return LoopbackReply(content="1 1", delay=0.6)  # the client gives up after 0.2 s
        return scripted(req)

    with LoopbackChatServer(responder) as s:
        bench, answers = make_bench(3)
        judge = make_judge(s, tmp_path, max_concurrency=1, timeout=0.2)
        report = judge.compare(bench, answers)
        assert s.n_requests == 6 + 4
    assert report.n_invalid == 0 and report.n_requests == 6
    assert judge.n_attempts == 10
    np.testing.assert_array_equal(report.model_scores[:, 0], [score_of(a) for a in answers])


def test_retries_exhausted_and_non_retryable_errors(tmp_path):
    with LoopbackChatServer(lambda req: LoopbackReply(status=500)) as s:
        judge = make_judge(s, max_retries=2, max_concurrency=1)
        with pytest.raises(JudgeError, match="after 3 attempts"):
            judge.compare(*make_bench(1))
        assert s.n_requests == 3  # 1 + 2 retries, then stop: the other order is never sent
    with LoopbackChatServer(lambda req: LoopbackReply(status=400, content="bad request")) as s:
        with pytest.raises(JudgeError, match="not retryable.*400"):
            make_judge(s, max_retries=5, max_concurrency=1).compare(*make_bench(1))
        assert s.n_requests == 1
    with LoopbackChatServer(lambda req: LoopbackReply(status=401)) as s:
        with pytest.raises(JudgeError, match="check the API key") as info:
            make_judge(s, max_concurrency=1).ask("q", "a", "b")
        assert SECRET not in str(info.value)


def test_backoff_is_exponential_with_jitter_and_capped():
    with LoopbackChatServer(lambda req: LoopbackReply(status=429)) as s:
        judge = make_judge(s, max_retries=6, retry_base_delay=1.0, retry_max_delay=8.0)
        sleeps: list[float] = []
        judge._sleep = sleeps.append  # record instead of sleeping
        with pytest.raises(JudgeError):
            judge.ask("q", "a", "b")
    assert len(sleeps) == 6
    for i, d in enumerate(sleeps):
        cap = min(8.0, 2.0**i)
        assert cap / 2 <= d <= cap
    assert len(set(sleeps)) > 1


def test_retry_after_header_is_honoured():
    n = {"i": 0}

    def responder(req):
        n["i"] += 1
        return LoopbackReply(status=429, headers={"Retry-After": "5"}) if n["i"] == 1 else "5 5"

    with LoopbackChatServer(responder) as s:
        judge = make_judge(s, retry_base_delay=0.001, retry_max_delay=3.0)
        sleeps: list[float] = []
        judge._sleep = sleeps.append
        assert judge.ask("q", "a", "b") == "5 5"
    assert sleeps == [3.0]  # the header's 5 s, capped at retry_max_delay


def test_concurrency_limit_is_respected(tmp_path):
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def responder(req):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.03)
        with lock:
            state["now"] -= 1
        return scripted(req)

    with LoopbackChatServer(responder) as s:
        make_judge(s, tmp_path, max_concurrency=3).compare(*make_bench(8))
    assert 2 <= state["peak"] <= 3


class CrashingClient:
    """Forwards to a real client and raises after ``after`` successful calls (a crash mid-run)."""

    def __init__(self, inner, after: int):
        self.inner, self.after, self.calls = inner, after, 0
        self.chat = self
        self.completions = self
        self.lock = threading.Lock()

    def create(self, **kw):
        with self.lock:
            self.calls += 1
            if self.calls > self.after:
                raise RuntimeError("simulated crash")
        return self.inner.chat.completions.create(**kw)


def test_crash_mid_run_then_resume_never_pays_twice(server, tmp_path):
    import openai

    bench, answers = make_bench(10)
    real = openai.OpenAI(base_url=server.url, api_key=SECRET, max_retries=0)
    crashing = PairwiseJudge("judge-model", client=CrashingClient(real, after=7), cache=tmp_path / "c.sqlite",
                             max_concurrency=2, progress=False)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.compare(bench, answers)
    paid_before = server.n_requests
    assert paid_before == 7
    assert len(JudgeCache(tmp_path / "c.sqlite")) == 7

    resumed = make_judge(server, cache=tmp_path / "c.sqlite", max_concurrency=4)
    report = resumed.compare(bench, answers)
    assert report.n_cached == 7 and report.n_requests == 13
    assert server.n_requests == 20  # every judgment paid exactly once over both runs
    again = make_judge(server, cache=tmp_path / "c.sqlite").compare(bench, answers)
    assert server.n_requests == 20 and again.n_cached == 20
    np.testing.assert_array_equal(again.model_scores, report.model_scores)


def test_crash_by_permanent_server_error_then_resume(tmp_path):
    state = {"n": 0, "broken": True}

    def responder(req):
        state["n"] += 1
        if state["broken"] and state["n"] > 5:
            return LoopbackReply(status=400, content="quota exceeded")
        return scripted(req)

    with LoopbackChatServer(responder) as s:
        bench, answers = make_bench(6)
        with pytest.raises(JudgeError):
            make_judge(s, tmp_path, max_concurrency=1).compare(bench, answers)
        assert s.n_requests == 6  # 5 answered, the 6th failed
        state["broken"] = False
        report = make_judge(s, tmp_path, max_concurrency=1).compare(bench, answers)
        assert report.n_cached == 5 and report.n_requests == 7 and s.n_requests == 13


def test_cache_key_covers_model_and_answers(server, tmp_path):
    bench, answers = make_bench(2)
    make_judge(server, tmp_path).compare(bench, answers)
    assert server.n_requests == 4
    PairwiseJudge("other-judge", base_url=server.url, api_key=SECRET, cache=tmp_path / "cache.sqlite",
                  progress=False).compare(bench, answers)
    assert server.n_requests == 8
    changed = ["changed answer #3", answers[1]]
    make_judge(server, tmp_path).compare(bench, changed)
    assert server.n_requests == 10  # only question 0's two orders are new


def test_api_key_never_stored(server, tmp_path, caplog, monkeypatch):
    import logging

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    judge = PairwiseJudge("judge-model", base_url=server.url, cache=tmp_path / "cache.sqlite", progress=False)
    report = judge.compare(*make_bench(3))
    report.save(tmp_path / "report.json")
    assert server.auth_headers[0] == f"Bearer {SECRET}"  # the key was used...
    judge.cache.close()
    for path in tmp_path.iterdir():  # ...but is in no file: cache (+ WAL), report
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in repr(judge)
    assert SECRET not in caplog.text


def test_missing_key_for_openai_endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(JudgeError, match="OPENAI_API_KEY"):
        PairwiseJudge("gpt-4")
    PairwiseJudge("local-model", base_url="http://127.0.0.1:9/v1")  # local servers need no key


def test_missing_openai_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(OptionalDependencyError, match=r"diverseevol\[judge\]"):
        PairwiseJudge("gpt-4", api_key="x")


def test_package_imports_without_openai():
    code = (
        "import sys; sys.modules['openai'] = None\n"
        "import diverseevol.judge as j\n"
        "assert j.parse_scores('8 9') == (8.0, 9.0)\n"
        "assert 'matplotlib' not in sys.modules and 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_answers_by_id_and_missing_ids(server, tmp_path):
    bench, answers = make_bench(3)
    by_id = {qid: a for qid, a in zip(bench.ids, answers)}
    r1 = make_judge(server, tmp_path).compare(bench, dict(reversed(list(by_id.items()))))
    np.testing.assert_array_equal(r1.model_scores[:, 0], [score_of(a) for a in answers])
    del by_id["q1"]
    with pytest.raises(ValueError, match="q1"):
        make_judge(server, tmp_path).compare(bench, by_id)
    with pytest.raises(ValidationError, match="no reference answers"):
        make_judge(server, tmp_path).compare(Benchmark.from_lists("x", ["q"]), ["a"])


def test_constructor_validation():
    with pytest.raises(ValidationError):
        PairwiseJudge("m", api_key="k", max_concurrency=0)
    with pytest.raises(ValidationError, match="answer_2"):
        PairwiseJudge("m", api_key="k", template="{question} {answer_1}")


def test_failure_stops_other_requests_waiting_in_backoff(tmp_path):
    # Question 0 fails for good (HTTP 400); the others get 429 with a long backoff. The run must
    # end promptly instead of sleeping through the backoff, and nothing fails silently.
    def responder(req):
        q, _, _ = extract_answers(req)
        return LoopbackReply(status=400) if q == "question 0?" else LoopbackReply(status=429)

    with LoopbackChatServer(responder) as s:
        judge = make_judge(s, max_concurrency=4, retry_base_delay=30.0, retry_max_delay=30.0)
        start = time.perf_counter()
        with pytest.raises(JudgeError, match="not retryable"):
            judge.compare(*make_bench(4))
        assert time.perf_counter() - start < 10.0
