"""One home per judge name: the loop judge's module, the one Judge protocol, and the old import paths."""

from __future__ import annotations

import warnings

import pytest


def test_pairwise_loop_judge_lives_in_loop_judge_and_old_path_still_works() -> None:
    from diverseevol.judge import PairwiseLoopJudge
    from diverseevol.judge.loop_judge import PairwiseLoopJudge as new

    with pytest.warns(DeprecationWarning, match=r"diverseevol\.judge\.llm is deprecated.*diverseevol\.judge"):
        from diverseevol.judge.llm import PairwiseLoopJudge as old

    assert PairwiseLoopJudge is new is old
    assert new.__module__ == "diverseevol.judge.loop_judge"


def test_there_is_one_judge_protocol() -> None:
    from diverseevol.judge import Judge as from_package
    from diverseevol.judge.protocol import Judge as from_judge_module
    from diverseevol.protocols import Judge

    assert from_package is from_judge_module is Judge


@pytest.mark.parametrize("judge_factory", ["exact_match", "plain_function"])
def test_judges_satisfy_the_protocol(judge_factory: str) -> None:
    from diverseevol.judge import ExactMatchJudge
    from diverseevol.protocols import Judge

    def judge(model: object, round: int) -> dict[str, float]:
        return {"score": 1.0}

    obj = ExactMatchJudge(["q"], ["a"], lambda m, p: ["a"]) if judge_factory == "exact_match" else judge
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(obj, Judge)
    assert not isinstance(object(), Judge)
