"""Fuzz vendi_score: q of every kind (0, negative, inf, huge, NaN, strings, bools), odd arrays, options.

Oracle (tests/fuzz_support.py): a correct result or a typed DiverseEvolError with a message. A
result is a finite float in [1, min(n, d)] (up to rounding); for finite inputs both Gram sides
(``method="covariance"`` and ``"kernel"``) agree; the score does not increase with q; the caller's
array is never changed.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import numpy as np
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

sys.path.insert(0, str(Path(__file__).parent))

from fuzz_support import examples, outcome

from diverseevol import vendi_score

q_values = st.one_of(
    st.floats(0, 10),
    st.floats(0, 1e300),
    st.sampled_from(
        [
            0,
            0.0,
            1,
            2,
            -0.0,
            -1,
            -1e-300,
            math.inf,
            -math.inf,
            math.nan,
            1e308,
            2**80,
            True,
            False,
            "inf",
            "Infinity",
            " INF ",
            "2",
            "",
            None,
            [1],
            1j,
            np.float32(2),
            np.int64(3),
            np.uint64(2**63),
            np.float64("nan"),
            np.longdouble(4),
        ]
    ),
)

odd_values = st.sampled_from([0.0, 1e-300, 1e-30, 1e200, -1e200, 1e308, -1e308, float("nan"), float("inf")])


@st.composite
def vendi_inputs(draw):
    kind = draw(
        st.sampled_from(["clean", "clean", "odd_values", "odd_dtype", "odd_shape", "list", "zero_rows"])
    )
    n, d = draw(st.integers(1, 9)), draw(st.integers(1, 6))
    if kind in ("clean", "zero_rows", "odd_values"):
        dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
        x = draw(hnp.arrays(np.float64, (n, d), elements=st.floats(-100, 100)))
        if kind == "zero_rows":
            x[draw(st.integers(0, n - 1))] = 0.0
        if kind == "odd_values":
            mask = draw(hnp.arrays(np.bool_, (n, d)))
            x = np.where(mask, draw(hnp.arrays(np.float64, (n, d), elements=odd_values)), x)
        with np.errstate(over="ignore"):
            return x.astype(dtype), kind == "clean" and dtype is not np.float16
    if kind == "odd_dtype":
        dtype = draw(st.sampled_from([np.int8, np.uint64, np.bool_, np.complex128, "U2", "O", np.longdouble]))
        return draw(hnp.arrays(np.int64, (n, d), elements=st.integers(0, 3))).astype(dtype), False
    if kind == "list":
        return draw(
            st.sampled_from(
                [
                    [[1.0, 2.0], [3.0, 4.0]],
                    [[1, 2], [3]],
                    [],
                    [[]],
                    [["a", "b"]],
                    None,
                    3.0,
                    "x",
                    [[1.0, None]],
                ]
            )
        ), False
    shape = draw(st.sampled_from([(0,), (n,), (0, d), (n, 0), (n, d, 2), ()]))
    return np.ones(shape), False


options = st.fixed_dictionaries(
    {},
    optional={
        "normalize": st.sampled_from([True, False, True, "yes", None]),
        "block_rows": st.sampled_from([1, 2, 16384, 0, -1, 2.5, True, None]),
        "method": st.sampled_from(["auto", "covariance", "kernel", "kernel", "eig"]),
        "eig_tol": st.sampled_from([None, 0.0, 1e-12, 0.5, -1.0, float("nan"), "x"]),
        "progress": st.sampled_from([None, False]),
    },
)


@examples(150)
@given(case=vendi_inputs(), q=q_values, opts=options)
def test_vendi_score_result_or_typed_error(case, q, opts) -> None:
    emb, _clean = case
    before = emb.copy() if isinstance(emb, np.ndarray) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok, score = outcome(vendi_score, emb, q, **opts)
    if before is not None:
        np.testing.assert_array_equal(emb, before, err_msg="vendi_score changed its input")
    if not ok:
        return
    assert isinstance(score, float), type(score)
    assert math.isfinite(score), f"vendi_score returned {score}"
    arr = np.asarray(emb)
    assert 1 - 1e-6 <= score <= min(arr.shape) + 1e-6, (
        f"score {score} outside [1, min(n, d)] for shape {arr.shape}"
    )


@examples(60)
@given(case=vendi_inputs(), q1=st.floats(0, 50), q2=st.floats(0, 1e6), normalize=st.booleans())
def test_vendi_score_sides_agree_and_decrease_with_q(case, q1, q2, normalize) -> None:
    emb, clean = case
    if not clean:
        return
    lo, hi = sorted((q1, q2))
    ok, a = outcome(vendi_score, emb, lo, normalize=normalize, method="covariance")
    if not ok:
        return
    event("compared")
    b = vendi_score(emb, lo, normalize=normalize, method="kernel")
    # the two sides differ by float64 rounding of the tiny eigenvalues, which count as 0 below eig_tol
    assert math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-3), (a, b)
    c = vendi_score(emb, hi, normalize=normalize, method="covariance")
    assert c <= a * (1 + 1e-6) + 1e-9, f"vendi({hi}) = {c} > vendi({lo}) = {a}"
    inf = vendi_score(emb, math.inf, normalize=normalize)
    assert inf <= c * (1 + 1e-6) + 1e-9
