"""One contract for every K-Center backend: unknown options fail the same way, inert options warn.

The accepted option names are written out here (not read from the declaration) so that a change to
a backend's options shows up as a test change.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

from diverseevol import kcenter_select
from diverseevol.errors import DiverseEvolError, IgnoredOptionWarning, UnknownOptionError, ValidationError
from diverseevol.kernels import contract
from diverseevol.kernels.backends import installed_backends

NUMPY = ["blas_filter", "block_rows", "lazy", "max_copy_bytes", "n_threads", "progress", "prune", "stats"]
ACCEPTED = {
    "numpy": NUMPY,
    "faiss": sorted(NUMPY + ["device"]),
    "torch": sorted(["blas_filter", "block_rows", "device", "lazy", "max_copy_bytes", "max_device_bytes", "n_threads",
                     "pool_chunk_rows", "progress", "prune", "stats"]),
}
HERE = [b for b in ("numpy", "faiss", "torch") if b in installed_backends()]


def _data(n=300, d=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("backend", HERE)
def test_unknown_option_fails_on_every_backend_listing_the_accepted_ones(backend):
    x = _data()
    with pytest.raises(UnknownOptionError) as info:
        kcenter_select(x, np.arange(5), 3, backend=backend, no_such_option=1, device="cpu" if backend == "numpy" else None)
    msg = str(info.value)
    assert f"backend {backend!r}" in msg and "no_such_option" in msg
    assert f"it accepts {ACCEPTED[backend]}" in msg
    if backend == "numpy":  # another backend's option is unknown to numpy, and the message says whose it is
        assert "'device' is an option of backend 'faiss' and 'torch'" in msg
    # one typed error, catchable as the builtin TypeError and as the library's base error
    assert isinstance(info.value, TypeError) and isinstance(info.value, DiverseEvolError)
    assert isinstance(info.value, ValidationError)


@pytest.mark.parametrize("backend", HERE)
def test_unknown_option_is_refused_before_any_work_even_for_k_zero(backend):
    with pytest.raises(TypeError, match="unknown option"):
        kcenter_select(_data(), np.arange(5), 0, backend=backend, lazzy=True)


@pytest.mark.parametrize(
    ("backend", "typo", "meant"),
    [("numpy", "n_thread", "n_threads"), ("numpy", "max_copy_byte", "max_copy_bytes"), ("auto", "lazzy", "lazy"),
     ("torch", "max_device_byte", "max_device_bytes"), ("faiss", "devices", "device")],
)
def test_a_typo_gets_a_suggestion(backend, typo, meant):
    if backend != "auto" and backend not in HERE:
        pytest.skip(f"{backend} not installed")
    with pytest.raises(DiverseEvolError, match=f"Did you mean '{meant}' instead of '{typo}'"):
        kcenter_select(_data(), np.arange(5), 3, backend=backend, **{typo: 2})


def test_auto_refuses_an_option_no_backend_has():
    with pytest.raises(UnknownOptionError, match=r"any backend \(backend='auto'\)"):
        kcenter_select(_data(), np.arange(5), 3, backend="auto", colour="red")


@pytest.mark.skipif("torch" not in HERE, reason="needs torch")
@pytest.mark.parametrize("option", [{"lazy": True}, {"prune": True}, {"prune": False}, {"max_copy_bytes": 0},
                                    {"stats": {}}])
def test_an_option_without_effect_on_torch_warns_and_changes_nothing(option):
    x = _data(seed=1)
    want = kcenter_select(x, np.arange(5), 12, backend="numpy")
    with pytest.warns(IgnoredOptionWarning, match=rf"option {next(iter(option))}=.* is ignored: backend 'torch'"):
        got = kcenter_select(x, np.arange(5), 12, backend="torch", **option)
    np.testing.assert_array_equal(got, want)
    if "stats" in option:
        assert option["stats"] == {}  # not filled: torch has no counters


@pytest.mark.skipif("torch" not in HERE, reason="needs torch")
def test_defaults_of_inert_options_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kcenter_select(_data(), np.arange(5), 3, backend="torch", prune="auto", lazy="auto", stats=None)


def test_auto_warns_about_an_option_of_a_backend_it_did_not_choose():
    x = _data(seed=2)  # small: "auto" chooses numpy
    want = kcenter_select(x, np.arange(5), 10, backend="numpy")
    with pytest.warns(IgnoredOptionWarning) as record:
        got = kcenter_select(x, np.arange(5), 10, backend="auto", device="cuda", max_device_bytes=1 << 20)
    np.testing.assert_array_equal(got, want)
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 2
    assert messages[0].startswith("option device='cuda' is ignored: backend='auto' chose 'numpy'")
    assert messages[1].startswith("option max_device_bytes=1048576 is ignored: backend='auto' chose 'numpy'")
    assert "an option of ['torch']" in messages[1]


def test_option_values_are_checked_once_at_the_boundary():
    for backend in HERE:
        with pytest.raises(ValidationError, match="n_threads must be None or a positive int"):
            kcenter_select(_data(), np.arange(5), 3, backend=backend, n_threads=0)
        with pytest.raises(ValidationError, match="block_rows"):
            kcenter_select(_data(), np.arange(5), 3, backend=backend, block_rows=-2)
    with pytest.raises(ValidationError, match="lazy must be 'auto', True or False"):
        kcenter_select(_data(), np.arange(5), 3, backend="auto", lazy="sometimes")
    with pytest.raises(ValidationError, match="stats must be None or a dict"):
        kcenter_select(_data(), np.arange(5), 3, backend="numpy", stats=[])


def _keyword_defaults(fn) -> dict:
    sig = inspect.signature(fn)
    return {
        name: p.default
        for name, p in sig.parameters.items()
        if p.kind is p.KEYWORD_ONLY and name not in ("metric", "first_pick", "nearest_pool_idx")
    }


def test_backend_signatures_match_their_declaration():
    # The declared options are exactly the keywords each kernel takes, with the same defaults;
    # no kernel takes **kwargs that would swallow an option (faiss passes its extra ones to numpy).
    from diverseevol.kernels import _faiss, _numpy, _torch

    numpy_kw = _keyword_defaults(_numpy.farthest_first)
    faiss_kw = {**numpy_kw, **_keyword_defaults(_faiss.farthest_first)}
    for name, kw in (("numpy", numpy_kw), ("faiss", faiss_kw), ("torch", _keyword_defaults(_torch.farthest_first))):
        spec = contract.BACKENDS[name]
        assert sorted(kw) == sorted(spec.options), name
        assert {o: contract.OPTIONS[o].default for o in spec.options} == kw, name
    for fn in (_numpy.farthest_first, _torch.farthest_first):
        assert all(p.kind is not p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


def test_metrics_have_one_home():
    from diverseevol.kernels import kcenter

    assert contract.METRICS == ("euclidean", "cosine")
    assert kcenter.METRICS is contract.METRICS
    with pytest.raises(ValidationError, match=r"metric must be one of \['euclidean', 'cosine'\]"):
        contract.check_metric("manhattan")
