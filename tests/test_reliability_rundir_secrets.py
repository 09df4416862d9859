"""Issue 22 item 4 (and item 12's garbled refusal): no secret reaches a run directory in clear.

A judge configured with an ``Authorization`` header and a ``base_url`` with ``user:pass@``, and a
judge returning ``{"api_key": ...}``: every file under the run directory is read back as bytes
and must not hold the secrets; ``run --check`` prints none of them; the refusal of an API key in a
configuration file reads as written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import loop_fakes as fakes

from diverseevol._files import REDACTED, redact_secrets, redact_text
from diverseevol.run.result import EvolutionResult

BEARER = "abc123BearerToken987zyx"
PASSWORD = "pa55w0rdInUrl"
RETURNED = "returned-by-the-judge-0123456789"
URL = f"http://alice:{PASSWORD}@judge.example:8000/v1"


@pytest.fixture(autouse=True)
def _fast_disk(monkeypatch):
    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "0")


class LeakyJudge(fakes.FakeJudge):
    """A judge whose settings carry credentials and whose metrics carry a key."""

    def get_config(self) -> dict:
        return {
            "base_url": URL,
            "request_kwargs": {"seed": 0, "extra_headers": {"Authorization": f"Bearer {BEARER}",
                                                            "X-Team": "nlp"}},
        }

    def __call__(self, model, round):
        out = super().__call__(model, round)
        return {**out, "api_key": RETURNED, "details": {"session_token": RETURNED, "n": 3}}


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_no_secret_reaches_the_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    result = fakes.small_loop(run_dir, embedder=fakes.FakeEmbedder(), judge=LeakyJudge()).run()
    stored = _all_bytes(run_dir)
    for secret in (BEARER, PASSWORD, RETURNED):
        assert secret.encode() not in stored, secret
    header = json.loads((run_dir / "config.json").read_text())
    judge = header["config"]["components"]["judge"]["params"]
    assert judge["base_url"] == f"http://alice:{REDACTED}@judge.example:8000/v1"  # the host stays readable
    assert judge["request_kwargs"]["extra_headers"] == {"Authorization": REDACTED, "X-Team": "nlp"}
    assert judge["request_kwargs"]["seed"] == 0
    row = json.loads((run_dir / "rounds" / "round_001" / "judge.json").read_text())["metrics"]
    assert row["api_key"] == REDACTED and row["details"] == {"session_token": REDACTED, "n": 3}
    assert row["accuracy"] == pytest.approx(result.metrics[1]["accuracy"])
    # what the run returns is what it wrote: a resume replays the same rows
    assert result.metrics == EvolutionResult.load(run_dir).metrics
    assert all(m["api_key"] == REDACTED for m in result.metrics)


def test_redact_secrets_covers_headers_and_url_credentials():
    got = redact_secrets({
        "extra_headers": {"Authorization": "Bearer x", "Proxy-Authorization": "Basic y", "Cookie": "s=1",
                          "X-Api-Key": "k", "Accept": "json"},
        "base_url": URL, "plain_url": "https://example.org/v1?x=1", "tokenizer": "gpt2", "max_tokens": 5,
        "note": f"Bearer {BEARER}",
    })
    assert got["extra_headers"] == {"Authorization": REDACTED, "Proxy-Authorization": REDACTED,
                                    "Cookie": REDACTED, "X-Api-Key": REDACTED, "Accept": "json"}
    assert got["base_url"] == f"http://alice:{REDACTED}@judge.example:8000/v1"
    assert got["plain_url"] == "https://example.org/v1?x=1"
    assert got["tokenizer"] == "gpt2" and got["max_tokens"] == 5
    assert BEARER not in got["note"]


def test_redact_text_keeps_prose_after_a_secret_name():
    refusal = "c.yaml: judge.params.api_key: the judge's API key is never read from a configuration file."
    assert redact_text(refusal) == refusal
    assert redact_text("judge.params.token: not an argument of PairwiseJudge.") == (
        "judge.params.token: not an argument of PairwiseJudge.")
    for secret_text in ("password: hunter22", "api_key=sk1", "token: AbCdEf", 'password: "x1"', "secret:  Zq9Zq9Zq9"):
        out = redact_text(secret_text)
        assert REDACTED in out, secret_text
    assert PASSWORD not in redact_text(f"cannot reach {URL}: refused")


def _config(tmp_path: Path, params: str) -> Path:
    for name in ("d.jsonl", "t.jsonl", "r.jsonl"):
        (tmp_path / name).write_text('{"instruction": "a", "input": "", "output": "b"}\n')
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "run_dir: runs/x\ndata: {path: d.jsonl}\nmodel: {name_or_path: m}\n"
        f"judge:\n  type: pairwise\n  path: t.jsonl\n  references: r.jsonl\n  params: {params}\n"
    )
    return cfg


def test_run_check_prints_no_header_or_url_secret(tmp_path, capsys):
    from diverseevol.cli import EXIT_OK, main

    cfg = _config(tmp_path, f'{{base_url: "{URL}", request_kwargs: {{extra_headers: '
                            f'{{Authorization: "Bearer {BEARER}"}}}}}}')
    assert main(["run", str(cfg), "--check"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert BEARER not in out + err and PASSWORD not in out + err
    assert "judge.example:8000" in out


def test_the_api_key_refusal_is_not_garbled_by_its_own_redaction(tmp_path, capsys):
    from diverseevol.cli import EXIT_USAGE, main

    cfg = _config(tmp_path, "{api_key: sk-abc}")
    assert main(["run", str(cfg), "--check"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "judge.params.api_key" in err and "the judge's API key is never read" in err
    assert "sk-abc" not in err


def test_the_judge_repr_shows_no_url_password():
    pytest.importorskip("openai")
    from diverseevol.judge import PairwiseJudge

    text = repr(PairwiseJudge("m", base_url=URL, api_key="x"))
    assert PASSWORD not in text and "judge.example:8000" in text
