"""Issue 22 item 10: a typo in ``novelsum_params`` (subset_report, compare_samplers) is a typed
error that names the accepted keys, raised before any sampler runs."""

from __future__ import annotations

import numpy as np
import pytest

from diverseevol.compare import compare_samplers
from diverseevol.errors import DiverseEvolError, UnknownOptionError, ValidationError
from diverseevol.measurements import novelsum
from diverseevol.subset_report import subset_report

EMB = np.random.default_rng(0).normal(size=(60, 5))


@pytest.mark.parametrize("params, hint", [
    ({"alpah": 2.0}, "Did you mean 'alpha'"),
    ({"n_neighbours": 3}, "Did you mean 'n_neighbors'"),
    ({"block_rows": 5}, "alpha"),       # subset_report's own argument, not NovelSum's
    ({"reference_idx": [1, 2]}, "alpha"),
])
def test_an_unknown_novelsum_key_is_refused_naming_the_accepted_ones(params, hint):
    with pytest.raises(UnknownOptionError) as info:
        subset_report(EMB, np.arange(10), novelsum_params=params)
    text = str(info.value)
    assert isinstance(info.value, TypeError) and isinstance(info.value, DiverseEvolError)
    assert "novelsum_params" in text and hint in text and "n_neighbors" in text


@pytest.mark.parametrize("params", [["alpha"], "alpha", 3, {1: 2.0}])
def test_novelsum_params_that_are_no_mapping_of_names_are_refused(params):
    with pytest.raises(ValidationError, match="novelsum_params"):
        subset_report(EMB, np.arange(10), novelsum_params=params)


@pytest.mark.parametrize("params", [{"alpha": "x"}, {"beta": -1.0}, {"n_neighbors": 0}, {"alpha": True}])
def test_bad_novelsum_values_are_refused(params):
    with pytest.raises(ValidationError):
        subset_report(EMB, np.arange(10), novelsum_params=params)


def test_compare_checks_novelsum_params_before_any_sampler_runs(monkeypatch):
    import diverseevol.samplers.base as base

    ran = []
    monkeypatch.setattr(base, "run_sampler", lambda *a, **k: ran.append(a) or pytest.fail("a sampler ran"))
    for params in ({"alpah": 1.0}, {"beta": -1.0}):
        with pytest.raises(ValidationError, match="novelsum_params|beta"):
            compare_samplers(EMB, 5, "random", pool_size=10, novelsum_params=params)
    assert ran == []


def test_valid_novelsum_params_reach_novelsum():
    sub = np.arange(12)
    params = {"alpha": 2.0, "beta": 0.0, "n_neighbors": 3}
    report = subset_report(EMB, sub, novelsum_params=params)
    assert report.novelsum == pytest.approx(novelsum(EMB, sub, **params))
    assert report.params["alpha"] == 2.0
