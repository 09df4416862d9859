"""The declarative parameter check (`_validation.check_scalar` / `Interval`), on hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from diverseevol._validation import Interval, check_scalar
from diverseevol.errors import ValidationError


@pytest.mark.parametrize(
    ("value", "interval", "inside"),
    [
        (1, Interval(int, 1, None), True),
        (0, Interval(int, 1, None), False),
        (np.int64(7), Interval(int, 1, None), True),
        (True, Interval(int, 0, None), False),  # a flag is not a count
        (np.bool_(True), Interval(int, 0, None), False),
        (2.0, Interval(int, 0, None), False),  # a whole float is not an int
        ("3", Interval(int, 0, None), False),
        (0, Interval(int, 0, 3, closed="right"), False),
        (3, Interval(int, 0, 3, closed="right"), True),
        (3, Interval(int, 0, 3, closed="left"), False),
        (0.0, Interval(float, 0, 1, closed="left"), True),
        (1.0, Interval(float, 0, 1, closed="left"), False),
        (1, Interval(float, 0, 1), True),  # an int is a number
        (np.float32(0.5), Interval(float, 0, 1), True),
        (math.nan, Interval(float), False),
        (math.inf, Interval(float, 0, None), False),
        (math.inf, Interval(float, 0, None, finite=False), True),
        (-math.inf, Interval(float, 0, None, finite=False), False),
        (False, Interval(float), False),
    ],
)
def test_interval_membership(value, interval, inside):
    assert (value in interval) is inside


@pytest.mark.parametrize(
    ("interval", "text"),
    [
        (Interval(int, 1, None), "a positive int"),
        (Interval(int, 0, None, closed="right"), "a positive int"),
        (Interval(int, 0, None), "an int >= 0"),
        (Interval(int, 2, None), "an int >= 2"),
        (Interval(int, 0, 4), "an int in [0, 4]"),
        (Interval(int, None, 5, closed="left"), "an int < 5"),
        (Interval(float, 0, 1, closed="left"), "a number in [0, 1)"),
        (Interval(float, 0, None), "a finite number >= 0"),
        (Interval(float, 0, None, finite=False), "a number >= 0"),
        (Interval(float, 0.5, None, closed="neither"), "a finite number > 0.5"),
        (Interval(float), "a finite number"),
    ],
)
def test_interval_describes_itself(interval, text):
    assert interval.describe() == text


def test_check_scalar_returns_python_numbers_and_none_when_allowed():
    got = check_scalar(np.int64(4), "k", int, min_val=0)
    assert got == 4 and type(got) is int
    got = check_scalar(np.float32(0.25), "eig_floor", float, min_val=0, max_val=1)
    assert got == 0.25 and type(got) is float
    assert check_scalar(None, "n_threads", int, min_val=1, allow_none=True) is None


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (True, {"min_val": 1}, "n must be a positive int; got True."),
        (0, {"min_val": 1, "allow_none": True}, "n must be None or a positive int; got 0."),
        (3.0, {"min_val": 0}, "n must be an int >= 0; got 3.0. Pass int(3.0)."),
        (-1, {"min_val": 0, "what": "records to select"}, "n must be an int >= 0 (records to select); got -1."),
        (9, {"max_val": 8, "fix": "Lower it."}, "n must be an int <= 8; got 9. Lower it."),
    ],
)
def test_check_scalar_messages_say_expected_got_and_fix(value, kwargs, message):
    with pytest.raises(ValidationError) as info:
        check_scalar(value, "n", int, **kwargs)
    assert str(info.value) == message


def test_check_scalar_takes_an_interval_and_another_error_type():
    with pytest.raises(IndexError, match=r"round must be an int in \[0, 2\] \(the pools decided\); got 3\."):
        check_scalar(3, "round", Interval(int, 0, 2), what="the pools decided", error=IndexError)
    with pytest.raises(ValidationError, match=r"must be a number in \[0, 1\); got nan"):
        check_scalar(math.nan, "eig_floor", Interval(float, 0, 1, closed="left"))


def test_interval_refuses_a_kind_it_does_not_know():
    with pytest.raises(TypeError):
        Interval(str)
    with pytest.raises(ValueError):
        Interval(int, 0, 1, closed="open")  # type: ignore[arg-type]
