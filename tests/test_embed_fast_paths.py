"""CPU fast paths of the embedding pass: oneDNN linear layers (``onednn``), and what happens without them.

The oracle is the same pass with ``onednn=False`` (PyTorch's ``F.linear``), which the rest of the
embedder tests check against the full model's own output.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hf_fixtures import tiny_handle, word_records

from diverseevol.hf import HFEmbedder, HFScorer, ModelHandle
from diverseevol.hf import _fast_paths as fast_paths
from diverseevol.hf.embedder import forward_pass
from diverseevol.hf.tiny import build_tiny_llama

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def handle():
    return tiny_handle(seed=1)


@pytest.fixture(scope="module")
def records():
    words = ["alpha", "beta", "gamma", "sum", "list", "write", "poem", "why", "how", "tree"]
    return word_records(8, seed=5, words=words, instruction_words=(1, 8), response_words=(1, 14))


def _linears(model):
    return [m for m in model.modules() if type(m) is torch.nn.Linear]


def test_onednn_pass_matches_f_linear_pass(handle, records):
    if not fast_paths.onednn_linear_ok():
        pytest.skip("this torch build has no usable oneDNN linear")
    fast = HFEmbedder(progress=False, max_length=320, onednn=True)
    slow = HFEmbedder(progress=False, max_length=320, onednn=False)
    emb_f, sc_f = fast.embed_and_score(handle, records)
    emb_s, sc_s = slow.embed_and_score(handle, records)
    assert emb_f.dtype == np.float32 and emb_f.shape == emb_s.shape
    np.testing.assert_allclose(emb_f, emb_s, rtol=0, atol=1e-5)
    for name in sc_s:
        np.testing.assert_allclose(sc_f[name], sc_s[name], rtol=1e-5, atol=1e-6)
    scorer = HFScorer(progress=False, max_length=320, onednn=True)
    for name, col in scorer(handle, records).items():
        np.testing.assert_allclose(col, sc_s[name], rtol=1e-5, atol=1e-6)


def test_onednn_layers_switched_only_inside_the_pass(handle, records):
    if not fast_paths.onednn_linear_ok():
        pytest.skip("this torch build has no usable oneDNN linear")
    model = handle.model
    lin = _linears(model)
    assert lin
    seen = []
    hook = lin[0].register_forward_hook(lambda mod, a, out: seen.append("forward" in mod.__dict__))
    try:
        HFEmbedder(progress=False, max_length=320, onednn=True)(handle, records[:3])
    finally:
        hook.remove()
    assert seen and all(seen)  # switched during the pass, hooks still run
    assert not any("forward" in m.__dict__ for m in model.modules())  # restored afterwards
    with fast_paths.onednn_linears(model, enabled=False) as n:
        assert n == 0
    with fast_paths.onednn_linears(model) as n:
        assert n == len(lin)  # the LM head too (the scorer's products)


def test_subclassed_and_non_float32_linears_are_left_alone():
    class MyLinear(torch.nn.Linear):
        pass

    net = torch.nn.Sequential(torch.nn.Linear(4, 4), MyLinear(4, 4), torch.nn.Linear(4, 4).double())
    with fast_paths.onednn_linears(net) as n:
        assert "forward" not in net[1].__dict__ and "forward" not in net[2].__dict__
        assert n == (1 if fast_paths.onednn_linear_ok() else 0)
        x = torch.randn(2, 4)
        with torch.inference_mode():
            got = net[0](x)
        np.testing.assert_allclose(got.numpy(), torch.nn.functional.linear(x, net[0].weight, net[0].bias).detach().numpy(),
                                   rtol=1e-5, atol=1e-6)
    assert not any("forward" in m.__dict__ for m in net.modules())


def test_without_onednn_the_pass_falls_back_to_f_linear(handle, records, monkeypatch):
    slow = HFEmbedder(progress=False, max_length=320, onednn=False)(handle, records)
    monkeypatch.setattr(fast_paths, "_ONEDNN_OK", None)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert fast_paths.onednn_linear_ok() is False
    with fast_paths.onednn_linears(handle.model) as n:
        assert n == 0
    got = HFEmbedder(progress=False, max_length=320)(handle, records)
    np.testing.assert_array_equal(got, slow)  # same code path, bit for bit


def test_onednn_check_failure_is_caught(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("no oneDNN here")

    monkeypatch.setattr(fast_paths, "_ONEDNN_OK", None)
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", boom, raising=False)
    assert fast_paths.onednn_linear_ok() is False


def test_onednn_setting_recorded_only_when_off():
    assert "onednn" not in HFEmbedder().get_params()
    assert HFEmbedder(onednn=False).get_params()["onednn"] is False
    assert "onednn" not in HFScorer().get_params()
    assert HFScorer(onednn=False).get_params()["onednn"] is False


def test_compiled_pass_matches_eager_and_serves_a_second_model(handle, records):
    pytest.importorskip("torch._inductor")
    if not fast_paths.have_cxx():
        pytest.skip("inductor on a CPU needs a C++ compiler")
    import warnings

    other = ModelHandle(model=build_tiny_llama(handle.tokenizer, seed=2), tokenizer=handle.tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a fallback would hide a broken compile
        for h in (handle, other):  # the second model of the same shape: new weights must be used
            eager_emb, eager_sc = HFEmbedder(progress=False, max_length=320).embed_and_score(h, records)
            comp_emb, comp_sc = HFEmbedder(progress=False, max_length=320, compile=True).embed_and_score(h, records)
            np.testing.assert_allclose(comp_emb, eager_emb, rtol=0, atol=1e-5)
            for name in eager_sc:
                np.testing.assert_allclose(comp_sc[name], eager_sc[name], rtol=1e-5, atol=1e-6)
    assert not fast_paths._COMPILE_FAILED
    assert not any("forward" in m.__dict__ for m in handle.model.modules())


def test_compile_failure_warns_once_and_falls_back(handle, records, monkeypatch):
    def broken_compile(fn, **kwargs):
        def run(**kw):
            raise RuntimeError("no C++ compiler")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setattr(fast_paths, "_COMPILE_FAILED", False)
    eager = HFEmbedder(progress=False, max_length=320)(handle, records)
    emb = HFEmbedder(progress=False, max_length=320, compile=True, max_batch_tokens=700)
    with pytest.warns(RuntimeWarning, match="torch.compile of the transformer body failed") as rec:
        got = emb(handle, records)
    assert len([w for w in rec if issubclass(w.category, RuntimeWarning)]) == 1
    np.testing.assert_allclose(got, eager, rtol=0, atol=1e-5)
    assert fast_paths._COMPILE_FAILED  # later passes do not try again
    assert fast_paths.want_compile(True, 10**9, torch.device("cpu")) is False


def test_compile_auto_and_validation(monkeypatch):
    monkeypatch.setattr(fast_paths, "_COMPILE_FAILED", False)
    cpu = torch.device("cpu")
    monkeypatch.setattr(fast_paths, "have_cxx", lambda: True)
    assert fast_paths.want_compile("auto", fast_paths.COMPILE_AUTO_TOKENS, cpu)
    assert not fast_paths.want_compile("auto", fast_paths.COMPILE_AUTO_TOKENS - 1, cpu)
    assert not fast_paths.want_compile(False, 10**9, cpu)
    monkeypatch.setattr(fast_paths, "have_cxx", lambda: False)
    assert not fast_paths.want_compile("auto", 10**9, cpu)
    from diverseevol.errors import ValidationError

    with pytest.raises(ValidationError, match="compile"):
        HFEmbedder(compile="yes")
    with pytest.raises(ValidationError, match="compile"):
        HFScorer(compile=1)
    assert HFEmbedder(compile="auto").get_params()["compile"] == "auto"
    assert "compile" not in HFEmbedder().get_params()


def test_causal_sdpa_runs_without_a_mask_and_restores_the_model(handle, records):
    """The attention used in compiled passes: same vectors as the masked path, the model's setting restored."""
    model = handle.model
    model.set_attn_implementation("sdpa")
    ref, _ = forward_pass(handle, records, causal_padding_free=False, max_length=320, max_batch_tokens=700,
                          progress=False)
    seen = []

    def record_mask(mod, args, kwargs):
        seen.append(kwargs.get("attention_mask"))

    hooks = [layer.self_attn.register_forward_pre_hook(record_mask, with_kwargs=True) for layer in model.model.layers]
    try:
        with fast_paths.causal_sdpa(model, True) as switched:
            assert switched and model.config._attn_implementation == fast_paths.CAUSAL_SDPA
            got, _ = forward_pass(handle, records, max_length=320, max_batch_tokens=700, progress=False)
    finally:
        for h in hooks:
            h.remove()
    assert model.config._attn_implementation == "sdpa"
    assert seen and all(m is None for m in seen)  # transformers built no mask for it
    np.testing.assert_allclose(got, ref, atol=2e-5)  # right padding: the causal mask is all the pads need
    with fast_paths.causal_sdpa(model, False) as switched:  # off (an explicit mask, or no compile): untouched
        assert not switched and model.config._attn_implementation == "sdpa"


