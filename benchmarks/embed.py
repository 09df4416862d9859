"""Benchmark of HFEmbedder: records/s against a batch-size-1 loop over the same records and model.

The baseline is the original research code's way of embedding: one record at a time through the
full causal LM with ``output_hidden_states=True`` (so the LM head runs on every position too),
then the mean of the last hidden states. :class:`diverseevol.hf.HFEmbedder` batches length-sorted
records, masks padding, and stops at the transformer body. Both run in this process on the same
model and records; the ratio and the largest difference between their embeddings are printed.

Usage::

    python benchmarks/embed.py                      # tiny LLaMA (hidden 64, 2 layers), CPU
    python benchmarks/embed.py --n 512 --batch-size 64
    python benchmarks/embed.py --config 1b --device cuda --dtype bfloat16   # 1B LLaMA shape, random weights
    python benchmarks/embed.py --model smollm2 --n 48 --max-length 256 --batch-size 16 --no-baseline \
        --before 7f7c456 --budgets 1024,4096     # this tree vs the embedder of a git revision

``--before REV`` loads ``diverseevol/hf/embedder.py`` as it was at git revision REV and times it
interleaved with the current one (same model, records and process). Padded tokens are counted
from the batches the model really ran (a forward hook on the transformer body). The matmul
reference is the model's own linear layers (one decoder layer's weight shapes) at the mean
padded batch size, timed between the embedding passes; the best rate of the run is used.

``--adjacent-ref S`` adds a second, paired reference: every S seconds of a pass (in a forward hook on the body,
after a batch) the same GEMMs are timed again, and each stretch of the pass between two such timings is compared
with the mean of the two: ``of matmul (adjacent)`` is the work done over the work those GEMMs would have done in
the same seconds at the rate measured around them (sum of 2 x parameters x real tokens over the sum of stretch
seconds x adjacent rate). On a machine whose speed drifts during a pass (a shared VM), the best rate of the run
is a reference the pass can only reach if the machine stays at its fastest for the whole pass; the adjacent one
is measured under the same conditions as the stretch it is compared with. The GEMM timings are left out of the
pass's wall time.

Records: Dolly-15k from the shared data folder when present (``DIVERSEEVOL_SHARED_DATA`` or
``../shared/data`` beside the checkout), else synthetic ones.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CONFIGS = {
    "tiny": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 128},
    "small": {"hidden_size": 512, "num_layers": 8, "num_heads": 8, "intermediate_size": 1376},
    # TinyLlama-1.1B / LLaMA-1B shape with a 32k vocabulary (the char tokenizer uses the first ids only)
    "1b": {
        "hidden_size": 2048,
        "num_layers": 22,
        "num_heads": 32,
        "intermediate_size": 5632,
        "vocab_size": 32000,
    },
}


def load_records(n: int, max_chars: int):
    from diverseevol.data import InstructionRecord

    root = Path(
        os.environ.get("DIVERSEEVOL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    dolly = root / "databricks-dolly-15k" / "databricks-dolly-15k.jsonl.gz"
    if dolly.exists():
        import warnings

        from diverseevol import load_instructions

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            recs = load_instructions(dolly)
        recs = [r for r in recs if len(r.instruction) + len(r.input) + len(r.output) <= max_chars][:n]
        return recs, f"Dolly-15k (first {len(recs)} records of <= {max_chars} characters)"
    rng = np.random.default_rng(0)
    words = [
        "the",
        "a",
        "model",
        "data",
        "select",
        "train",
        "diverse",
        "sample",
        "record",
        "answer",
        "question",
        "list",
        "why",
        "how",
    ]
    recs = [
        InstructionRecord(
            " ".join(rng.choice(words, rng.integers(3, 20))),
            "",
            " ".join(rng.choice(words, rng.integers(5, 80))),
        )
        for _ in range(n)
    ]
    return recs, f"synthetic ({n} records)"


def baseline_loop(model, tokenizer, records, max_length: int) -> np.ndarray:
    """One record at a time through the full model; mean of ``hidden_states[-1]``."""
    import torch

    from diverseevol.hf._records import tokenize_records

    tok = tokenize_records(tokenizer, records, max_length=max_length, warn_truncated=False)
    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for ids in tok.input_ids:
            x = torch.tensor([ids], device=device)
            hs = model(input_ids=x, output_hidden_states=True).hidden_states[-1]
            out.append(hs[0].float().mean(0).cpu().numpy())
    return np.stack(out)


def padding_fraction(lengths: list[int], batch_size: int) -> float:
    """Padded tokens / real tokens - 1 when length-sorted records go in batches of ``batch_size`` records."""
    srt = sorted(lengths, reverse=True)
    padded = sum(max(srt[a : a + batch_size]) * len(srt[a : a + batch_size]) for a in range(0, len(srt), batch_size))
    return padded / max(sum(srt), 1) - 1.0


def layer_shapes(model) -> list[tuple[int, int]]:
    """(in, out) of every linear layer of the first decoder layer (q, k, v, o, gate, up, down)."""
    import torch

    body = model.get_decoder() if hasattr(model, "get_decoder") else model.model
    layer = body.layers[0]
    return [(m.in_features, m.out_features) for m in layer.modules() if isinstance(m, torch.nn.Linear)]


def gemm_rate(model, n_tokens: int, repeats: int = 3) -> dict[str, float]:
    """FLOP/s of the model's own linear shapes (n_tokens x in @ in x out, one decoder layer), timed here.

    Two GEMMs: ``x @ w`` (PyTorch's BLAS call, MKL in the CPU wheels) and, on a CPU with oneDNN,
    oneDNN's linear (``torch.ops.mkldnn._linear_pointwise``, what the embedder's ``onednn`` path
    and ``torch.compile`` call). The fraction of the matmul rate uses the faster of the two.
    """
    import torch

    from diverseevol.hf._fast_paths import onednn_linear_ok

    p = next(model.parameters())
    shapes = layer_shapes(model)
    xs = {i: torch.randn(n_tokens, i, device=p.device, dtype=p.dtype) for i, _ in shapes}
    ws = [torch.randn(i, o, device=p.device, dtype=p.dtype) for i, o in shapes]
    kinds = {"blas": lambda x, w, wt: x @ w}
    if p.device.type == "cpu" and p.dtype == torch.float32 and onednn_linear_ok():
        op = torch.ops.mkldnn._linear_pointwise
        kinds["onednn"] = lambda x, w, wt: op(x, wt, None, "none", [], "")
    wts = [w.t().contiguous() for w in ws]  # nn.Linear's (out, in) layout
    out = {}
    with torch.inference_mode():
        for name, fn in kinds.items():
            best = float("inf")
            for _ in range(repeats + 1):
                t0 = time.perf_counter()
                for (i, _), w, wt in zip(shapes, ws, wts):
                    fn(xs[i], w, wt)
                if p.device.type == "cuda":
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - t0)
            out[name] = 2 * n_tokens * sum(i * o for i, o in shapes) / best
    return out


class AdjacentReference:
    """The matmul reference timed inside a pass, every ``interval`` seconds, after a batch (``--adjacent-ref``).

    A pass is cut into stretches at those timings; each stretch is compared with the mean of the rates timed at
    its two ends. :meth:`finish` closes the last stretch and returns the seconds (wall, CPU) spent timing GEMMs,
    which the caller leaves out of the pass's times.
    """

    def __init__(self, model, interval: float) -> None:
        self.model, self.interval = model, interval
        self.enabled = interval > 0
        self.stretches: list[tuple[float, int, float, float]] = []  # (seconds, tokens given, rate before, rate after)
        self.t0: float | None = None  # start of the open stretch; None outside a timed pass
        self.rows = 2048  # padded tokens per batch the first reference of a pass is timed at (then the last mean)
        self.spent_w = self.spent_c = 0.0

    def _rate(self, rows: int) -> float:
        w0, c0 = time.perf_counter(), time.process_time()
        r = max(gemm_rate(self.model, max(rows, 1), repeats=1).values())
        self.spent_w += time.perf_counter() - w0
        self.spent_c += time.process_time() - c0
        return r

    def _open(self) -> None:
        self.t0, self.tokens, self.padded, self.batches = time.perf_counter(), 0, 0, 0

    def start(self) -> None:
        self.stretches, self.spent_w, self.spent_c = [], 0.0, 0.0
        if self.enabled:
            self.prev_rate = self._rate(self.rows)
            self._open()

    def after_batch(self, real_tokens: int, padded_tokens: int) -> None:
        if self.t0 is None:  # warm-up calls
            return
        self.tokens += real_tokens
        self.padded += padded_tokens
        self.batches += 1
        if time.perf_counter() - self.t0 >= self.interval:
            self._close()

    def _close(self) -> None:
        assert self.t0 is not None
        seconds = time.perf_counter() - self.t0
        self.rows = self.padded // max(self.batches, 1)
        rate = self._rate(self.rows)
        self.stretches.append((seconds, self.tokens, self.prev_rate, rate))
        self.prev_rate = rate
        self._open()

    def finish(self) -> tuple[float, float]:
        if self.t0 is not None:
            if self.batches:
                self._close()
            self.t0 = None
        return self.spent_w, self.spent_c

    def fraction(self, flops_per_token: float) -> float:
        """Work done over the work at the adjacent rates: sum(flops) / sum(seconds x mean(rate before, after)).

        ``flops_per_token`` is per token counted by :meth:`after_batch` (the caller folds in the pass's share of
        real tokens when it counts padded ones).
        """
        done = sum(flops_per_token * tok for _, tok, _, _ in self.stretches)
        possible = sum(s * (a + b) / 2 for s, _, a, b in self.stretches)
        return done / possible if possible else float("nan")

    def drift(self, flops_per_token: float) -> str:
        """Correlation of each stretch's GFLOP/s with the rate around it, and the range of both (the last pass)."""
        st = [(flops_per_token * tok / s, (a + b) / 2) for s, tok, a, b in self.stretches if s > 0]
        if len(st) < 3:
            return "too few stretches"
        got, ref = np.array(st).T
        r = float(np.corrcoef(got, ref)[0, 1])
        return (f"correlation {r:+.2f} over {len(st)} stretches; pass {got.min() / 1e9:.0f}-{got.max() / 1e9:.0f} "
                f"GFLOP/s, adjacent GEMM {ref.min() / 1e9:.0f}-{ref.max() / 1e9:.0f}; per stretch "
                f"{(got / ref).min():.2f}-{(got / ref).max():.2f} of it")

    def rate_summary(self) -> str:
        rates = [a for _, _, a, _ in self.stretches] + [b for *_, b in self.stretches[-1:]]
        if not rates:
            return "none"
        return (f"{len(rates)} timings, {min(rates) / 1e9:.0f}-{max(rates) / 1e9:.0f} GFLOP/s "
                f"(median {float(np.median(rates)) / 1e9:.0f}) over {len(self.stretches)} stretches")


