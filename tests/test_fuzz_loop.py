"""Fuzz EvolutionLoop with fake parts (tests/loop_fakes.py) that return wrong shapes, types or NaN.

Each part is the working fake of loop_fakes.py, or a broken variant of it (an embedder returning
the wrong number of rows, a 1-D array, NaN, strings or None; a scorer missing a key or returning
strings; a judge returning None, a list or NaN; a sampler returning fractional, duplicate,
out-of-range or pool indices), with odd loop settings.

Oracle (tests/fuzz_support.py): a correct result or a typed DiverseEvolError with a message. A
result has rounds + 1 nested pools, each pool of the expected size, distinct and in range, and the
metrics rows say the same; running again on the finished directory returns the same pools.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

import loop_fakes as fakes
from fuzz_support import examples, outcome

from diverseevol.run import EvolutionLoop
from diverseevol.samplers import Requirements

N = 24


def _bad_embeddings(kind: str, good: np.ndarray) -> Any:
    if kind == "rows-1":
        return good[:-1]
    if kind == "rows+1":
        return np.vstack([good, good[:1]])
    if kind == "1d":
        return good[:, 0]
    if kind == "3d":
        return good[:, :, None]
    if kind == "nan":
        out = good.copy()
        out[3, 0] = np.nan
        return out
    if kind == "inf":
        out = good.copy()
        out[:, 1] = np.inf
        return out
    if kind == "zeros":
        return np.zeros_like(good)
    if kind == "list":
        return good.tolist()
    if kind == "strings":
        return good.astype(str)
    if kind == "none":
        return None
    if kind == "int":
        return (good * 10).astype(np.int32)
    if kind == "float16":
        return good.astype(np.float16)
    if kind == "empty-d":
        return good[:, :0]
    return good


class Embedder(fakes.FakeEmbedder):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def __call__(self, model, records):
        return _bad_embeddings(self.kind, np.asarray(super().__call__(model, records)))


class Scorer(fakes.FakeScorer):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def __call__(self, model, records):
        out = super().__call__(model, records)
        if self.kind == "missing":
            del out["margin"]
        elif self.kind == "short":
            out = {k: v[:-2] for k, v in out.items()}
        elif self.kind == "strings":
            out = {k: v.astype(str) for k, v in out.items()}
        elif self.kind == "nan":
            out["margin"] = np.full_like(out["margin"], np.nan)
        elif self.kind == "2d":
            out = {k: v[:, None] for k, v in out.items()}
        elif self.kind == "none":
            return None
        elif self.kind == "list":
            return list(out.values())
        return out


class Judge(fakes.FakeJudge):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def __call__(self, model, round):
        out = super().__call__(model, round)
        return {
            "ok": out,
            "none": None,
            "list": [1.0, 2.0],
            "float": 0.5,
            "nan": {"accuracy": float("nan")},
            "string": {"accuracy": "high"},
            "keys": {1: 0.5},
            "nested": {"a": {"b": 1}},
            "empty": {},
            "array": {"accuracy": np.float32(0.25)},
            "inf": {"accuracy": float("inf")},
        }[self.kind]


class BadSampler:
    """A custom sampler whose output is broken in one way."""

    name: ClassVar[str] = "fuzz_bad"
    requires: ClassVar[Requirements] = Requirements()

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def select(self, ctx, k):
        cand = np.asarray(ctx.candidate_idx)
        good = cand[:k]
        return {
            "ok": good,
            "fraction": good + 0.9,
            "float-integral": good.astype(np.float64),
            "duplicate": np.r_[good[:1], good[:1], good[2:]] if k > 1 else good,
            "short": good[:-1],
            "long": cand[: k + 1],
            "pool": np.r_[np.asarray(ctx.pool_idx)[:1], good[1:]],
            "negative": -good - 1,
            "out-of-range": good + N,
            "list": good.tolist(),
            "none": None,
            "2d": good[None, :],
            "uint64": good.astype(np.uint64),
            "bool": np.ones(k, dtype=bool),
            "strings": good.astype(str),
        }[self.kind]


embedder_kinds = st.sampled_from(
    ["ok"] * 6
    + [
        "rows-1",
        "rows+1",
        "1d",
        "3d",
        "nan",
        "inf",
        "zeros",
        "list",
        "strings",
        "none",
        "int",
        "float16",
        "empty-d",
    ]
)
scorer_kinds = st.sampled_from(["ok"] * 4 + ["missing", "short", "strings", "nan", "2d", "none", "list"])
judge_kinds = st.sampled_from(
    ["ok"] * 4 + ["none", "list", "float", "nan", "string", "keys", "nested", "empty", "array", "inf"]
)
sampler_kinds = st.sampled_from(
    ["kcenter"] * 3
    + ["random", "margin", "entropy", "facility_location"]
    + [
        "bad:" + k
        for k in (
            "ok",
            "fraction",
            "float-integral",
            "duplicate",
            "short",
            "long",
            "pool",
            "negative",
            "out-of-range",
            "list",
            "none",
            "2d",
            "uint64",
            "bool",
            "strings",
        )
    ]
)

settings_values = st.fixed_dictionaries(
    {
        "init_size": st.sampled_from([1, 4, 5, 0, N, N + 1]),
        "k": st.sampled_from([1, 3, 0, N]),
        "rounds": st.sampled_from([1, 2, 0]),
    },
    optional={
        "mode": st.sampled_from(["iterative", "one_time", "both"]),
        "seed": st.sampled_from([0, 3, -1, 2**70]),
        "vendi": st.sampled_from([None, True, False]),
        "cache_embeddings": st.booleans(),
        "keep_models": st.booleans(),
    },
)


def _sampler(kind: str) -> Any:
    return BadSampler(kind[4:]) if kind.startswith("bad:") else kind


def _check_result(result, settings) -> None:
    init, k, rounds = settings["init_size"], settings["k"], settings["rounds"]
    pools = [np.asarray(p) for p in result.pools]
    assert len(pools) == rounds + 1, [len(p) for p in pools]
    for t, pool in enumerate(pools):
        assert pool.ndim == 1 and np.issubdtype(pool.dtype, np.integer)
        assert len(np.unique(pool)) == len(pool) == init + t * k, (t, len(pool))
        assert ((pool >= 0) & (pool < N)).all()
        if t:
            assert set(pools[t - 1].tolist()) <= set(pool.tolist()), "pools must be nested"
    assert len(result.metrics) == rounds + 1


@examples(60)
@given(
    emb=embedder_kinds,
    score=scorer_kinds,
    judge=judge_kinds,
    sampler=sampler_kinds,
    settings=settings_values,
    with_scorer=st.booleans(),
)
def test_loop_with_broken_parts_result_or_typed_error(
    emb, score, judge, sampler, settings, with_scorer
) -> None:
    records = fakes.make_records(N)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")

        def make() -> EvolutionLoop:
            return EvolutionLoop(
                records,
                trainer=fakes.FakeTrainer(),
                embedder=Embedder(emb),
                scorer=Scorer(score) if with_scorer else None,
                judge=Judge(judge),
                sampler=_sampler(sampler),
                run_dir=Path(tmp) / "run",
                progress=False,
                **settings,
            )

        ok, loop = outcome(make)
        if not ok:
            return
        ok, result = outcome(loop.run)
        if not ok:
            return
        _check_result(result, settings)
        again = make().run()  # a finished run directory is replayed, not recomputed
        assert [p.tolist() for p in again.pools] == [np.asarray(p).tolist() for p in result.pools]
