"""Each vocabulary has one home: the copies that lived in report, testing, run.settings and the HF
scorer are the owner's objects now."""

from __future__ import annotations

import numpy as np
import pytest


def test_uncertainty_scores_are_the_samplers_signals():
    from diverseevol.samplers import EntropySampler, LeastConfidenceSampler, MarginSampler
    from diverseevol.samplers.uncertainty import UNCERTAINTY_SCORES
    from diverseevol.testing import make_context

    assert UNCERTAINTY_SCORES == ("confidence", "margin", "entropy")
    assert [c.signal for c in (LeastConfidenceSampler, MarginSampler, EntropySampler)] == list(UNCERTAINTY_SCORES)
    assert set(UNCERTAINTY_SCORES) <= set(make_context(n=40, n_pool=4).scores)


def test_hf_scorer_columns_are_the_uncertainty_scores_then_the_loss():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from diverseevol.hf.embedder import SCORE_NAMES
    from diverseevol.samplers.uncertainty import UNCERTAINTY_SCORES

    assert SCORE_NAMES == (*UNCERTAINTY_SCORES, "loss")


def test_pairwise_metric_names_come_from_the_judge_report():
    from diverseevol.judge import JudgeReport
    from diverseevol.judge.report import METRIC_NAMES
    from diverseevol.report import RunMetrics, judge_metrics

    report = JudgeReport("bench", ("q0",), np.array([[6.0, 7.0]]), np.array([[5.0, 5.0]]), [["6 5", "5 7"]])
    keys = list(report.metrics())
    assert keys == [f"bench/{name}" for name in METRIC_NAMES] == ["bench/rs", "bench/wtr", "bench/invalid", "bench/n_valid"]
    row = {"round": 0, "pool_size": 4, **report.metrics(), "accuracy": 0.5}
    assert judge_metrics([RunMetrics("run", [row])]) == ["accuracy"]  # the report's own keys are not judge metrics


def test_radius_metrics_and_modes_have_one_home():
    from diverseevol.kernels.contract import METRICS
    from diverseevol.run import settings

    assert settings.MODES == (settings.ITERATIVE, settings.ONE_TIME) == ("iterative", "one_time")
    from diverseevol.measurements import RADIUS_METRICS
    from diverseevol.samplers.spec import MODES

    assert settings.MODES is MODES
    assert not hasattr(settings, "_RADIUS_METRICS") and settings.RADIUS_METRICS is RADIUS_METRICS is METRICS