def load_before(rev: str):
    """``HFEmbedder`` of diverseevol/hf/embedder.py at git revision ``rev``, as a module of this package."""
    import importlib.util
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(
        ["git", "show", f"{rev}:diverseevol/hf/embedder.py"], cwd=root, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "embedder_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("diverseevol.hf._embedder_before", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.HFEmbedder


def load_now() -> str:
    return open("/proc/loadavg").read().split()[0]


def _without_causal_sdpa(embedder, handle, records):
    """``embedder(handle, records)`` with :func:`diverseevol.hf._fast_paths.causal_sdpa` switched off (the pass before it)."""
    import contextlib

    from diverseevol.hf import embedder as embedder_module

    kept = embedder_module.causal_sdpa
    embedder_module.causal_sdpa = lambda model, enabled: contextlib.nullcontext(False)
    try:
        return embedder(handle, records)
    finally:
        embedder_module.causal_sdpa = kept


def non_embedding_params(model) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n and "lm_head" not in n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=256, help="records to embed")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--max-chars", type=int, default=1200, help="skip longer Dolly records")
    p.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    p.add_argument("--model", default="", help="'smollm2' (the SmolLM2-135M GGUF of diverseevol.hf.smollm2_gguf_path) "
                   "or a path / Hub id; default: the random-weight --config model")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--repeats", type=int, default=3, help="best of this many (interleaved) timings per side")
    p.add_argument("--no-baseline", action="store_true", help="skip the batch-size-1 loop (slow on real models)")
    p.add_argument("--before", default="", help="git revision whose HFEmbedder is timed beside this one")
    p.add_argument("--budgets", default="", help="comma-separated max_batch_tokens values to time, "
                   "'default' for the embedder's own (batch_size x max_length, capped on a CPU; the default)")
    p.add_argument("--compile", action="store_true", help="also time this tree with compile=True (torch.compile of "
                   "the body; its first call, the compilation, is timed apart)")
    p.add_argument("--compile-masked", action="store_true", help="also time compile=True with the causal SDPA switch "
                   "off (transformers' materialised causal mask under torch.compile, the compiled pass before it)")
    p.add_argument("--f-linear", action="store_true", help="also time this tree with onednn=False (F.linear; with --compile, "
                   "compiled too)")
    p.add_argument("--onednn", action="store_true", help="also time this tree with onednn=True (oneDNN's linear; with "
                   "--compile, compiled too)")
    p.add_argument("--exact", action="store_true", help="also embed once in float64 (F.linear) and print every "
                   "side's max |difference| from it (the rounding error of each float32 path)")
    p.add_argument("--compiled-only", action="store_true", help="time compile=True sides only (no eager side)")
    p.add_argument("--adjacent-ref", type=float, default=0.0, metavar="S",
                   help="also time the matmul reference every S seconds inside each pass and report the pass "
                   "against the rates measured around each stretch (see the module docstring); 0: off")
    args = p.parse_args()

    import torch

    from diverseevol.hf import HFEmbedder, ModelHandle
    from diverseevol.hf._records import tokenize_records
    from diverseevol.hf.tiny import build_char_tokenizer, build_tiny_llama

    torch.set_num_threads(args.threads)
    if args.model:
        from diverseevol.hf import load_model, smollm2_gguf_path

        loaded = load_model(str(smollm2_gguf_path()) if args.model == "smollm2" else args.model)
        tok, model = loaded.tokenizer, loaded.model
        args.config = args.model
    else:
        tok = build_char_tokenizer()
        model = build_tiny_llama(tok, **CONFIGS[args.config])
    model = model.to(device=args.device, dtype=getattr(torch, args.dtype)).eval()
    records, source = load_records(args.n, args.max_chars)
    real = [len(ids) for ids in tokenize_records(tok, records, max_length=args.max_length,
                                                 warn_truncated=False).input_ids]
    n_tok, n = sum(real), len(records)
    print(
        f"model: {args.config} ({model.num_parameters() / 1e6:.1f}M parameters, attention "
        f"{model.config._attn_implementation}), {args.device}, {args.dtype}, {args.threads} CPU threads"
    )
    print(f"records: {source}; {n_tok} tokens, mean {np.mean(real):.0f}, max {max(real)} (max_length {args.max_length})")
    if args.device == "cpu":
        from diverseevol.hf._fast_paths import cpu_vendor, resolve_onednn

        print(f"onednn='auto' here: {'oneDNN linear' if resolve_onednn('auto') else 'F.linear'} (CPU vendor "
              f"{cpu_vendor() or 'unknown'}, torch MKL {torch.backends.mkl.is_available()})")

    handle = ModelHandle(model=model, tokenizer=tok)
    sides = {}
    if args.before:
        sides[f"before ({args.before}, batch {args.batch_size} records)"] = load_before(args.before)(
            batch_size=args.batch_size, max_length=args.max_length, progress=False
        )
    budgets = [None if b == "default" else int(b) for b in args.budgets.split(",") if b] or [None]
    from diverseevol.hf.embedder import default_budget as embedder_budget

    default_budget = embedder_budget(model, args.batch_size, args.max_length)
    # onednn: the embedder's default ("auto": the CPU's choice), plus the paths asked for explicitly
    linears = [("auto", "")] + [(v, f", onednn={v}") for v, on in ((False, args.f_linear), (True, args.onednn)) if on]
    for compiled in ([True] if args.compiled_only else [False, True] if args.compile else [False]):
        for onednn, tag in linears:
            for b in budgets:
                label = (f"now{', compile=True' if compiled else ''}{tag} "
                         f"(max_batch_tokens {b if b is not None else f'{default_budget}, the default'})")
                sides[label] = HFEmbedder(batch_size=args.batch_size, max_length=args.max_length, progress=False,
                                          max_batch_tokens=b, compile=compiled, onednn=onednn)
    if args.compile_masked:
        b = budgets[-1]
        masked = HFEmbedder(batch_size=args.batch_size, max_length=args.max_length, progress=False, max_batch_tokens=b,
                            compile=True)
        sides[f"now, compile=True, causal mask materialised (max_batch_tokens {b or default_budget})"] = (
            lambda h, recs: _without_causal_sdpa(masked, h, recs))
    if not args.no_baseline:
        sides["batch-size-1 loop (full model)"] = lambda h, recs: baseline_loop(model, tok, recs, args.max_length)

    shapes: list[tuple[int, int]] = []
    adjacent = AdjacentReference(model, args.adjacent_ref)
    body = model.get_decoder() if hasattr(model, "get_decoder") else model.model
    def record_shape(mod, a, kw, out):  # noqa: ANN001, ANN202
        shapes.append(tuple(kw["input_ids"].shape))
        # the padded tokens; the pass's real ones are scaled in by fraction() (a padding-free causal pass gets no mask)
        adjacent.after_batch(kw["input_ids"].numel(), kw["input_ids"].numel())

    # Kept out of a compiled body's trace: traced, the list's length becomes a guard and every batch recompiles.
    disable = getattr(getattr(torch, "_dynamo", None), "disable", None)
    hook = body.register_forward_hook(disable(record_shape) if disable else record_shape, with_kwargs=True)
    first: dict[str, float] = {}
    for label, fn in sides.items():  # warm-up (and the compilation of a compile=True side)
        t0 = time.perf_counter()
        fn(handle, records[: min(8, n)])
        first[label] = time.perf_counter() - t0

    def timed(fn):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        shapes.clear()
        adjacent.start()
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn(handle, records)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        spent = adjacent.finish()  # the last stretch's closing reference, then the GEMM seconds to leave out
        return w - spent[0], c - spent[1], out, list(shapes)

    # interleaved repeats, best of each: on a shared machine the load changes during the run
    best: dict[str, tuple] = {}
    rates: dict[str, list[float]] = {}
    params = non_embedding_params(model)
    paired: dict[str, list[float]] = {}
    drift: dict[str, str] = {}
    loads = [load_now()]
    for _ in range(args.repeats):
        for label, fn in sides.items():
            w, c, out, batches = timed(fn)
            if label not in best or w < best[label][0]:
                best[label] = (w, c, out, batches)
            padded = sum(r * t for r, t in batches)
            if adjacent.enabled and batches:
                flops = 2 * params * n_tok / padded  # per padded token counted by the hook, for the real ones
                paired.setdefault(label, []).append(adjacent.fraction(flops))
                drift[label] = adjacent.drift(flops)
            if batches:
                for kind, r in gemm_rate(model, int(padded / len(batches))).items():
                    rates.setdefault(kind, []).append(r)
            loads.append(load_now())
    best_rates = {kind: max(r) for kind, r in rates.items()}
    rate = max(best_rates.values())
    ref = next(iter(best.values()))[2]
    hook.remove()
    exact = None
    if args.exact:
        from diverseevol.hf.embedder import forward_pass

        model.double()
        exact, _ = forward_pass(handle, records, max_length=args.max_length, progress=False, onednn=False,
                                max_batch_tokens=args.batch_size * args.max_length)
        model.to(getattr(torch, args.dtype))
    print(f"matmul reference: {rate / 1e9:.1f} GFLOP/s, the best of "
          + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in best_rates.items())
          + f" (best of {len(next(iter(rates.values())))} GEMMs each of one decoder layer's linear shapes at the "
          f"mean padded batch, timed between passes); load during the run: {' '.join(loads)}")
    print(f"{'side':48s} {'tokens/s':>9s} {'wall s':>7s} {'CPU s':>7s} {'batches':>7s} {'padding':>8s} "
          f"{'GFLOP/s':>8s} {'of matmul':>9s} {'max |diff|':>10s}" + (f" {'vs fp64':>9s}" if exact is not None else ""))
    for label, (w, c, out, batches) in best.items():
        padded = sum(r * t for r, t in batches)
        pad = f"{100 * (padded / n_tok - 1):.2f}%" if batches else "0.00%"
        achieved = 2 * params * n_tok / w
        print(f"{label:48s} {n_tok / w:9.0f} {w:7.2f} {c:7.2f} {len(batches) or n:7d} {pad:>8s} "
              f"{achieved / 1e9:8.1f} {achieved / rate:9.2f} {np.abs(np.asarray(out) - ref).max():10.2e}"
              + (f" {np.abs(np.asarray(out, dtype=np.float64) - exact).max():9.2e}" if exact is not None else ""))
    print("first call on 8 records (warm-up; compilation included): "
          + "; ".join(f"{k.split(' (')[0]} {v:.1f} s" for k, v in first.items()))
    print(f"(GFLOP/s = 2 x {params / 1e6:.1f}M non-embedding parameters x {n_tok} real tokens / wall time; "
          f"padding = padded / real tokens - 1; max |diff| against the first side"
          + ("; vs fp64: against the same pass in float64" if exact is not None else "") + ")")
    if paired:
        print(f"of matmul (adjacent): each pass against the GEMMs timed every {args.adjacent_ref:g} s inside it "
              "(work done / work at the rate measured around each stretch); every repeat, then the median:")
        for label, fr in paired.items():
            print(f"  {label:48s} " + " ".join(f"{x:.3f}" for x in fr) + f"   median {float(np.median(fr)):.3f}")
        print(f"  adjacent GEMM rates in the last pass: {adjacent.rate_summary()}")
        print("  does the pass follow the GEMM rate from stretch to stretch? (last pass of each side)")
        for label, text in drift.items():
            print(f"  {label:48s} {text}")


if __name__ == "__main__":
    main()
