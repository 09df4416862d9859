"""Fault injection for PairwiseJudge: every failure the judge retries, injected by the loopback server.

Each fault is injected on one judgment (question 1, model answer shown first) of a 3-question run,
over real HTTP with the real openai client. A transient fault (twice, then a good reply) must leave
the report exactly as a fault-free run's; a persistent fault must cost exactly 1 + max_retries
attempts, then either fail the run with a JudgeError (transport faults) or record that judgment as
invalid and score every other question (malformed replies), without caching the failure.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from diverseevol.errors import JudgeError
from diverseevol.judge import Benchmark, JudgeCache, PairwiseJudge
from diverseevol.judge.loopback import LoopbackChatServer, LoopbackReply, extract_answers

pytest.importorskip("openai")

KEY = "sk-fault-injection-key-0123456789abcdef"
CLIENT_TIMEOUT = 0.3

#: Transport faults: retried, and after the retries the run fails with a JudgeError naming the reason.
TRANSPORT_FAULTS = {
    "http_429": (LoopbackReply(status=429, content="slow down", headers={"Retry-After": "0"}), "HTTP 429"),
    "http_408": (LoopbackReply(status=408), "HTTP 408"),
    "http_409": (LoopbackReply(status=409), "HTTP 409"),
    "http_500": (LoopbackReply(status=500, content="boom"), "HTTP 500"),
    "http_502": (LoopbackReply(status=502), "HTTP 502"),
    "http_503": (LoopbackReply(status=503), "HTTP 503"),
    "http_504": (LoopbackReply(status=504), "HTTP 504"),
    "timeout": (LoopbackReply(content="1 1", delay=CLIENT_TIMEOUT * 3), "timeout"),
    "connection_dropped": (LoopbackReply(drop=True), "connection error"),
}

_COMPLETION = {"id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": "judge-model"}

#: Malformed 200 replies: retried, and after the retries recorded as invalid for that judgment.
REPLY_FAULTS = {
    "cut_json_body": LoopbackReply(body='{"id": "chatcmpl-x", "choices": [{"index": 0, "mess'),
    "html_body": LoopbackReply(body="<html><body>502 Bad Gateway</body></html>"),
    "empty_body": LoopbackReply(body=b""),
    "empty_choices": LoopbackReply(body={**_COMPLETION, "choices": []}),
    "null_choices": LoopbackReply(body={**_COMPLETION, "choices": None}),
    "choice_without_message": LoopbackReply(body={**_COMPLETION, "choices": [{"index": 0, "finish_reason": "stop"}]}),
}

#: Not retried: the run fails at the first attempt.
PERMANENT_FAULTS = {
    "http_400": LoopbackReply(status=400, content="bad request"),
    "http_401": LoopbackReply(status=401, content="bad key"),
    "http_403": LoopbackReply(status=403),
    "http_404": LoopbackReply(status=404),
    "http_422": LoopbackReply(status=422),
}


def _score(answer: str) -> int:
    return int(answer.rsplit("#", 1)[1])


def _bench() -> tuple[Benchmark, list[str]]:
    refs = ["ref zero #4", "ref one #7", "ref two #2"]
    answers = ["model zero #9", "model one #3", "model two #5"]
    return Benchmark.from_lists("toy", ["q zero?", "q one?", "q two?"], refs, ids=["q0", "q1", "q2"]), answers


class FaultyJudgeServer:
    """Scripted judge that injects ``fault`` on the first ``times`` requests for (q one?, model first)."""

    def __init__(self, fault: LoopbackReply, times: int) -> None:
        self.fault, self.times, self.injected = fault, times, 0
        self.lock = threading.Lock()
        self.server = LoopbackChatServer(self.respond)

    def respond(self, request: dict) -> str | LoopbackReply:
        q, a1, a2 = extract_answers(request)
        with self.lock:
            if q == "q one?" and a1.startswith("model") and self.injected < self.times:
                self.injected += 1
                return self.fault
        return f"{_score(a1)} {_score(a2)}\nscripted"


def _judge(url: str, cache=None, **kw) -> PairwiseJudge:
    kw.setdefault("max_retries", 2)
    return PairwiseJudge(
        "judge-model", base_url=url, api_key=KEY, cache=cache, max_concurrency=1, retry_base_delay=0.001,
        retry_max_delay=0.01, timeout=CLIENT_TIMEOUT, progress=False, **kw,
    )


EXPECTED_MODEL = np.array([[9, 9], [3, 3], [5, 5]], dtype=float)
EXPECTED_REF = np.array([[4, 4], [7, 7], [2, 2]], dtype=float)


@pytest.mark.parametrize("name", sorted(TRANSPORT_FAULTS) + sorted(REPLY_FAULTS))
def test_transient_fault_is_retried_and_the_report_is_unchanged(name, tmp_path):
    fault = TRANSPORT_FAULTS[name][0] if name in TRANSPORT_FAULTS else REPLY_FAULTS[name]
    faulty = FaultyJudgeServer(fault, times=2)
    with faulty.server as server:
        judge = _judge(server.url, tmp_path / "c.sqlite")
        report = judge.compare(*_bench())
        assert server.n_requests == 6 + 2
    assert judge.n_attempts == 8 and report.n_requests == 6
    assert report.n_invalid == 0
    np.testing.assert_array_equal(report.model_scores, EXPECTED_MODEL)
    np.testing.assert_array_equal(report.reference_scores, EXPECTED_REF)


@pytest.mark.parametrize("name", sorted(TRANSPORT_FAULTS))
def test_persistent_transport_fault_fails_the_run_after_the_retries(name):
    fault, reason = TRANSPORT_FAULTS[name]
    faulty = FaultyJudgeServer(fault, times=10**6)
    with faulty.server as server:
        judge = _judge(server.url)
        with pytest.raises(JudgeError, match=f"after 3 attempts \\({reason}\\)") as info:
            judge.compare(*_bench())
    assert faulty.injected == 3  # 1 + max_retries
    assert KEY not in str(info.value)


@pytest.mark.parametrize("name", sorted(REPLY_FAULTS))
def test_persistent_malformed_reply_is_recorded_invalid_and_the_run_goes_on(name, tmp_path):
    faulty = FaultyJudgeServer(REPLY_FAULTS[name], times=10**6)
    cache = tmp_path / "c.sqlite"
    with faulty.server as server:
        report = _judge(server.url, cache).compare(*_bench())
        assert faulty.injected == 3  # 1 + max_retries, then given up for this judgment only
        assert server.n_requests == 5 + 3
    assert report.n_invalid == 1
    (bad,) = report.invalid
    assert (bad.question_id, bad.order, bad.reply) == ("q1", 0, "")
    assert "3 attempts" in bad.error and "malformed reply" in bad.error
    assert report.excluded_ids == ["q1"] and report.n_valid == 2
    assert np.isnan(report.model_scores[1, 0]) and report.model_scores[1, 1] == 3
    np.testing.assert_array_equal(report.model_scores[[0, 2]], EXPECTED_MODEL[[0, 2]])
    assert json.loads(json.dumps(report.to_dict()))["invalid"][0]["error"] == bad.error
    # The failure is not cached: a rerun against a healthy server asks for that judgment only.
    assert len(JudgeCache(cache)) == 5
    with LoopbackChatServer(FaultyJudgeServer(REPLY_FAULTS[name], times=0).respond) as healthy:
        again = _judge(healthy.url, cache).compare(*_bench())
        assert healthy.n_requests == 1
    assert again.n_invalid == 0 and again.n_cached == 5
    np.testing.assert_array_equal(again.model_scores, EXPECTED_MODEL)


@pytest.mark.parametrize("name", sorted(REPLY_FAULTS))
def test_single_ask_raises_a_judge_error_after_the_retries(name):
    faulty = FaultyJudgeServer(REPLY_FAULTS[name], times=10**6)
    with faulty.server as server:
        with pytest.raises(JudgeError, match="after 3 attempts \\(malformed reply"):
            _judge(server.url).ask("q one?", "model one #3", "ref one #7")
    assert faulty.injected == 3


@pytest.mark.parametrize("name", sorted(PERMANENT_FAULTS))
def test_permanent_fault_is_not_retried(name):
    faulty = FaultyJudgeServer(PERMANENT_FAULTS[name], times=10**6)
    with faulty.server as server:
        with pytest.raises(JudgeError, match="not retryable"):
            _judge(server.url, max_retries=5).compare(*_bench())
    assert faulty.injected == 1
