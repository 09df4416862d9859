"""diverseevol.samplers.spec: the one sampler-spec syntax and value grammar (issue 21 item 2).

The canonical text round-trips (a property test over generated specs), the value grammar is JSON-else-string,
an empty value is an error (issue 22 item 12), unknown names and parameters get a close match, the old
spellings still work with a DeprecationWarning, and the mode vocabulary has one home.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diverseevol.errors import UnknownSamplerError, ValidationError
from diverseevol.samplers.spec import (
    MODES,
    SamplerSpec,
    format_param_value,
    parse_param,
    parse_param_value,
    parse_sampler_spec,
    parse_sampler_specs,
)

ROOT = Path(__file__).resolve().parents[1]

# ---- the value grammar -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value",
    [
        ("8", 8), ("-3", -3), ("0.5", 0.5), ("1e3", 1000.0), ("true", True), ("false", False), ("null", None),
        ('"8"', "8"), ('"a,b"', "a,b"), ('"true"', "true"), ("[1, 2]", [1, 2]), ('{"dim": 4}', {"dim": 4}),
        ("cosine", "cosine"), ("center+normalize", "center+normalize"), ("whiten:dim=64", "whiten:dim=64"),
        ("  spaced  ", "spaced"), ("Yes please", "Yes please"),
    ],
)
def test_a_value_is_a_json_literal_else_a_string(text: str, value: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these is an old spelling
        got = parse_param_value(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text, value", [("yes", True), ("no", False), ("none", None), ("True", True),
                                         ("False", False), ("None", None), ("NONE", None)])
def test_old_bare_words_warn_and_name_the_json_spelling(text: str, value: object) -> None:
    with pytest.warns(DeprecationWarning, match=f"write {json.dumps(value)!r}"):
        assert parse_param_value(text) is value


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_value_is_an_error(text: str) -> None:
    with pytest.raises(ValidationError, match="empty"):
        parse_param_value(text)
    with pytest.raises(ValidationError, match="The value of 'transform' is empty"):
        parse_param(f"transform={text}")


def test_parse_param_is_the_key_value_form() -> None:
    assert parse_param("metric=cosine") == ("metric", "cosine")
    assert parse_param(" n_clusters = 8 ") == ("n_clusters", 8)
    assert parse_param("transform=whiten:dim=64") == ("transform", "whiten:dim=64")  # split at the first '='
    for bad in ("metric", "=cosine", "two words=1", "1x=2"):
        with pytest.raises(ValidationError, match="KEY=VALUE"):
            parse_param(bad)


# ---- specs -------------------------------------------------------------------------------------


def test_the_examples_of_the_syntax() -> None:
    cases = {
        "kcenter": SamplerSpec("kcenter"),
        "kcenter:transform=normalize": SamplerSpec("kcenter", transform="normalize"),
        "kcenter:mode=one_time,metric=cosine": SamplerSpec("kcenter", {"metric": "cosine"}, mode="one_time"),
        "kmeans:n_clusters=8": SamplerSpec("kmeans", {"n_clusters": 8}),
        'kcenter:transform="project:dim=4,kind=rademacher",prune=false':
            SamplerSpec("kcenter", {"prune": False}, transform="project:dim=4,kind=rademacher"),
    }
    for text, want in cases.items():
        got = parse_sampler_spec(text)
        assert got == want and str(got) == str(want) and (got.name, got.params, got.mode, got.transform) == (
            want.name, want.params, want.mode, want.transform)
    assert str(parse_sampler_spec("kcenter:metric=cosine,mode=one_time,transform=whiten")) == \
        "kcenter:mode=one_time,transform=whiten,metric=cosine"  # canonical: reserved keys first, params by key
    spec = parse_sampler_spec("kcenter:transform=whiten,metric=cosine")
    assert spec.kwargs == {"metric": "cosine", "transform": "whiten"} and spec.label == str(spec)
    assert SamplerSpec("kcenter", {"transform": "whiten", "mode": "iterative"}) == \
        SamplerSpec("kcenter", transform="whiten", mode="iterative")  # reserved keys given as params move
    assert parse_sampler_spec("kcenter:transform=null,mode=null") == SamplerSpec("kcenter")
    assert hash(parse_sampler_spec("kcenter:b=1,a=2")) == hash(parse_sampler_spec("kcenter:a=2,b=1"))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty"),
        ("kcenter:", "nothing after ':'"),
        ("kcenter:transform=", "The value of 'transform' is empty"),
        ("kcenter:metric=", "The value of 'metric' is empty"),
        ("kcenter:transform", "KEY=VALUE"),
        ("k center", "must start with a sampler name"),
        ("kcenter:a=1,a=2", "gives 'a' twice"),
        ("kcenter:mode=onetime", "Did you mean 'one_time'?"),
        ("kcenter:mode=3", "mode must be one of"),
        ('kcenter:transform="whiten', "Unbalanced double quote"),
        ("kcenter:x=[1,2", "Unbalanced"),
        ("kcenter:x=1]", "Unbalanced"),
        ("kcenter:transform=\"\"", "empty transform"),
    ],
)
def test_malformed_specs_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        parse_sampler_spec(text)


def test_unknown_names_and_parameters_get_a_close_match() -> None:
    with pytest.raises(UnknownSamplerError, match="Did you mean 'kcenter'"):
        parse_sampler_spec("kcentre:metric=cosine").build()
    with pytest.raises(ValidationError, match=r"Did you mean 'metric' \(not 'metrik'\)"):
        parse_sampler_spec("kcenter:metrik=cosine").build()
    with pytest.raises(ValidationError, match=r"Did you mean 'n_clusters' \(not 'nclusters'\)"):
        parse_sampler_spec("kmeans:nclusters=8").build()
    with pytest.raises(ValidationError, match="does not accept"):
        parse_sampler_spec("random:transform=normalize").build()
    built = parse_sampler_spec("kcenter:mode=one_time,transform=whiten,metric=cosine").build()
    assert (type(built).__name__, built.metric, built.transform) == ("KCenterSampler", "cosine", "whiten")


def test_values_that_are_not_json_are_refused_when_the_spec_is_made() -> None:
    with pytest.raises(ValidationError, match="cannot be written as a spec value"):
        SamplerSpec("kcenter", {"x": object()})
    with pytest.raises(ValidationError, match="names"):
        SamplerSpec("kcenter", {"bad key": 1})
    with pytest.raises(ValidationError, match="give transform once"):
        SamplerSpec("kcenter", {"transform": "whiten"}, transform="normalize")
    import numpy as np

    assert str(SamplerSpec("kmeans", {"n_clusters": np.int64(8), "t": (1, 2)})) == "kmeans:n_clusters=8,t=[1,2]"


def test_lists_split_at_top_level_commas() -> None:
    specs = parse_sampler_specs(['kcenter,kcenter:transform=whiten,metric=cosine,kmeans:n_clusters=3',
                                 'random,x_sampler:v=[1,2],w={"a":1,"b":[2,3]},z="p,q"'])
    assert [str(s) for s in specs] == ["kcenter", "kcenter:transform=whiten,metric=cosine", "kmeans:n_clusters=3",
                                      "random", 'x_sampler:v=[1,2],w={"a":1,"b":[2,3]},z="p,q"']
    assert specs[-1].params == {"v": [1, 2], "w": {"a": 1, "b": [2, 3]}, "z": "p,q"}
    for bad in ("", "kcenter,,random", "kcenter,kcenter", "kcenter:metric=cosine,kcenter:metric=cosine",
                "kcenter_one_time,kcenter:mode=one_time"):
        with pytest.raises(ValidationError), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            parse_sampler_specs(bad)


@pytest.mark.parametrize(
    "old, new",
    [
        ("kcenter_one_time", "kcenter:mode=one_time"),
        ("kcenter@normalize", "kcenter:transform=normalize"),
        ("kcenter_one_time@whiten", "kcenter:mode=one_time,transform=whiten"),
        ("kcenter@project:dim=4", "kcenter:transform=project:dim=4"),
        ("kcenter_one_time:metric=cosine", "kcenter:mode=one_time,metric=cosine"),
    ],
)
def test_old_spellings_warn_and_name_the_new_one(old: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=re.escape(f"write {new!r}")):
        got = parse_sampler_spec(old)
    assert got == parse_sampler_spec(new) and str(got) == new
    with pytest.raises(ValidationError, match="after '@'"):
        parse_sampler_spec("kcenter@")


# ---- the canonical text round-trips ------------------------------------------------------------

_names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_keys = _names.filter(lambda k: k not in ("mode", "transform"))
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(min_size=1, max_size=12),
)
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                       max_leaves=6)
_transforms = st.one_of(st.none(), st.sampled_from(["normalize", "whiten:dim=4", "center+normalize",
                                                    "project:dim=8,kind=rademacher"]),
                        st.text(min_size=1, max_size=10).filter(lambda t: t.strip()))


@settings(max_examples=300, deadline=None)
@given(name=_names, params=st.dictionaries(_keys, _values, max_size=4), mode=st.sampled_from([None, *MODES]),
       transform=_transforms)
def test_str_round_trips_through_the_parser(name: str, params: dict, mode: str | None, transform: str | None) -> None:
    spec = SamplerSpec(name, params, mode=mode, transform=transform)
    text = str(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the canonical text never uses an old spelling
        again = parse_sampler_spec(text)
    assert again == spec and str(again) == text
    assert again.mode == mode and again.transform == transform
    assert json.dumps(again.params, sort_keys=True) == json.dumps(spec.params, sort_keys=True)
    assert parse_sampler_specs(f"{text},random")[0] == spec  # also inside a list


@given(value=_values)
def test_format_param_value_round_trips(value: object) -> None:
    text = format_param_value(value)
    got = parse_param_value(text)
    assert json.dumps(got, sort_keys=True) == json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        assert math.copysign(1.0, got) == math.copysign(1.0, value)


# ---- one home for the mode vocabulary ------------------------------------------------------------


def test_the_modes_are_spelled_once() -> None:
    from diverseevol.config import BudgetConfig
    from diverseevol.run import settings as run_settings

    assert run_settings.MODES is MODES
    choices = [f.metadata["key"].choices for f in BudgetConfig.__dataclass_fields__.values() if f.name == "mode"]
    assert choices == [MODES]
    # no other library module defines its own tuple of the modes
    pattern = re.compile(r"""\(\s*["']iterative["']\s*,\s*["']one_time["']\s*\)""")
    owners = [p.relative_to(ROOT).as_posix() for p in (ROOT / "diverseevol").rglob("*.py")
              if pattern.search(p.read_text(encoding="utf-8"))]
    assert owners == ["diverseevol/samplers/spec.py"]
