"""No judge error, log line or report carries the API key or another key-shaped string."""

from __future__ import annotations

import json
import logging
import traceback

import pytest

from diverseevol._files import REDACTED, redact_text
from diverseevol.errors import JudgeError
from diverseevol.judge import Benchmark, PairwiseJudge
from diverseevol.judge.loopback import LoopbackChatServer, LoopbackReply, extract_answers

pytest.importorskip("openai")

KEY = "sk-proj-CONFIGURED-key-0123456789abcdefXYZ"
OTHER = "sk-someone-elses-key-9876543210zyxwvu"
PLAIN_KEY = "local-server-password-42"  # the configured key of a local server: not key-shaped


# ---- the redaction function ------------------------------------------------------------------
def test_redact_text_removes_key_shaped_strings_and_given_secrets():
    text = (
        f"Incorrect API key provided: {KEY}. Header: Authorization: Bearer {OTHER}; "
        f"token hf_abcdefghijklmnopqrstuvwxyz0123 and {PLAIN_KEY} echoed."
    )
    out = redact_text(text, secrets=[PLAIN_KEY])
    for secret in (KEY, OTHER, PLAIN_KEY, "hf_abcdefghijklmnopqrstuvwxyz0123", "CONFIGURED", "elses-key"):
        assert secret not in out
    assert out.count(REDACTED) >= 4
    assert out.startswith("Incorrect API key provided: ") and "echoed." in out


def test_redact_text_keeps_ordinary_text():
    text = "HTTP 400: max_tokens must be <= 4096; model sk-1 (short) and task-specific words stay; Bearer"
    assert redact_text(text) == text
    assert redact_text("key x in text", secrets=["x", "", None]) == "key x in text"  # too short to be a key


def test_redact_text_handles_key_value_pairs():
    out = redact_text('{"api_key": "abc123secretvalue", "password": "hunter22", "max_tokens": 5}')
    assert "abc123secretvalue" not in out and "hunter22" not in out and '"max_tokens": 5' in out


# ---- the judge -------------------------------------------------------------------------------
def _bench() -> tuple[Benchmark, list[str]]:
    return Benchmark.from_lists("toy", ["q zero?", "q one?"], ["r0", "r1"], ids=["q0", "q1"]), ["a0", "a1"]


def _echo(status: int, key: str) -> LoopbackReply:
    return LoopbackReply(status=status, content=f"Incorrect API key provided: {key}; also saw Bearer {OTHER}")


ECHOES = {
    "http_400_echo": lambda key: _echo(400, key),
    "http_401_echo": lambda key: _echo(401, key),
    "http_500_echo": lambda key: _echo(500, key),
    "malformed_200_echo": lambda key: LoopbackReply(body={"id": key, "object": "chat.completion", "choices": []}),
    "html_200_echo": lambda key: LoopbackReply(body=f"<html>key={key} Bearer {OTHER}</html>"),
}


def _assert_clean(text: str, key: str) -> None:
    assert key not in text and OTHER not in text


@pytest.mark.parametrize("configured", [KEY, PLAIN_KEY])
@pytest.mark.parametrize("name", sorted(ECHOES))
def test_server_echoing_the_key_never_leaks_it(name, configured, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    fault = ECHOES[name](configured)

    def responder(req):
        q, a1, _ = extract_answers(req)
        return fault if q == "q one?" else "7 7"

    with LoopbackChatServer(responder) as server:
        judge = PairwiseJudge("judge-model", base_url=server.url, api_key=configured, max_retries=1,
                              retry_base_delay=0.001, retry_max_delay=0.001, max_concurrency=1, progress=False)
        try:
            report = judge.compare(*_bench())
        except JudgeError as exc:
            chain = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            _assert_clean(chain, configured)  # the message and every chained cause
            assert REDACTED in str(exc) or name == "http_500_echo"
        else:
            assert name.endswith("_200_echo")
            assert report.n_invalid == 2
            report.save(tmp_path / "report.json")
            _assert_clean((tmp_path / "report.json").read_text(), configured)
            _assert_clean(json.dumps(report.to_dict()), configured)
        with pytest.raises(JudgeError) as single:
            judge.ask("q one?", "a1", "r1")
    _assert_clean("".join(traceback.format_exception(single.type, single.value, single.tb)), configured)
    _assert_clean(caplog.text, configured)
    assert server.auth_headers[0] == f"Bearer {configured}"  # the key was really sent
