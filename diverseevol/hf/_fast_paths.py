"""Fast paths of the embedding pass: oneDNN linear layers on a CPU, ``torch.compile`` of the
transformer body, and PyTorch SDPA attention.

Each is a context or wrapper that :func:`diverseevol.hf.embedder.forward_pass` enters for one
pass and that restores the model afterwards; none changes what the pass computes beyond float32
rounding (see ``onednn`` and ``compile`` there).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from typing import Any

from ..errors import ValidationError
from ._model import base_model

logger = logging.getLogger(__name__)

__all__ = [
    "CAUSAL_SDPA",
    "COMPILE_AUTO_TOKENS",
    "CompiledBody",
    "causal_sdpa",
    "check_compile",
    "check_onednn",
    "cpu_vendor",
    "have_cxx",
    "onednn_linear_custom_op",
    "onednn_linear_ok",
    "onednn_linears",
    "resolve_onednn",
    "sdpa_attention",
    "want_compile",
]


#: Result of the one-off check that oneDNN's linear runs here and agrees with ``F.linear``.
_ONEDNN_OK: bool | None = None


def onednn_linear_ok() -> bool:
    """Whether ``torch.ops.mkldnn._linear_pointwise`` runs in this build and matches ``F.linear`` (checked once)."""
    global _ONEDNN_OK
    if _ONEDNN_OK is None:
        import torch

        ok = False
        try:
            if torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
                gen = torch.Generator().manual_seed(0)
                x = torch.randn(3, 5, 24, generator=gen)
                w, b = torch.randn(40, 24, generator=gen), torch.randn(40, generator=gen)
                with torch.inference_mode():
                    got = torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
                    want = torch.nn.functional.linear(x, w, b)
                ok = got.shape == want.shape and bool(torch.allclose(got, want, rtol=1e-4, atol=1e-5))
        except Exception as exc:  # a build without the op, or one that rejects it: keep F.linear
            logger.debug("oneDNN linear not usable: %s", exc)
        _ONEDNN_OK = ok
    return _ONEDNN_OK


@functools.cache
def cpu_vendor() -> str:
    """The CPU's vendor string (``"GenuineIntel"``, ``"AuthenticAMD"``...), or ``""`` where it cannot be read.

    Read once per process (every pass asks, and /proc/cpuinfo is long on a many-core node)."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    proc = platform.processor()
    return "GenuineIntel" if "GenuineIntel" in proc or proc.startswith("Intel") else ""


def check_onednn(onednn: Any) -> bool | str:
    """The ``onednn`` setting checked: ``"auto"``, or a plain bool (numpy's bools included)."""
    import numpy as np

    if isinstance(onednn, str) and onednn == "auto":
        return onednn
    if isinstance(onednn, (bool, np.bool_)):
        return bool(onednn)
    raise ValidationError(
        f"onednn must be True, False or 'auto'; got {onednn!r}. 'auto' picks oneDNN's linear on a CPU unless "
        f"PyTorch's BLAS is MKL on an Intel CPU."
    )


def resolve_onednn(onednn: bool | str) -> bool:
    """Whether a pass runs its CPU linear layers through oneDNN: ``onednn`` itself, or for ``"auto"`` the CPU's choice.

    ``"auto"``: oneDNN, except where PyTorch's ``F.linear`` calls MKL on an Intel CPU (MKL's own code path there).
    Measured (2 threads, SmolLM2-135M's linear shapes): on an AMD EPYC oneDNN ran 2-2.5x MKL (MKL takes a slow path
    on AMD CPUs); on an Intel Xeon MKL ran 288-291 GFLOP/s against oneDNN's 242-253, and the compiled pass at 872
    against 655 tokens/s. A rule on the vendor, not a timing, so a machine always takes the same path (same bits).
    """
    if onednn != "auto":
        return bool(onednn)
    import torch

    return not (torch.backends.mkl.is_available() and cpu_vendor() == "GenuineIntel")


