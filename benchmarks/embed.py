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
    """Padded tokens / real tokens when length-sorted records go in batches of ``batch_size`` (HFEmbedder's rule)."""
    srt = sorted(lengths, reverse=True)
    padded = sum(max(srt[a : a + batch_size]) * len(srt[a : a + batch_size]) for a in range(0, len(srt), batch_size))
    return padded / max(sum(srt), 1) - 1.0


def gemm_rate(model, n_tokens: int, repeats: int = 3) -> float:
    """FLOP/s of the model's own matmul shapes (tokens x hidden @ hidden x {hidden, intermediate}), timed here."""
    import torch

    cfg = model.config
    p = next(model.parameters())
    h, f = cfg.hidden_size, getattr(cfg, "intermediate_size", 4 * cfg.hidden_size)
    x = torch.randn(n_tokens, h, device=p.device, dtype=p.dtype)
    ws = [torch.randn(h, h, device=p.device, dtype=p.dtype), torch.randn(h, f, device=p.device, dtype=p.dtype)]
    best = float("inf")
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        for w in ws:
            x @ w
        if p.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n_tokens * h * (h + f) / best


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
    args = p.parse_args()

    import torch

    from diverseevol.hf import HFEmbedder, ModelHandle
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
    lengths = [
        len(x) for x in tok([r.instruction + r.input + r.output for r in records], verbose=False)["input_ids"]
    ]
    print(
        f"model: {args.config} LLaMA ({model.num_parameters() / 1e6:.1f}M parameters), {args.device}, {args.dtype}, "
        f"{args.threads} CPU threads"
    )
    print(f"records: {source}; tokens per record (char level, + template): mean {np.mean(lengths) + 150:.0f}")

    handle = ModelHandle(model=model, tokenizer=tok)
    embedder = HFEmbedder(batch_size=args.batch_size, max_length=args.max_length, progress=False)
    embedder(handle, records[: args.batch_size])  # warm-up
    baseline_loop(model, tok, records[:4], args.max_length)

    def timed(fn):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - w0, time.process_time() - c0, out

    # interleaved repeats, best of each: on a shared machine the load changes during the run
    ours, base = [], []
    for _ in range(args.repeats):
        w, c, emb = timed(lambda: embedder(handle, records))
        ours.append((w, c))
        w, c, ref = timed(lambda: baseline_loop(model, tok, records, args.max_length))
        base.append((w, c))
    (w_ours, c_ours), (w_base, c_base) = min(ours), min(base)
    n = len(records)
    print(
        f"HFEmbedder (batch {args.batch_size}, length-sorted): {n / w_ours:9.1f} records/s  "
        f"(wall {w_ours:.2f} s, CPU {c_ours:.2f} s)"
    )
    print(
        f"batch-size-1 loop (full model):          {n / w_base:9.1f} records/s  "
        f"(wall {w_base:.2f} s, CPU {c_base:.2f} s)"
    )
    print(
        f"speed-up: {w_base / w_ours:.1f}x wall, {c_base / max(c_ours, 1e-9):.1f}x CPU time   "
        f"max |difference| of embeddings: {np.abs(emb - ref).max():.2e}"
    )
    from diverseevol.hf._records import tokenize_records

    real = [len(ids) for ids in tokenize_records(tok, records, max_length=args.max_length,
                                                 warn_truncated=False).input_ids]
    n_tok = sum(real)
    params = non_embedding_params(model)
    rate = gemm_rate(model, args.batch_size * int(np.mean(real)))
    achieved = 2 * params * n_tok / w_ours
    print(
        f"HFEmbedder: {n_tok / w_ours:.0f} tokens/s, padding {100 * padding_fraction(real, args.batch_size):.1f}% "
        f"(padded / real tokens - 1), {achieved / 1e9:.1f} GFLOP/s (2 x {params / 1e6:.1f}M non-embedding params "
        f"x {n_tok} real tokens) against {rate / 1e9:.1f} GFLOP/s for a GEMM of the model's shapes: "
        f"fraction of the matmul rate {achieved / rate:.2f}   (load {open('/proc/loadavg').read().split()[0]})"
    )


if __name__ == "__main__":
    main()
