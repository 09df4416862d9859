"""The reusable contract check, run over every built-in sampler and over broken ones."""

from __future__ import annotations

import random

import numpy as np
import pytest

import diverseevol
from diverseevol import list_samplers
from diverseevol.errors import PoolExhaustedError, ValidationError
from diverseevol.samplers import check_k, get_sampler_class
from diverseevol.testing import check_sampler, make_context

BUILTINS = ["entropy", "kcenter", "least_confidence", "margin", "random"]


def test_every_builtin_is_listed():
    assert set(BUILTINS) <= set(list_samplers())


@pytest.mark.parametrize("name", [n for n in list_samplers() if n in BUILTINS])
def test_builtin_sampler_honours_contract(name):
    check_sampler(get_sampler_class(name))


def test_kcenter_cosine_honours_contract():
    from diverseevol.samplers import KCenterSampler

    check_sampler(lambda: KCenterSampler(metric="cosine"), seed=3)


def test_instance_and_real_data_arguments():
    from diverseevol.samplers import MarginSampler

    emb = np.random.default_rng(0).normal(size=(120, 4))
    check_sampler(MarginSampler(), embeddings=emb, k=10, scores={"margin": np.linspace(0, 1, 120)})


def test_make_context_is_consistent():
    ctx = make_context(100, n_pool=10, n_candidates=40, extra_scores={"novelty"})
    assert len(ctx.pool_idx) == 10 and len(ctx.candidate_idx) == 40
    assert not np.intersect1d(ctx.pool_idx, ctx.candidate_idx).size
    assert ctx.signals() == {"embeddings", "scores:confidence", "scores:margin", "scores:entropy", "scores:novelty"}


# ------------------------------------------------------------------ broken samplers must fail
class _Base:
    requires = frozenset()

    def _k(self, ctx, k):
        return check_k(k, len(ctx.candidate_idx))


class GlobalRng(_Base):
    def select(self, ctx, k):
        k = self._k(ctx, k)
        return np.random.permutation(np.sort(ctx.candidate_idx))[:k].astype(np.int64)


class PythonRandom(_Base):
    def select(self, ctx, k):
        k = self._k(ctx, k)
        cand = sorted(ctx.candidate_idx.tolist())
        random.Random(0).shuffle(cand)  # a private Random is fine ...
        random.random()  # ... touching the global one is not
        return np.array(cand[:k], dtype=np.int64)


class Duplicates(_Base):
    def select(self, ctx, k):
        k = self._k(ctx, k)
        out = np.sort(ctx.candidate_idx)[:k].copy()
        if k > 1:
            out[-1] = out[0]
        return out


class PicksFromPool(_Base):
    def select(self, ctx, k):
        k = self._k(ctx, k)
        return np.concatenate([ctx.pool_idx, np.sort(ctx.candidate_idx)])[:k].astype(np.int64)


class OutsideCandidates(_Base):
    def select(self, ctx, k):
        k = self._k(ctx, k)
        outside = np.setdiff1d(np.arange(ctx.n_records), np.union1d(ctx.pool_idx, ctx.candidate_idx))
        base = np.sort(ctx.candidate_idx)[:k].copy()
        if k and outside.size:
            base[0] = outside[0]
        return base


class FloatOutput(_Base):
    def select(self, ctx, k):
        k = self._k(ctx, k)
        return np.sort(ctx.candidate_idx)[:k].astype(np.float64)


class ListOutput(_Base):
    def select(self, ctx, k):
        k = self._k(ctx, k)
        return sorted(ctx.candidate_idx.tolist())[:k]


class WrongCount(_Base):
    def select(self, ctx, k):
        return np.sort(ctx.candidate_idx)[: max(0, k - 1)]


class SilentlyShort(_Base):
    def select(self, ctx, k):  # returns fewer instead of raising when k is too large
        return np.sort(ctx.candidate_idx)[:k]


class WrongError(_Base):
    def select(self, ctx, k):
        if k > len(ctx.candidate_idx):
            raise IndexError("too many")
        return np.sort(ctx.candidate_idx)[:k]


class MutatesScores(_Base):
    requires = frozenset({"scores:margin"})

    def select(self, ctx, k):
        k = self._k(ctx, k)
        m = ctx.scores["margin"]
        m[ctx.candidate_idx] += 1.0
        return ctx.candidate_idx[np.argsort(m[ctx.candidate_idx], kind="stable")][:k]


class Stateful(_Base):
    def __init__(self):
        self.calls = 0

    def select(self, ctx, k):
        k = self._k(ctx, k)
        self.calls += 1
        return np.roll(np.sort(ctx.candidate_idx), self.calls)[:k].astype(np.int64)


class BadRequires(_Base):
    requires = frozenset({"margin"})

    def select(self, ctx, k):
        return np.sort(ctx.candidate_idx)[:k]


class Crashes(_Base):
    def select(self, ctx, k):
        raise ZeroDivisionError("boom")


@pytest.mark.parametrize(
    "broken, rule",
    [
        (GlobalRng, "deterministic for the same rng seed"),
        (PythonRandom, "global `random` module state changed"),
        (Duplicates, "duplicates"),
        (PicksFromPool, "already in the training pool"),
        (OutsideCandidates, "not candidates"),
        (FloatOutput, "int64"),
        (ListOutput, "numpy ndarray"),
        (WrongCount, "asked for k=20 records, got 19"),
        (SilentlyShort, "no error was raised"),
        (WrongError, "got IndexError"),
        (MutatesScores, r"changed ctx.scores\['margin'\]"),
        (BadRequires, "requires"),
        (Crashes, "raised ZeroDivisionError"),
    ],
)
def test_broken_sampler_fails_contract(broken, rule):
    with pytest.raises(AssertionError, match=rule) as info:
        check_sampler(broken)
    assert broken.__name__ in str(info.value)


@pytest.mark.parametrize("arg", [Stateful, Stateful()], ids=["class", "instance"])
def test_stateful_sampler_fails(arg):
    with pytest.raises(AssertionError, match="deterministic for the same rng seed"):
        check_sampler(arg)


@pytest.mark.parametrize("broken", [WrongError, SilentlyShort])
def test_k_failures_point_to_the_public_helper(broken):
    with pytest.raises(AssertionError) as info:
        check_sampler(broken)
    message = str(info.value)
    assert "diverseevol.samplers.check_k(k, len(ctx.candidate_idx))" in message
    assert "_validation" not in message


def test_public_check_k_applies_the_contract_rule():
    assert diverseevol.check_k is check_k
    assert "check_k" in diverseevol.samplers.__all__ and "check_k" in diverseevol.__all__
    out = check_k(np.int64(4), 4)
    assert out == 4 and type(out) is int
    assert check_k(0, 0) == 0
    with pytest.raises(PoolExhaustedError, match="only 4 candidates"):
        check_k(5, 4)
    for bad in (-1, 2.0, True, "3"):
        with pytest.raises(ValidationError):
            check_k(bad, 4)


def test_check_sampler_argument_checks():
    with pytest.raises(ValueError, match="k <= n // 4"):
        check_sampler(GlobalRng, n=40, k=20)