@contextlib.contextmanager
def onednn_linears(model: Any, enabled: bool | str = True, *, custom_op: bool = False) -> Iterator[int]:
    """Run the float32 ``nn.Linear`` layers of a CPU ``model`` through oneDNN inside the block.

    PyTorch's CPU ``F.linear`` calls the BLAS it was built with (MKL in the PyPI wheels), which
    picks a slow code path on AMD CPUs; oneDNN's linear (``torch.ops.mkldnn._linear_pointwise``)
    runs the same product 2-2.5x faster there. On an Intel CPU MKL is the faster one:
    ``enabled="auto"`` keeps ``F.linear`` there (:func:`resolve_onednn`). Only exact
    ``torch.nn.Linear`` modules with float32 weights on the CPU are switched (quantised or subclassed layers keep their own forward); each keeps its weights and
    hooks, and gets its own forward back at the end. With ``custom_op`` the layers call
    :func:`onednn_linear_custom_op` (an opaque op ``torch.compile`` keeps as one call: inductor
    cannot lower oneDNN's linear with unpacked weights). Yields how many layers were switched.
    """
    import torch

    switched: list[Any] = []
    if resolve_onednn(enabled) and onednn_linear_ok():
        linear = torch.nn.functional.linear
        if custom_op:
            custom = onednn_linear_custom_op()

            def op(x: Any, w: Any, b: Any, *_: Any) -> Any:
                return custom(x, w, b)

        else:
            op = torch.ops.mkldnn._linear_pointwise
        for mod in model.modules():
            w = getattr(mod, "weight", None)
            if (
                type(mod) is not torch.nn.Linear
                or "forward" in mod.__dict__
                or w is None
                or w.device.type != "cpu"
                or w.dtype != torch.float32
                or w.layout != torch.strided
            ):
                continue

            def forward(x: Any, _m: Any = mod) -> Any:
                if x.dtype != _m.weight.dtype or x.requires_grad:
                    return linear(x, _m.weight, _m.bias)
                return op(x, _m.weight, _m.bias, "none", [], "")

            mod.forward = forward
            switched.append(mod)
    try:
        yield len(switched)
    finally:
        for mod in switched:
            mod.__dict__.pop("forward", None)


_CUSTOM_OP: Any = None


def onednn_linear_custom_op() -> Any:
    """``diverseevol::onednn_linear(x, weight, bias)``: oneDNN's linear as a custom op with a shape rule."""
    global _CUSTOM_OP
    if _CUSTOM_OP is None:
        import torch

        # explicit schema: this module's annotations are strings (``from __future__ import annotations``)
        @torch.library.custom_op(
            "diverseevol::onednn_linear", mutates_args=(), schema="(Tensor x, Tensor weight, Tensor? bias) -> Tensor"
        )
        def onednn_linear(x: Any, weight: Any, bias: Any) -> Any:
            return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")

        @onednn_linear.register_fake
        def _(x: Any, weight: Any, bias: Any) -> Any:
            return x.new_empty((*x.shape[:-1], weight.shape[0]))

        _CUSTOM_OP = onednn_linear
    return _CUSTOM_OP


#: Real tokens of a pass from which ``compile="auto"`` compiles.
COMPILE_AUTO_TOKENS = 100_000

#: Set after a compilation failed in this process: later passes do not try again.
_COMPILE_FAILED = False


def check_compile(compile: Any) -> None:
    if not (isinstance(compile, bool) or compile == "auto"):
        raise ValidationError(f"compile must be True, False or 'auto'; got {compile!r}.")


def have_cxx() -> bool:
    import os
    import shutil

    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "c++", "g++", "clang++") if c)


def want_compile(compile: bool | str, n_tokens: int, device: Any) -> bool:
    """Whether this pass compiles the body: ``compile`` resolved against the pass size and the machine."""
    if compile is False or _COMPILE_FAILED:
        return False
    if compile == "auto":
        return n_tokens >= COMPILE_AUTO_TOKENS and (device.type != "cpu" or have_cxx())
    return True


