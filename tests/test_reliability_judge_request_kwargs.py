"""Issue 22 item 8: the pairwise judge's ``request_kwargs`` are checked when the judge is configured
(the configuration file, ``PairwiseJudge(...)``), not at its first request after round 0 trained."""

from __future__ import annotations

from pathlib import Path

import pytest

from diverseevol.config import load_config
from diverseevol.errors import ConfigError, ValidationError
from diverseevol.judge.request_kwargs import check_request_kwargs

openai = pytest.importorskip("openai")


def _config(tmp_path: Path, request_kwargs: str) -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "run_dir: runs/x\ndata: {path: d.jsonl}\nmodel: {name_or_path: m}\n"
        "judge:\n  type: pairwise\n  path: t.jsonl\n  references: r.jsonl\n"
        f"  params: {{model: gpt-4, request_kwargs: {request_kwargs}}}\n"
    )
    return cfg


@pytest.mark.parametrize(
    "value, words",
    [
        ("{temprature: 0}", ["judge.params.request_kwargs.temprature", "Did you mean 'temperature'"]),
        ("{model: gpt-3}", ["judge.params.request_kwargs.model", "PairwiseJudge(model=...)"]),
        ("{messages: []}", ["request_kwargs.messages", "template"]),
        ("{stream: true}", ["request_kwargs.stream", "whole replies"]),
        ("[seed, 0]", ["must be a mapping", "a list"]),
        ("{extra_headers: {X-Team: 3}}", ["extra_headers must map header names to string values", "'X-Team': 'int'"]),
        ("{seed: .nan}", ["request_kwargs.seed", "JSON values"]),
    ],
)
def test_bad_request_kwargs_are_refused_when_the_file_is_read(tmp_path, value, words):
    with pytest.raises(ConfigError) as info:
        load_config(_config(tmp_path, value))
    text = str(info.value)
    assert str(tmp_path / "c.yaml") in text
    for word in words:
        assert word in text, (word, text)


def test_good_request_kwargs_pass(tmp_path):
    config = load_config(_config(tmp_path, "{seed: 0, top_p: 0.9, extra_headers: {X-Team: nlp}, extra_body: {a: 1}}"))
    assert config.judge.params["request_kwargs"]["seed"] == 0


def test_the_judge_refuses_them_when_built():
    from diverseevol.judge import PairwiseJudge

    with pytest.raises(ValidationError, match="Did you mean 'max_tokens'"):
        PairwiseJudge("m", base_url="http://127.0.0.1:9/v1", api_key="x", request_kwargs={"max_token": 5})
    with pytest.raises(ValidationError, match="request_kwargs.model"):
        PairwiseJudge("m", base_url="http://127.0.0.1:9/v1", api_key="x", request_kwargs={"model": "other"})
    judge = PairwiseJudge("m", base_url="http://127.0.0.1:9/v1", api_key="x", request_kwargs={"seed": 1})
    assert judge.request_kwargs == {"seed": 1}
    # a custom client takes any argument name, but not the judge's own
    custom = PairwiseJudge("m", client=object(), request_kwargs={"my_option": 1})
    assert custom.request_kwargs == {"my_option": 1}
    with pytest.raises(ValidationError, match="request_kwargs.messages"):
        PairwiseJudge("m", client=object(), request_kwargs={"messages": []})


def test_check_request_kwargs_names_no_header_value():
    with pytest.raises(ValidationError) as info:
        check_request_kwargs({"extra_headers": {"Authorization": 12345678}})
    assert "12345678" not in str(info.value)
    assert check_request_kwargs(None) == {}