def test_causal_sdpa_leaves_other_attentions_alone():
    model = build_tiny_llama(seed=3)
    model.set_attn_implementation("eager")
    with fast_paths.causal_sdpa(model, True) as switched:
        assert not switched and model.config._attn_implementation == "eager"


@pytest.mark.parametrize(
    "vendor, mkl, want",
    [("GenuineIntel", True, False), ("GenuineIntel", False, True), ("AuthenticAMD", True, True), ("", True, True)],
)
def test_onednn_auto_follows_the_cpu_vendor(monkeypatch, vendor, mkl, want):
    monkeypatch.setattr(fast_paths, "cpu_vendor", lambda: vendor)
    monkeypatch.setattr(torch.backends.mkl, "is_available", lambda: mkl)
    assert fast_paths.resolve_onednn("auto") is want
    assert fast_paths.resolve_onednn(True) is True and fast_paths.resolve_onednn(False) is False


@pytest.mark.parametrize("vendor", ["GenuineIntel", "AuthenticAMD"])
def test_auto_pass_switches_layers_by_the_rule(handle, records, monkeypatch, vendor):
    if not fast_paths.onednn_linear_ok():
        pytest.skip("this torch build has no usable oneDNN linear")
    monkeypatch.setattr(fast_paths, "cpu_vendor", lambda: vendor)
    monkeypatch.setattr(torch.backends.mkl, "is_available", lambda: True)
    lin = _linears(handle.model)[0]
    seen = []
    hook = lin.register_forward_hook(lambda mod, a, out: seen.append("forward" in mod.__dict__))
    try:
        got = HFEmbedder(progress=False, max_length=320)(handle, records[:3])
    finally:
        hook.remove()
    assert seen and all(s == (vendor != "GenuineIntel") for s in seen)
    same = HFEmbedder(progress=False, max_length=320, onednn=vendor != "GenuineIntel")(handle, records[:3])
    np.testing.assert_array_equal(got, same)  # "auto" is exactly the path it names


def test_cpu_vendor_reads_the_vendor_line():
    import re

    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo here")
    m = re.search(r"^vendor_id\s*:\s*(.+)$", text, re.M)
    if m is None:
        pytest.skip("no vendor_id line in /proc/cpuinfo here")
    assert fast_paths.cpu_vendor() == m.group(1).strip() != ""


@pytest.mark.parametrize("bad", ["yes", 1, None, "AUTO"])
def test_onednn_setting_is_checked(bad):
    from diverseevol.errors import ValidationError

    with pytest.raises(ValidationError, match="onednn must be True, False or 'auto'"):
        HFEmbedder(onednn=bad)
    with pytest.raises(ValueError, match="onednn"):
        HFScorer(onednn=bad)


def test_onednn_setting_is_recorded_only_when_named():
    assert "onednn" not in HFEmbedder().get_params() and "onednn" not in HFScorer().get_params()
    assert HFEmbedder(onednn=False).get_params()["onednn"] is False
    assert HFScorer(onednn=True).get_params()["onednn"] is True
    assert HFEmbedder(onednn=np.False_).get_params()["onednn"] is False  # a plain bool: config.json can hold it