class CompiledBody:
    """Calls the transformer body through ``torch.compile(dynamic=True)``, or eagerly.

    Batches of one row run eagerly (dynamic shapes still specialise size 1, which would
    recompile). The first failure of a compiled call warns once, switches this pass to the
    eager body and stops later passes of this process from compiling.
    """

    def __init__(self, body: Any, enabled: bool) -> None:
        self.body = body
        self.enabled = enabled
        self.compiled: Any = None
        self.compile_seconds: float | None = None
        if enabled:
            import torch

            self.compiled = torch.compile(body, dynamic=True)

    def __call__(self, **kwargs: Any) -> Any:
        global _COMPILE_FAILED
        if not self.enabled or kwargs["input_ids"].shape[0] < 2:
            return self.body(**kwargs)
        import time
        import warnings

        t0 = time.perf_counter()
        try:
            out = self.compiled(**kwargs)
        except Exception as exc:  # inductor / dynamo errors, a missing C++ compiler...
            _COMPILE_FAILED = True
            self.enabled = False
            warnings.warn(
                f"torch.compile of the transformer body failed ({type(exc).__name__}: {str(exc)[:300]}); "
                f"the embedding pass runs uncompiled (compile=False) from here on in this process.",
                RuntimeWarning,
                stacklevel=3,
            )
            return self.body(**kwargs)
        if self.compile_seconds is None:
            self.compile_seconds = time.perf_counter() - t0
            logger.info("first compiled batch (compilation included): %.1f s", self.compile_seconds)
        return out


@contextlib.contextmanager
def sdpa_attention(model: Any) -> Iterator[None]:
    """Run ``model`` with PyTorch SDPA attention when it is on the slower eager path and supports SDPA.

    The model's own setting is restored afterwards; other implementations (flash, flex) are kept.
    """
    inner = base_model(model)
    config = getattr(inner, "config", None)
    before = getattr(config, "_attn_implementation", None)
    switch = before == "eager" and getattr(inner, "_supports_sdpa", False) and hasattr(
        inner, "set_attn_implementation"
    )
    if switch:
        try:
            inner.set_attn_implementation("sdpa")
        except (ValueError, ImportError, NotImplementedError) as exc:
            logger.debug("SDPA attention not available for %s: %s", type(inner).__name__, exc)
            switch = False
    try:
        yield
    finally:
        if switch:
            inner.set_attn_implementation(before)


#: Name under which :func:`causal_sdpa` registers its attention function with transformers.
CAUSAL_SDPA = "diverseevol_causal_sdpa"


def _causal_sdpa_forward(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> Any:
    """transformers' SDPA attention with no mask, so that it runs SDPA's causal kernel (``is_causal=True``)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward(module, query, key, value, None, **kwargs)


@contextlib.contextmanager
def causal_sdpa(model: Any, enabled: bool) -> Iterator[bool]:
    """Run a causal SDPA model's attention with ``is_causal=True`` and no mask during a compiled pass.

    A pass with right-padded batches and no attention mask needs only the causal mask. Eager
    transformers then leaves the mask out and SDPA skips the blocks above the diagonal, but under
    ``torch.compile`` it cannot tell compiling from exporting before torch 2.14 and materialises the
    (B, 1, T, T) causal mask, so SDPA computes every score. This registers an attention function
    without the mask (transformers builds none for an attention it has no mask function for) and
    switches the model to it; the model's setting is restored afterwards. Yields whether it switched.
    """
    inner = base_model(model)
    config = getattr(inner, "config", None)
    switch = (
        enabled and getattr(config, "_attn_implementation", None) == "sdpa"
        and getattr(config, "is_causal", True) and hasattr(inner, "set_attn_implementation")
    )
    if switch:
        try:
            from transformers import AttentionInterface

            AttentionInterface.register(CAUSAL_SDPA, _causal_sdpa_forward)
            inner.set_attn_implementation(CAUSAL_SDPA)
        except (ImportError, ValueError, NotImplementedError, AttributeError) as exc:
            logger.debug("causal SDPA attention not available for %s: %s", type(inner).__name__, exc)
            switch = False
    try:
        yield bool(switch)
    finally:
        if switch:
            inner.set_attn_implementation("sdpa")
