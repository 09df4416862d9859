"""RS, WTR and the per-round summary against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diverseevol.errors import ValidationError
from diverseevol.judge import relative_score, summarize_rounds, valid_questions, win_tie_rate


def test_hand_computed_case():
    # q0: model 8+7=15, ref 9+9=18 (loss); q1: 9+9=18 vs 9+8=17 (win); q2: 6+8=14 vs 7+7=14 (tie)
    model = [[8, 7], [9, 9], [6, 8]]
    ref = [[9, 9], [9, 8], [7, 7]]
    assert relative_score(model, ref) == pytest.approx(100 * 47 / 49)
    assert win_tie_rate(model, ref) == pytest.approx(100 * 2 / 3)


def test_wtr_sums_orders_before_comparing():
    # Loses order 0 by 3, wins order 1 by 1: the question is lost overall (a per-order count would say 50%).
    assert win_tie_rate([[5, 9]], [[8, 8]]) == 0.0
    assert win_tie_rate([[5, 9.5]], [[8, 6.5]]) == 100.0


def test_one_dimensional_scores_are_one_order():
    assert relative_score([8, 6], [8, 8]) == pytest.approx(87.5)
    assert win_tie_rate([8, 6], [8, 8]) == 50.0


def test_nan_raises_by_default_and_is_omitted_on_request():
    model = np.array([[8, np.nan], [9, 9], [5, 5]])
    ref = np.array([[1, 1], [8, 8], [6, 6]])
    with pytest.raises(ValidationError, match="nan_policy='omit'"):
        relative_score(model, ref)
    with pytest.raises(ValidationError, match="NaN"):
        win_tie_rate(model, ref)
    # Question 0 is dropped entirely: its valid order (8 vs 1) must not count.
    assert relative_score(model, ref, nan_policy="omit") == pytest.approx(100 * 28 / 28)
    assert win_tie_rate(model, ref, nan_policy="omit") == 50.0
    assert valid_questions(model, ref).tolist() == [False, True, True]


def test_all_invalid_is_an_error_not_a_score():
    nan = np.full((2, 2), np.nan)
    with pytest.raises(ValidationError, match="no question"):
        relative_score(nan, nan, nan_policy="omit")


@pytest.mark.parametrize(
    "model, ref, match",
    [
        ([[1, 2]], [[1, 2], [3, 4]], "same shape"),
        (np.ones((2, 2, 2)), np.ones((2, 2, 2)), "n_questions, n_orders"),
        (np.ones((0, 2)), np.ones((0, 2)), "empty"),
        ([[np.inf, 1]], [[1, 1]], "infinite"),
    ],
)
def test_bad_shapes(model, ref, match):
    with pytest.raises(ValidationError, match=match):
        relative_score(model, ref)


def test_bad_nan_policy():
    with pytest.raises(ValidationError, match="nan_policy"):
        win_tie_rate([[1]], [[1]], nan_policy="zero")


def test_zero_reference_total():
    assert math.isinf(relative_score([[1]], [[0]]))
    assert math.isnan(relative_score([[0]], [[0]]))


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 20).flatmap(
        lambda n: st.tuples(
            st.lists(st.lists(st.integers(1, 10), min_size=2, max_size=2), min_size=n, max_size=n),
            st.lists(st.lists(st.integers(1, 10), min_size=2, max_size=2), min_size=n, max_size=n),
        )
    )
)
def test_against_loops(pair):
    model, ref = pair
    rs = 100 * sum(map(sum, model)) / sum(map(sum, ref))
    wtr = 100 * sum(sum(m) >= sum(r) for m, r in zip(model, ref)) / len(model)
    assert relative_score(model, ref) == pytest.approx(rs)
    assert win_tie_rate(model, ref) == pytest.approx(wtr)
    # Swapping roles: RS inverts, and WTR(model) + WTR(ref) = 100 + 100 * ties / n.
    ties = sum(sum(m) == sum(r) for m, r in zip(model, ref))
    assert relative_score(ref, model) == pytest.approx(1e4 / rs)
    assert win_tie_rate(model, ref) + win_tie_rate(ref, model) == pytest.approx(100 + 100 * ties / len(model))


def test_summarize_rounds():
    s = summarize_rounds([0, 1, 2, 3], [100, 200, 300, 400], [80.0, 85.0, 85.0, 70.0], [40.0, 30.0, 45.0, 45.0])
    assert (s.peak_rs, s.n_best, s.peak_round) == (85.0, 200, 1)  # tie -> earliest round
    assert (s.best_wtr, s.best_wtr_round) == (45.0, 2)
    assert s.n_rounds == 4


def test_summarize_rounds_skips_nan_rounds():
    s = summarize_rounds([0, 1], [100, 200], [float("nan"), 70.0], [float("nan"), 20.0])
    assert (s.peak_rs, s.n_best, s.best_wtr, s.n_rounds) == (70.0, 200, 20.0, 1)


def test_summarize_rounds_errors():
    with pytest.raises(ValidationError, match="one length"):
        summarize_rounds([0, 1], [100], [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValidationError, match="no round"):
        summarize_rounds([0], [100], [float("nan")], [float("nan")])
