"""Fuzz kcenter_select: odd arrays, index arrays of every dtype, odd k, every CPU backend, options.

Oracle (tests/fuzz_support.py): a correct result or a typed DiverseEvolError with a message. A
result is checked for: int64 picks of shape (k,), distinct, in range, outside the pool, inside the
candidates; radii non-increasing; on well-conditioned inputs every pick is a farthest candidate
(up to rounding), and on integer-valued Euclidean inputs (exact distances, exact ties) the picks
equal the brute-force oracle's (tests/kcenter_oracle.py). The caller's arrays are never changed.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

sys.path.insert(0, str(Path(__file__).parent))

from fuzz_support import examples, outcome
from kcenter_oracle import kcenter_oracle

from diverseevol import kcenter_select
from diverseevol.kernels.backends import available_backends

BACKENDS = ["auto", *available_backends()]
FLOAT_DTYPES = [np.float16, np.float32, np.float64]
ODD_DTYPES = [np.int8, np.int64, np.uint8, np.uint64, np.bool_, np.complex64, np.longdouble, "U3", "O"]
INDEX_DTYPES = [
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
    np.bool_,
]

odd_values = st.sampled_from(
    [0.0, -0.0, 1.0, -1.0, 1e-300, 1e200, -1e200, 3e38, 1e308, float("nan"), float("inf"), float("-inf")]
)


@st.composite
def embeddings(draw):
    """(emb, clean): a float matrix (sometimes with odd values) or an odd-dtype / odd-shape array."""
    kind = draw(st.sampled_from(["clean", "clean", "clean", "odd_values", "odd_dtype", "odd_shape"]))
    n = draw(st.integers(1, 12))
    d = draw(st.integers(1, 4))
    if kind == "clean":
        dtype = draw(st.sampled_from([np.float32, np.float64]))
        # small integers: exact squared distances in float32 and float64, so ties are exact
        ints = draw(hnp.arrays(np.int64, (n, d), elements=st.integers(-6, 6)))
        return ints.astype(dtype), True
    if kind == "odd_values":
        dtype = draw(st.sampled_from(FLOAT_DTYPES))
        base = draw(hnp.arrays(np.float64, (n, d), elements=st.floats(-5, 5)))
        mask = draw(hnp.arrays(np.bool_, (n, d)))
        fill = draw(hnp.arrays(np.float64, (n, d), elements=odd_values))
        with np.errstate(over="ignore", invalid="ignore"):
            return np.where(mask, fill, base).astype(dtype), False
    if kind == "odd_dtype":
        dtype = draw(st.sampled_from(ODD_DTYPES))
        base = draw(hnp.arrays(np.int64, (n, d), elements=st.integers(0, 9)))
        return base.astype(dtype), False
    shape = draw(st.sampled_from([(0,), (n,), (0, d), (n, 0), (n, d, 2), (), (1, 1, 1, 1)]))
    return np.ones(shape, dtype=draw(st.sampled_from(FLOAT_DTYPES))), False


def index_values(n: int):
    """Index sets as arrays of every dtype, lists, scalars, fractional and out-of-range values."""
    valid = st.lists(st.integers(0, max(n - 1, 0)), max_size=n, unique=True)
    anyint = st.lists(st.integers(-3, n + 3), max_size=n + 2)

    @st.composite
    def build(draw):
        kind = draw(st.sampled_from(["valid", "valid", "valid", "any", "fraction", "odd"]))
        if kind in ("valid", "any"):
            values = draw(valid if kind == "valid" else anyint)
            form = draw(st.sampled_from(["list", "array", "array", "tuple", "2d"]))
            if form == "list":
                return values, kind == "valid"
            if form == "tuple":
                return tuple(values), kind == "valid"
            dtype = draw(st.sampled_from(INDEX_DTYPES))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                arr = np.asarray(values).astype(dtype) if values else np.zeros(0, dtype=dtype)
            same = np.array_equal(arr.astype(np.float64), np.asarray(values, dtype=np.float64))
            if form == "2d":
                return arr.reshape(1, -1), False
            return arr, kind == "valid" and same and dtype is not np.bool_
        if kind == "fraction":
            values = st.one_of(st.floats(-2, n + 2), st.sampled_from([float("nan"), float("inf"), 1e300]))
            return draw(st.lists(values, min_size=1, max_size=4)), False
        return draw(
            st.sampled_from(
                [
                    None,
                    3,
                    "0,1",
                    b"\x00",
                    {0: 1},
                    [[0, 1]],
                    [None],
                    ["1"],
                    [1.0],
                    np.array([2**63], dtype=np.uint64),
                    np.array([], dtype=object),
                    [True, False],
                    object(),
                ]
            )
        ), False

    return build()


k_values = st.one_of(
    st.integers(0, 5),
    st.integers(-2, 2),
    st.sampled_from(
        [np.int8(2), np.uint64(1), 2**70, 2.0, 2.5, True, None, "2", float("nan"), np.float64(1.0)]
    ),
)


valid_options = st.fixed_dictionaries(
    {},
    optional={
        "prune": st.sampled_from(["auto", True, False]),
        "block_rows": st.sampled_from([None, 1, 2, 3, 64]),
        "return_radii": st.booleans(),
        "random_state": st.sampled_from([None, 0, 7, np.random.default_rng(1), np.random.RandomState(2)]),
        "metric": st.sampled_from(["euclidean", "cosine"]),
    },
)

odd_options = st.fixed_dictionaries(
    {},
    optional={
        "prune": st.sampled_from(["auto", True, False, "yes", 1, None]),
        "block_rows": st.sampled_from([None, 1, 2, 3, 0, -1, 2.0, True, 10**12]),
        "lazy": st.sampled_from(["auto", True, False, "no"]),
        "n_threads": st.sampled_from([None, 1, 2, 0]),
        "max_copy_bytes": st.sampled_from([None, 0, 1, 10**9, -5]),
        "progress": st.sampled_from([None, False, "x"]),
        "stats": st.sampled_from([None, {}, [], "s"]),
        "return_radii": st.sampled_from([True, False, 1, "yes"]),
        "random_state": st.sampled_from([None, 0, 7, -1, "seed", np.random.default_rng(1), 2**70, 1.5]),
        "metric": st.sampled_from(["euclidean", "euclidean", "cosine", "Euclidean", "l2", None]),
        "device": st.sampled_from([None, "cpu", "gpu9"]),
        "bogus_option": st.just(1),
    },
)

options = st.one_of(valid_options, valid_options, valid_options, odd_options)


def _check_result(emb, pool, cand, k, metric, result, return_radii, clean) -> None:
    picks, radii = result if return_radii else (result, None)
    assert isinstance(picks, np.ndarray) and picks.dtype == np.int64 and picks.shape == (k,)
    n = emb.shape[0]
    assert len(set(picks.tolist())) == k, f"repeated picks {picks}"
    assert ((picks >= 0) & (picks < n)).all()
    pool_set = {int(i) for i in np.asarray(pool).reshape(-1)}
    assert not pool_set & set(picks.tolist()), "a pick is in the pool"
    if cand is not None:
        assert set(picks.tolist()) <= {int(i) for i in np.asarray(cand).reshape(-1)}
    if radii is not None:
        assert radii.dtype == np.float64 and radii.shape == (k,)
        assert np.all(
            np.diff(radii[np.isfinite(radii)]) <= 1e-6 * (1 + np.abs(radii[np.isfinite(radii)][:-1]))
        )
    if not clean or k == 0:
        return
    event(f"compared with the oracle ({metric})")
    first = int(picks[0]) if not pool_set else None
    want, want_r = kcenter_oracle(
        emb,
        sorted(pool_set),
        None if cand is None else list(np.asarray(cand).reshape(-1)),
        k,
        metric=metric,
        first_pick=first,
    )
    if metric == "euclidean":
        np.testing.assert_array_equal(picks, want)
    if radii is not None and metric == "euclidean":
        np.testing.assert_allclose(radii, want_r, rtol=1e-5, atol=1e-5)
    if metric == "cosine":  # near-ties after normalisation: each pick's radius is the oracle's best
        oracle_r = kcenter_oracle(
            emb,
            sorted(pool_set),
            None if cand is None else list(np.asarray(cand).reshape(-1)),
            k,
            metric=metric,
            first_pick=first,
        )[1]
        if radii is not None:
            np.testing.assert_allclose(radii, oracle_r, rtol=1e-4, atol=1e-5)


@examples(150)
@given(data=st.data(), backend=st.sampled_from(BACKENDS), opts=options, emb_case=embeddings())
def test_kcenter_select_result_or_typed_error(data, backend, opts, emb_case) -> None:
    emb, clean = emb_case
    n = emb.shape[0] if emb.ndim >= 1 else 0
    pool, pool_ok = data.draw(index_values(n), label="pool_idx")
    use_cand = data.draw(st.booleans(), label="use candidate_idx")
    cand, cand_ok = data.draw(index_values(n), label="candidate_idx") if use_cand else (None, True)
    k = data.draw(k_values, label="k")
    opts = dict(opts)
    metric = opts.get("metric", "euclidean")
    return_radii = opts.get("return_radii", False)
    emb_before = emb.copy()
    pool_before = np.array(pool, dtype=object, copy=True) if isinstance(pool, np.ndarray) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok, result = outcome(kcenter_select, emb, pool, k, candidate_idx=cand, backend=backend, **opts)
    np.testing.assert_array_equal(emb, emb_before, err_msg="kcenter_select changed the embeddings")
    if pool_before is not None:
        np.testing.assert_array_equal(np.asarray(pool, dtype=object), pool_before)
    if not ok:
        return
    pool_arr = np.asarray(pool if pool is not None else [], dtype=np.float64).reshape(-1)
    is_clean = (
        clean
        and pool_ok
        and cand_ok
        and metric in ("euclidean", "cosine")
        and "device" not in opts
        and not (metric == "cosine" and not np.all(np.abs(emb).sum(axis=1) > 0))
    )
    k_int = int(k)
    assert k_int == k, f"k={k!r} was accepted but is not integral"
    pool_clean = [int(i) for i in pool_arr]
    _check_result(emb, pool_clean, cand, k_int, metric, result, bool(return_radii), is_clean)


@examples(40)
@given(
    emb=hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        st.tuples(st.integers(5, 12), st.integers(1, 4)),
        elements=st.integers(-6, 6),
    ),
    k=st.integers(1, 4),
    backend=st.sampled_from(BACKENDS),
    seed=st.integers(0, 3),
)
def test_kcenter_from_a_npy_path_equals_the_array(tmp_path_factory, emb, k, backend, seed) -> None:
    path = tmp_path_factory.mktemp("fuzz_kc") / "emb.npy"
    np.save(path, emb)
    before = path.read_bytes()
    a = kcenter_select(emb, [0], k, backend=backend, random_state=seed)
    b = kcenter_select(str(path), [0], k, backend=backend, random_state=seed)
    np.testing.assert_array_equal(a, b)
    assert path.read_bytes() == before


@st.composite
def small_problems(draw):
    """Integer-valued float embeddings with a valid pool, candidates and k (exact distances and ties)."""
    n = draw(st.integers(2, 14))
    d = draw(st.integers(1, 4))
    emb = draw(hnp.arrays(np.int64, (n, d), elements=st.integers(-6, 6))).astype(
        draw(st.sampled_from([np.float32, np.float64]))
    )
    order = draw(st.permutations(range(n)))
    n_pool = draw(st.integers(0, n - 1))
    pool, rest = list(order[:n_pool]), list(order[n_pool:])
    cand = rest if draw(st.booleans()) else None
    if cand is not None:
        cand = cand[: draw(st.integers(1, len(cand)))]
    k = draw(st.integers(0, len(rest if cand is None else cand)))
    dtype = draw(st.sampled_from([np.int64, np.int32, np.uint64, np.uint16, np.int8]))
    return emb, np.asarray(pool, dtype=dtype), None if cand is None else np.asarray(cand, dtype=dtype), k


@examples(80)
@given(
    problem=small_problems(),
    backend=st.sampled_from(BACKENDS),
    prune=st.sampled_from(["auto", True, False]),
    block_rows=st.sampled_from([None, 1, 3]),
    seed=st.integers(0, 5),
)
def test_kcenter_matches_the_brute_force_oracle(problem, backend, prune, block_rows, seed) -> None:
    emb, pool, cand, k = problem
    opts = {"prune": prune, "block_rows": block_rows} if backend in ("numpy", "faiss") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        picks, radii = kcenter_select(
            emb, pool, k, candidate_idx=cand, backend=backend, random_state=seed, return_radii=True, **opts
        )
    first = int(picks[0]) if len(pool) == 0 and k else None
    want, want_r = kcenter_oracle(
        emb, pool.tolist(), None if cand is None else cand.tolist(), k, first_pick=first
    )
    np.testing.assert_array_equal(picks, want)
    np.testing.assert_allclose(radii, want_r, rtol=1e-6)
