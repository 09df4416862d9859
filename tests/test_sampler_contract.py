"""The sampler contract: Requirements, Selection, run_sampler, the old forms, and the reusable check
run over every built-in sampler and over broken ones."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

import diverseevol
from diverseevol import SelectionContext, get_sampler, list_samplers, register_sampler
from diverseevol.errors import MissingSignalError, PoolExhaustedError, SamplerOutputError, ValidationError
from diverseevol.samplers import (
    Requirements,
    Selection,
    check_k,
    get_sampler_class,
    registry,
    requirements_of,
    run_sampler,
)
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


# ------------------------------------------------------------------ the typed contract (issue 11)
def _deprecations(record, cls):
    return [w for w in record if issubclass(w.category, DeprecationWarning) and cls.__qualname__ in str(w.message)]


def test_requirements_parse_reads_the_string_form_and_round_trips():
    req = Requirements.parse(["scores:margin", "embeddings", "scores:entropy"])
    assert req == Requirements(embeddings=True, scores=frozenset({"margin", "entropy"}))
    assert req.to_strings() == frozenset({"embeddings", "scores:margin", "scores:entropy"})
    assert Requirements.parse(req.to_strings()) == req
    assert Requirements.parse(req) is req
    assert Requirements.parse(frozenset()) == Requirements()
    assert Requirements.parse({"scores:a:b"}).scores == frozenset({"a:b"})  # the name is everything after the prefix


@pytest.mark.parametrize(
    "bad, match",
    [
        ("embeddings", "bare string"),
        (5, "Requirements"),
        ({"margin"}, "scores:<signal>"),
        ({"scores:"}, "scores:<signal>"),
        ({"embeddings", 3}, "holds 3"),
        (None, "Requirements"),
    ],
)
def test_requirements_parse_refuses_other_values(bad, match):
    with pytest.raises(ValidationError, match=match) as info:
        Requirements.parse(bad)
    assert isinstance(info.value, ValueError)


def test_requirements_behaves_like_its_string_set():
    req = Requirements(embeddings=True, scores=["margin"])  # any iterable of names
    assert isinstance(req.scores, frozenset)
    assert "embeddings" in req and "scores:margin" in req and "scores:entropy" not in req and "margin" not in req
    assert list(req) == ["embeddings", "scores:margin"]
    assert len(req) == 2 and bool(req) and not Requirements() and len(Requirements()) == 0
    assert req == frozenset({"embeddings", "scores:margin"}) == req
    assert req != frozenset({"embeddings"}) and req != Requirements(embeddings=True)
    assert hash(req) == hash(frozenset({"embeddings", "scores:margin"}))
    assert {req, Requirements(True, frozenset({"margin"}))} == {req}
    assert eval(repr(req), {"Requirements": Requirements}) == req
    with pytest.raises(AttributeError):
        req.embeddings = False  # frozen


@pytest.mark.parametrize(
    "kwargs, match",
    [({"scores": "margin"}, "set of score names"), ({"scores": {""}}, "non-empty"), ({"embeddings": "yes"}, "True or False")],
)
def test_requirements_checks_its_fields(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        Requirements(**kwargs)


def test_selection_normalises_and_checks():
    sel = Selection(indices=[4.0, 2, 9], radii=[3, 2, 1])
    assert sel.indices.dtype == np.int64 and sel.indices.tolist() == [4, 2, 9]
    assert sel.radii.dtype == np.float64 and sel.radii.tolist() == [3.0, 2.0, 1.0]
    assert not sel.indices.flags.writeable and not sel.radii.flags.writeable
    assert len(sel) == 3 and np.asarray(sel).tolist() == [4, 2, 9]
    assert np.asarray(sel, dtype=np.float64).dtype == np.float64
    assert sel == Selection(np.array([4, 2, 9]), np.array([3.0, 2.0, 1.0]))
    assert sel != Selection(np.array([4, 2, 9])) and sel != Selection(np.array([4, 2, 8]), [3, 2, 1])
    assert Selection(np.array([1, 2])).radii is None
    with pytest.raises(SamplerOutputError, match="shape"):
        Selection([1, 2, 3], radii=[1.0, 2.0])
    with pytest.raises(SamplerOutputError, match="non-integral value 1.5 at position 1"):
        Selection([1, 1.5])


# A plain sampler that returns whatever it is given, to test run_sampler's output checks.
class _Returns:
    requires = Requirements()

    def __init__(self, value):
        self.value = value

    def select(self, ctx, k):
        return self.value


@pytest.mark.parametrize(
    "value, want",
    [
        (np.array([7, 3], dtype=np.int32), [7, 3]),
        (np.array([7.0, 3.0]), [7, 3]),  # integral floats are accepted
        ([7, 3], [7, 3]),  # so is a list of ints
        (np.array([], dtype=np.float64), []),
    ],
)
def test_run_sampler_accepts_integral_index_arrays(value, want):
    sel = run_sampler(_Returns(value), make_context(40), 2)
    assert isinstance(sel, Selection) and sel.radii is None
    assert sel.indices.dtype == np.int64 and sel.indices.tolist() == want


@pytest.mark.parametrize(
    "value, match",
    [
        (np.array([3.0, 1.5, 2.5]), r"non-integral value 1.5 at position 1"),
        (np.array([3.0, np.nan]), r"non-integral value nan"),
        (np.array([[1, 2]]), r"1-D.*shape \(1, 2\)"),
        (np.int64(3), r"1-D.*shape \(\)"),
        (None, r"got NoneType"),
        (["a", "b"], r"integer row indices.*got list of dtype <U1"),
        (np.array([True, False]), r"boolean mask.*flatnonzero"),
        (object(), r"integer row indices.*got object"),
    ],
)
def test_run_sampler_refuses_non_index_output_naming_the_sampler(value, match):
    with pytest.raises(SamplerOutputError, match=match) as info:
        run_sampler(_Returns(value), make_context(40), 2)
    assert "Sampler _Returns" in str(info.value) and ".select()" in str(info.value)
    assert isinstance(info.value, ValidationError) and isinstance(info.value, ValueError)


def test_run_sampler_names_a_registered_sampler(scratch):
    cls = register_sampler("contract_returns_fraction")(type("Fraction", (_Returns,), {}))
    scratch.append("contract_returns_fraction")
    with pytest.raises(SamplerOutputError, match=r"Sampler 'contract_returns_fraction' \(Fraction\)\.select\(\).*1\.5"):
        run_sampler(cls(np.array([1.5, 2.0])), make_context(40), 2)


def test_run_sampler_checks_the_required_signals_first():
    class NeedsNovelty:  # does not check ctx itself
        requires = Requirements(scores=frozenset({"novelty"}))

        def select(self, ctx, k):
            return ctx.candidate_idx[np.argsort(ctx.scores["novelty"][ctx.candidate_idx], kind="stable")][:k]

    with pytest.raises(MissingSignalError, match=r"'scores:novelty'.*scores=\{'novelty': values\}"):
        run_sampler(NeedsNovelty(), make_context(40), 3)
    ctx = make_context(40, extra_scores={"novelty"})
    cand = ctx.candidate_idx
    want = cand[np.lexsort((cand, ctx.scores["novelty"][cand]))][:3]
    np.testing.assert_array_equal(run_sampler(NeedsNovelty(), ctx, 3).indices, want)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtins_use_the_new_forms_without_warnings(name):
    ctx = make_context(60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sampler = get_sampler(name)
        req = requirements_of(sampler)
        sel = run_sampler(sampler, ctx, 5)
    assert isinstance(type(sampler).requires, Requirements) and req is type(sampler).requires
    assert (sel.radii is not None) == (name == "kcenter")
    np.testing.assert_array_equal(sel.indices, np.asarray(sampler.select(make_context(60), 5)))  # same rng seed


def test_kcenter_radii_through_run_sampler_match_the_kernel():
    from diverseevol import kcenter_select

    ctx = make_context(120, n_pool=10)
    sel = run_sampler(get_sampler("kcenter", metric="cosine"), ctx, 7)
    picks, radii = kcenter_select(ctx.embeddings, ctx.pool_idx, 7, candidate_idx=ctx.candidate_idx, metric="cosine",
                                  random_state=np.random.default_rng(0), return_radii=True)
    np.testing.assert_array_equal(sel.indices, picks)
    np.testing.assert_array_equal(sel.radii, radii)


# ------------------------------------------------------------------ the old forms keep working
@pytest.fixture
def scratch():
    names: list[str] = []
    yield names
    for name in names:
        if name in registry._registry:
            registry.unregister_sampler(name)


def _old_style_margin_sampler():
    # Written against the old contract: string requirements, a plain index array.
    class OldLowestMargin:
        requires = frozenset({"scores:margin"})

        def select(self, ctx, k):
            k = check_k(k, len(ctx.candidate_idx))
            cand = np.sort(ctx.candidate_idx)
            order = np.argsort(ctx.scores["margin"][cand], kind="stable")
            return cand[order][:k].astype(np.int64)

    return OldLowestMargin


def test_old_style_sampler_runs_through_registry_and_run_sampler_with_one_warning(scratch):
    with pytest.warns(DeprecationWarning) as record:
        cls = register_sampler("contract_old_margin")(_old_style_margin_sampler())
        scratch.append("contract_old_margin")
        sampler = get_sampler("contract_old_margin")
        ctx = make_context(80, n_pool=8)
        first = run_sampler(sampler, ctx, 6)
        second = run_sampler(get_sampler("contract_old_margin"), ctx, 6)
        req = requirements_of(sampler)
    assert len(_deprecations(record, cls)) == 1
    message = str(_deprecations(record, cls)[0].message)
    assert "deprecated" in message and "Requirements(scores=frozenset({'margin'}))" in message
    assert cls.requires == frozenset({"scores:margin"}) and isinstance(cls.requires, frozenset)
    assert req == Requirements(scores=frozenset({"margin"}))
    cand = np.sort(ctx.candidate_idx)
    want = cand[np.lexsort((cand, ctx.scores["margin"][cand]))][:6]
    assert first.radii is None
    np.testing.assert_array_equal(first.indices, want)
    assert first == second
    with pytest.raises(MissingSignalError, match="scores:margin"):
        run_sampler(sampler, SelectionContext(pool_idx=[0], candidate_idx=[1, 2, 3]), 2)


def test_old_requires_warns_once_per_class_not_once_overall():
    a, b = _old_style_margin_sampler(), _old_style_margin_sampler()
    with pytest.warns(DeprecationWarning) as record:
        for _ in range(3):
            requirements_of(a())
            requirements_of(b)
    assert len(_deprecations(record, a)) == 2  # a and b share a qualname: one warning each
    assert len(record) == 2


def test_old_style_sampler_passes_check_sampler():
    with pytest.warns(DeprecationWarning, match="OldLowestMargin declares requires"):
        check_sampler(_old_style_margin_sampler())


def test_sampler_without_requires_is_run_as_requiring_nothing_with_a_warning():
    class Bare:
        def select(self, ctx, k):
            return np.sort(ctx.candidate_idx)[:k]

    with pytest.warns(DeprecationWarning, match="Bare has no `requires`"):
        assert requirements_of(Bare()) == Requirements()
    np.testing.assert_array_equal(run_sampler(Bare(), make_context(40), 2).indices, np.sort(make_context(40).candidate_idx)[:2])


def test_third_party_select_with_radii_is_honoured_with_a_warning():
    class OldRadii:
        requires = Requirements()

        def select(self, ctx, k):
            raise AssertionError("run_sampler must prefer select_with_radii, as the loop did")

        def select_with_radii(self, ctx, k):
            picks = np.sort(ctx.candidate_idx)[:k]
            return picks, np.linspace(2.0, 1.0, k)

    with pytest.warns(DeprecationWarning, match="OldRadii defines select_with_radii"):
        sel = run_sampler(OldRadii(), make_context(40), 4)
    np.testing.assert_array_equal(sel.indices, np.sort(make_context(40).candidate_idx)[:4])
    np.testing.assert_allclose(sel.radii, np.linspace(2.0, 1.0, 4))


def test_kcenter_subclass_overriding_only_select_with_radii_is_still_used():
    from diverseevol.samplers import KCenterSampler

    class Reversed(KCenterSampler):
        def select_with_radii(self, ctx, k):
            sel = self.select(ctx, k)
            return sel.indices[::-1], sel.radii[::-1]

    ctx = make_context(60)
    with pytest.warns(DeprecationWarning, match="Reversed defines select_with_radii"):
        sel = run_sampler(Reversed(), ctx, 4)
    np.testing.assert_array_equal(sel.indices, KCenterSampler().select(ctx, 4).indices[::-1])


# ------------------------------------------------------------------ check_sampler and the new forms
class ReturnsSelection(_Base):
    requires = Requirements(embeddings=True)

    def select(self, ctx, k):
        k = self._k(ctx, k)
        cand = np.sort(ctx.candidate_idx)[:k]
        return Selection(cand, radii=np.arange(k, 0, -1, dtype=np.float64))


class NanRadii(ReturnsSelection):
    def select(self, ctx, k):
        sel = super().select(ctx, k)
        return Selection(sel.indices, radii=np.full(len(sel), np.nan))


class Fractions(_Base):
    def select(self, ctx, k):
        k = self._k(ctx, k)
        return np.sort(ctx.candidate_idx)[:k] + 0.5


def test_check_sampler_accepts_a_selection():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_sampler(ReturnsSelection)


@pytest.mark.parametrize("broken, rule", [(NanRadii, "radii holds NaN"), (Fractions, "non-integral value")])
def test_check_sampler_refuses_bad_new_form_output(broken, rule):
    with pytest.raises(AssertionError, match=rule) as info:
        check_sampler(broken)
    assert broken.__name__ in str(info.value)
