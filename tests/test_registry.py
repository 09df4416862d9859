"""The sampler registry: names, decorator checks, lookup errors, entry-point plugins."""

from __future__ import annotations

import sys
import textwrap
import warnings

import numpy as np
import pytest

from diverseevol import get_sampler, list_samplers, register_sampler
from diverseevol.errors import (
    PluginLoadWarning,
    SamplerRegistrationError,
    UnknownSamplerError,
    ValidationError,
)
from diverseevol.samplers import (
    KCenterSampler,
    RandomSampler,
    Requirements,
    get_sampler_class,
    registry,
    requirements_of,
    unregister_sampler,
)

BUILTINS = {"entropy", "kcenter", "least_confidence", "margin", "random"}


def _sampler_class(requires=frozenset()):
    class Dummy:
        def select(self, ctx, k):
            return np.sort(ctx.candidate_idx)[:k]

    Dummy.requires = requires
    return Dummy


@pytest.fixture
def scratch_names():
    """Names registered by a test are removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        if name in registry._registry:
            unregister_sampler(name)


# ------------------------------------------------------------------ listing and lookup
def test_list_samplers_has_builtins_sorted():
    names = list_samplers()
    assert BUILTINS <= set(names)
    assert names == sorted(names)


def test_get_sampler_builds_instances_with_params():
    s = get_sampler("kcenter", metric="cosine", backend="numpy")
    assert isinstance(s, KCenterSampler)
    assert (s.metric, s.backend) == ("cosine", "numpy")
    assert s.name == "kcenter" and s.requires == frozenset({"embeddings"})
    assert get_sampler("kcenter") is not get_sampler("kcenter")  # a fresh instance each time


def test_get_sampler_passes_instances_through():
    s = RandomSampler()
    assert get_sampler(s) is s
    with pytest.raises(ValidationError, match="already built sampler"):
        get_sampler(s, foo=1)
    with pytest.raises(ValidationError, match="registered name"):
        get_sampler(RandomSampler)  # a class, not an instance
    with pytest.raises(ValidationError, match="registered name"):
        get_sampler(42)


def test_unknown_name_lists_available_and_suggests():
    with pytest.raises(UnknownSamplerError) as info:
        get_sampler("kcentre")
    msg = str(info.value)
    assert "'kcentre'" in msg and "Did you mean 'kcenter'?" in msg
    for name in BUILTINS:
        assert name in msg
    assert isinstance(info.value, KeyError)  # catchable as the builtin a user expects
    with pytest.raises(UnknownSamplerError) as info:
        get_sampler("zzzz")
    assert "Did you mean" not in str(info.value)


def test_bad_params_name_accepted_ones():
    with pytest.raises(ValidationError, match=r"does not accept.*metric, backend, prune, block_rows, backend_options"):
        get_sampler("kcenter", metrc="cosine")
    with pytest.raises(ValidationError, match="metric must be one of"):
        get_sampler("kcenter", metric="manhattan")


def test_repr_and_params_round_trip():
    s = get_sampler("kcenter", metric="cosine", backend_options={"nprobe": 4})
    assert repr(s) == (
        "KCenterSampler(metric='cosine', backend='auto', prune='auto', block_rows=None, "
        "backend_options={'nprobe': 4})"
    )
    assert get_sampler("kcenter", **s.get_params()).get_params() == s.get_params()
    assert repr(get_sampler("margin")) == "MarginSampler()"


# ------------------------------------------------------------------ registration checks
@pytest.mark.parametrize("bad", ["", "Random", "1st", "my-sampler", "a b", "k.center", None, 3])
def test_register_rejects_bad_names(bad):
    with pytest.raises(SamplerRegistrationError, match="name"):
        register_sampler(bad)


def test_register_suggests_a_valid_name():
    with pytest.raises(SamplerRegistrationError, match="'my_sampler'"):
        register_sampler("My-Sampler")


def test_register_sets_name_and_normalises_requires(scratch_names):
    scratch_names.append("dummy_ok")
    cls = register_sampler("dummy_ok")(_sampler_class(requires={"embeddings", "scores:margin"}))
    assert cls.name == "dummy_ok"
    assert cls.requires == frozenset({"embeddings", "scores:margin"}) and isinstance(cls.requires, frozenset)
    assert get_sampler_class("dummy_ok") is cls
    assert "dummy_ok" in list_samplers()
    assert isinstance(get_sampler("dummy_ok"), cls)


def test_register_keeps_requirements_and_warns_once_for_the_old_form(scratch_names):
    scratch_names += ["dummy_new", "dummy_old", "dummy_old_again"]
    req = Requirements(embeddings=True, scores=frozenset({"margin"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = register_sampler("dummy_new")(_sampler_class(requires=req))
    assert new.requires is req
    old = _sampler_class(requires={"scores:margin"})
    with pytest.warns(DeprecationWarning) as record:
        register_sampler("dummy_old")(old)
        register_sampler("dummy_old_again")(old)  # the same class under a second name
        requirements_of(get_sampler("dummy_old"))
    assert len(record) == 1
    assert "Requirements(scores=frozenset({'margin'}))" in str(record[0].message)
    assert record[0].filename == __file__  # points at the registering line, not into the library


def test_register_refuses_bad_requirements_through_the_one_parser(scratch_names):
    with pytest.raises(SamplerRegistrationError, match=r"Dummy: requires holds 'scores:'.*scores:<signal>"):
        register_sampler("x_empty_score")(_sampler_class(requires=frozenset({"scores:"})))
    with pytest.raises(SamplerRegistrationError, match="no `requires`.*Requirements"):
        register_sampler("x_none_requires")(_sampler_class(requires=None))
    assert not {"x_empty_score", "x_none_requires"} & set(list_samplers())


def test_register_direct_call_form(scratch_names):
    scratch_names.append("dummy_direct")
    cls = _sampler_class()
    assert register_sampler("dummy_direct", cls) is cls


def test_register_refuses_silent_overwrite(scratch_names):
    scratch_names.append("dummy_clash")
    first = register_sampler("dummy_clash")(_sampler_class())
    with pytest.raises(SamplerRegistrationError, match="already registered.*overwrite=True"):
        register_sampler("dummy_clash")(_sampler_class())
    assert get_sampler_class("dummy_clash") is first
    register_sampler("dummy_clash")(first)  # the same class again is fine
    second = register_sampler("dummy_clash", overwrite=True)(_sampler_class())
    assert get_sampler_class("dummy_clash") is second
    with pytest.raises(SamplerRegistrationError, match="already registered"):
        register_sampler("random")(_sampler_class())
    assert get_sampler_class("random") is RandomSampler


def test_register_rejects_non_samplers():
    class NoSelect:
        requires = frozenset()

    class NoRequires:
        def select(self, ctx, k):
            return ctx.candidate_idx[:k]

    with pytest.raises(SamplerRegistrationError, match="no select"):
        register_sampler("x_no_select")(NoSelect)
    with pytest.raises(SamplerRegistrationError, match="no `requires`"):
        register_sampler("x_no_requires")(NoRequires)
    with pytest.raises(SamplerRegistrationError, match="bare string"):
        register_sampler("x_str_requires")(_sampler_class(requires="embeddings"))
    with pytest.raises(SamplerRegistrationError, match="scores:<signal>"):
        register_sampler("x_bad_requires")(_sampler_class(requires=frozenset({"margin"})))
    with pytest.raises(SamplerRegistrationError, match="expects a sampler class"):
        register_sampler("x_instance")(RandomSampler())
    assert not {"x_no_select", "x_no_requires", "x_str_requires", "x_bad_requires", "x_instance"} & set(list_samplers())


def test_unregister_unknown():
    with pytest.raises(UnknownSamplerError):
        unregister_sampler("never_registered")


# ------------------------------------------------------------------ entry-point plugins
def _write_dist(root, dist_name, entry_points: dict[str, str]):
    info = root / f"{dist_name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.1\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[diverseevol.samplers]\n{lines}\n")


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A directory on sys.path holding installed-looking plugin distributions (real entry points)."""
    modules = ["dvs_plugin_good", "dvs_plugin_decorated", "dvs_plugin_broken", "dvs_plugin_clash"]
    (tmp_path / "dvs_plugin_good.py").write_text(textwrap.dedent("""
        import numpy as np

        class LowestIndexSampler:
            requires = frozenset()
            def __init__(self, offset=0):
                self.offset = offset
            def select(self, ctx, k):
                from diverseevol.samplers import check_k
                k = check_k(k, len(ctx.candidate_idx))
                return np.sort(ctx.candidate_idx)[self.offset:self.offset + k].astype(np.int64)

        class NotASampler:
            pass
    """))
    (tmp_path / "dvs_plugin_decorated.py").write_text(textwrap.dedent("""
        import numpy as np
        from diverseevol import register_sampler

        @register_sampler("plugin_decorated")
        class HighestIndexSampler:
            requires = frozenset({"embeddings"})
            def select(self, ctx, k):
                return np.sort(ctx.candidate_idx)[::-1][:k].astype(np.int64)
    """))
    (tmp_path / "dvs_plugin_broken.py").write_text("import numpy as np\nraise RuntimeError('plugin exploded on import')\n")
    (tmp_path / "dvs_plugin_clash.py").write_text("class Imposter:\n    requires = frozenset()\n    def select(self, ctx, k):\n        return ctx.candidate_idx[:k]\n")
    _write_dist(tmp_path, "dvs_good", {"plugin_lowest": "dvs_plugin_good:LowestIndexSampler"})
    _write_dist(tmp_path, "dvs_decorated", {"plugin_decorated": "dvs_plugin_decorated:HighestIndexSampler"})
    _write_dist(tmp_path, "dvs_broken", {"plugin_broken": "dvs_plugin_broken:Anything"})
    _write_dist(tmp_path, "dvs_rival", {"plugin_lowest": "dvs_plugin_clash:Imposter"})
    _write_dist(
        tmp_path,
        "dvs_misc",
        {
            "plugin_missing_attr": "dvs_plugin_good:DoesNotExist",
            "plugin_not_sampler": "dvs_plugin_good:NotASampler",
            "random": "dvs_plugin_clash:Imposter",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._forget_plugins()  # tests start from "not yet scanned"
    yield tmp_path
    for mod in modules:
        sys.modules.pop(mod, None)
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        registry.reload_plugins()
    for name in ("plugin_decorated",):
        if name in registry._registry:
            unregister_sampler(name)


def test_plugins_load_and_broken_ones_warn(plugin_dir):
    with pytest.warns(PluginLoadWarning) as record:
        names = list_samplers()
    assert {"plugin_lowest", "plugin_decorated"} <= set(names)
    assert BUILTINS <= set(names)
    for bad in ("plugin_broken", "plugin_missing_attr", "plugin_not_sampler"):
        assert bad not in names
    messages = [str(w.message) for w in record]
    broken = [m for m in messages if "'plugin_broken'" in m]
    assert broken and "RuntimeError: plugin exploded on import" in broken[0] and "dvs_broken" in broken[0]
    assert any("'plugin_missing_attr'" in m and "DoesNotExist" in m for m in messages)
    assert any("'plugin_not_sampler'" in m and "no select" in m for m in messages)
    assert any("'random'" in m and "already taken" in m for m in messages)
    assert any("dvs_rival" in m and "already claims the name 'plugin_lowest'" in m for m in messages)
    assert type(get_sampler("plugin_lowest")).__name__ == "LowestIndexSampler"
    assert get_sampler_class("random") is RandomSampler  # a plugin cannot hijack a built-in


def test_plugin_samplers_work(plugin_dir):
    from diverseevol.samplers.base import SelectionContext

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        s = get_sampler("plugin_lowest", offset=1)
    assert s.name == "plugin_lowest"
    ctx = SelectionContext(pool_idx=np.array([0]), candidate_idx=np.array([5, 3, 9, 7]))
    np.testing.assert_array_equal(s.select(ctx, 2), [5, 7])
    assert get_sampler_class("plugin_decorated").requires == frozenset({"embeddings"})


def test_plugins_load_lazily_on_a_miss(plugin_dir):
    get_sampler("random")
    assert registry._plugins_loaded is False  # a known name does not scan entry points
    assert "dvs_plugin_good" not in sys.modules
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        s = get_sampler("plugin_lowest")
    assert registry._plugins_loaded is True
    assert type(s).__name__ == "LowestIndexSampler"


def test_unknown_name_after_plugins_scanned(plugin_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        with pytest.raises(UnknownSamplerError, match="plugin_lowest"):
            get_sampler("plugin_lowset")  # the message lists plugins too
