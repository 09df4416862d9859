"""One prepared GPU check: every GPU path of diverseevol, timed, in one JSON (under 8 minutes on one GPU).

Sections (each records its figures, or ``{"skipped": reason}`` / ``{"error": message}``):

* ``env``: device, torch, bf16 matmul rate and copy bandwidth measured here (the bounds used below).
* ``kcenter_torch_fp32``: ``kcenter_select(backend="torch")`` on N x d float32, k picks: init and
  pick seconds, bytes read per pick against the measured bandwidth (``bw_fraction``), and whether
  the picks equal the float32 numpy reference on a subset.
* ``kcenter_bf16_storage``: the same farthest-first pass with the rows stored in bf16 on the device
  (distances in float32; a benchmark loop, not a backend option): pick seconds and ``bw_fraction``.
* ``kcenter_faiss_gpu``: ``backend="faiss"`` on the GPU when faiss-gpu is installed.
* ``embed_smollm2``, ``embed_llama1b``: HFEmbedder in bf16 on SmolLM2-135M (the GGUF from
  ``diverseevol.hf.smollm2_gguf_path``) and a random-weight 1B LLaMA shape: tokens/s and the fraction
  of the measured bf16 matmul rate (2 x non-embedding parameters x tokens / time).
* ``lora_step``: one LoRA training step (forward + backward + optimizer) of the 1B shape.
* ``vendi``: ``vendi_score`` of N_v x d embeddings.

``--dry-run`` runs the same code on the CPU at toy sizes (CI: tests/test_gpu_check.py).

Usage::

    python benchmarks/gpu_check.py --out gpu_check.json
    python benchmarks/gpu_check.py --dry-run --out /tmp/x.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from typing import Any

import numpy as np

FULL = {"n": 1_000_000, "d": 4096, "k": 1000, "check_n": 50_000, "check_k": 100, "vendi_n": 52_002,
        "embed_records": 512, "max_length": 512, "batch": 32}
DRY = {"n": 3000, "d": 64, "k": 20, "check_n": 1000, "check_k": 10, "vendi_n": 500,
       "embed_records": 4, "max_length": 200, "batch": 2}
TINY_1B = {"hidden_size": 2048, "num_layers": 22, "num_heads": 32, "intermediate_size": 5632, "vocab_size": 32000}
TINY_DRY = {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 128}

SECTIONS = ("env", "kcenter_torch_fp32", "kcenter_bf16_storage", "kcenter_faiss_gpu", "embed_smollm2",
            "embed_llama1b", "lora_step", "vendi")


def _sync(torch: Any, dev: Any) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _timed(torch: Any, dev: Any, fn, repeats: int = 3) -> float:
    fn()
    _sync(torch, dev)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(torch, dev)
        best = min(best, time.perf_counter() - t0)
    return best


def env(torch: Any, dev: Any, sz: dict, ctx: dict) -> dict:
    m = 4096 if dev.type == "cuda" else 256
    dt = torch.bfloat16 if dev.type == "cuda" else torch.float32
    a = torch.randn(m, m, device=dev, dtype=dt)
    s = _timed(torch, dev, lambda: a @ a)
    x = torch.empty(256 << 20 if dev.type == "cuda" else 16 << 20, dtype=torch.uint8, device=dev)
    bw_s = _timed(torch, dev, lambda: x.clone())
    ctx["matmul_flops"] = 2 * m**3 / s
    ctx["bandwidth"] = 2 * x.numel() / bw_s  # read + write
    return {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "matmul_dtype": str(dt), "matmul_tflops": ctx["matmul_flops"] / 1e12,
        "copy_bandwidth_gb_s": ctx["bandwidth"] / 1e9,
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }


def _data(torch: Any, dev: Any, n: int, d: int) -> np.ndarray:
    """N x d float32 on the host, generated on the device in chunks (fast for 16 GB)."""
    g = torch.Generator(device=dev).manual_seed(0)
    out = np.empty((n, d), dtype=np.float32)
    step = max(1, (256 << 20) // (4 * d))
    for a in range(0, n, step):
        b = min(n, a + step)
        out[a:b] = torch.randn(b - a, d, device=dev, generator=g).cpu().numpy()
    return out


def kcenter_torch_fp32(torch: Any, dev: Any, sz: dict, ctx: dict) -> dict:
    from diverseevol import kcenter_select
    from diverseevol.kernels import _numpy

    x = _data(torch, dev, sz["n"], sz["d"])
    ctx["x"] = x
    pool = np.arange(100, dtype=np.int64)
    t0 = time.perf_counter()
    picks = kcenter_select(x, pool, sz["k"], backend="torch", device=str(dev), progress=False)
    total = time.perf_counter() - t0
    # init alone: one pick
    t0 = time.perf_counter()
    kcenter_select(x, pool, 1, backend="torch", device=str(dev), progress=False)
    init = time.perf_counter() - t0
    pick_s = max(total - init, 1e-9) / max(sz["k"] - 1, 1)
    sub = x[: sz["check_n"]]
    cand = np.arange(100, len(sub), dtype=np.int64)
    want, _ = _numpy.farthest_first(sub, pool, cand, sz["check_k"], metric="euclidean", first_pick=None)
    got = kcenter_select(sub, pool, sz["check_k"], backend="torch", device=str(dev), progress=False)
    bytes_per_pick = x.shape[0] * x.shape[1] * 4
    return {
        "n": x.shape[0], "d": x.shape[1], "k": sz["k"], "init_s": init, "total_s": total,
        "pick_ms": 1e3 * pick_s, "bw_fraction": bytes_per_pick / pick_s / ctx["bandwidth"],
        "picks_equal_numpy_subset": bool(np.array_equal(got, want)),
        "subset": [len(sub), sz["check_k"]], "first_picks": picks[:5].tolist(),
    }


def kcenter_bf16_storage(torch: Any, dev: Any, sz: dict, ctx: dict) -> dict:
    x = ctx.get("x")
    if x is None:
        x = _data(torch, dev, sz["n"], sz["d"])
    t0 = time.perf_counter()
    X = torch.from_numpy(x).to(dev, dtype=torch.bfloat16)
    sqn = X.float().square().sum(1) if dev.type != "cuda" else torch.cat(
        [X[a : a + 65536].float().square().sum(1) for a in range(0, len(X), 65536)])
    mind = torch.full((len(X),), float("inf"), device=dev)
    _sync(torch, dev)
    init = time.perf_counter() - t0
    c = 0
    t0 = time.perf_counter()
    for _ in range(sz["k"]):
        cv = X[c].float()
        d2 = (sqn + cv.square().sum()).sub_((X @ X[c]).float(), alpha=2.0).clamp_min_(0)
        torch.minimum(mind, d2, out=mind)
        mind[c] = -1
        c = int(torch.argmax(mind))
    _sync(torch, dev)
    pick_s = (time.perf_counter() - t0) / sz["k"]
    del X
    return {"init_s": init, "pick_ms": 1e3 * pick_s,
            "bw_fraction": x.shape[0] * x.shape[1] * 2 / pick_s / ctx["bandwidth"],
            "note": "bf16 rows, fp32 norms and minimum; a benchmark loop (the torch backend stores float32)"}


def kcenter_faiss_gpu(torch: Any, dev: Any, sz: dict, ctx: dict) -> dict:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return {"skipped": "faiss not installed"}
    from diverseevol import kcenter_select
    from diverseevol.kernels._faiss import faiss_gpu_count

    if dev.type != "cuda" or faiss_gpu_count() == 0:
        if dev.type == "cuda":
            return {"skipped": "faiss has no GPU support in this build"}
        device = "cpu"
    else:
        device = "cuda"
    x = ctx.get("x")
    x = x[: sz["check_n"]] if x is not None else _data(torch, dev, sz["check_n"], sz["d"])
    pool = np.arange(1000 if device == "cuda" else 100, dtype=np.int64)
    t0 = time.perf_counter()
    kcenter_select(x, pool, sz["check_k"], backend="faiss", device=device, progress=False)
    return {"device": device, "n": len(x), "pool": len(pool), "k": sz["check_k"], "total_s": time.perf_counter() - t0}


def _embed(torch: Any, dev: Any, sz: dict, ctx: dict, model: Any, tok: Any) -> dict:
    from diverseevol.data import InstructionRecord
    from diverseevol.hf import HFEmbedder, ModelHandle

    rng = np.random.default_rng(0)
    words = "the a model data select train diverse sample record answer question list why how".split()
    recs = [InstructionRecord(" ".join(rng.choice(words, 20)), "", " ".join(rng.choice(words, 200)))
            for _ in range(sz["embed_records"])]
    emb = HFEmbedder(batch_size=sz["batch"], max_length=sz["max_length"], progress=False)
    handle = ModelHandle(model=model, tokenizer=tok)
    emb(handle, recs[: sz["batch"]])
    from diverseevol.hf._records import tokenize_records

    n_tok = sum(len(ids) for ids in tokenize_records(tok, recs, max_length=sz["max_length"],
                                                     warn_truncated=False).input_ids)
    s = _timed(torch, dev, lambda: emb(handle, recs), repeats=1)
    params = sum(p.numel() for n, p in model.named_parameters() if "embed" not in n and "lm_head" not in n)
    flops = 2 * params * n_tok / s
    return {"tokens_per_s": n_tok / s, "tokens": n_tok, "non_embedding_params": params,
            "fraction_of_matmul_rate": flops / ctx["matmul_flops"], "dtype": str(next(model.parameters()).dtype)}


def embed_smollm2(torch: Any, dev: Any, sz: dict, ctx: dict) -> dict:
    if ctx["dry"]:  # no weights in CI: embed_llama1b runs the same embedding code on the tiny model
        return {"skipped": "dry run (SmolLM2 weights not loaded)"}
    from diverseevol.hf import load_model, smollm2_gguf_path

    path = smollm2_gguf_path()
    handle = load_model(str(path))
    model = handle.model.to(dev, dtype=torch.bfloat16).eval()
    return {"model": str(path), **_embed(torch, dev, sz, ctx, model, handle.tokenizer)}


def _llama(torch: Any, dev: Any, ctx: dict) -> tuple[Any, Any]:
    from diverseevol.hf.tiny import build_char_tokenizer, build_tiny_llama

    tok = build_char_tokenizer()
    model = build_tiny_llama(tok, **(TINY_DRY if ctx["dry"] else TINY_1B))
    dt = torch.bfloat16 if dev.type == "cuda" else torch.float32
    return model.to(dev, dtype=dt), tok


def embed_llama1b(torch: Any, dev: Any, sz: dict, ctx: dict) -> dict:
    model, tok = _llama(torch, dev, ctx)
    return {"model": "tiny" if ctx["dry"] else "llama-1b shape, random weights",
            **_embed(torch, dev, sz, ctx, model.eval(), tok)}


def lora_step(torch: Any, dev: Any, sz: dict, ctx: dict) -> dict:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        return {"skipped": "peft not installed"}
    model, tok = _llama(torch, dev, ctx)
    model = get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    seq = 64 if ctx["dry"] else sz["max_length"]
    ids = torch.randint(3, 100, (sz["batch"], seq), device=dev)

    def step() -> None:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    s = _timed(torch, dev, step, repeats=2)
    return {"step_s": s, "batch": sz["batch"], "seq_len": seq, "tokens_per_s": sz["batch"] * seq / s}


def vendi(torch: Any, dev: Any, sz: dict, ctx: dict) -> dict:
    from diverseevol import vendi_score

    x = ctx.get("x")
    x = x[: sz["vendi_n"]] if x is not None else _data(torch, dev, sz["vendi_n"], sz["d"])
    t0 = time.perf_counter()
    v = vendi_score(x, progress=False)
    return {"n": len(x), "d": x.shape[1], "seconds": time.perf_counter() - t0, "vendi": float(v),
            "note": "vendi_score runs on the CPU (numpy); a GPU Gram matrix is not in the library yet"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true", help="CPU, toy sizes (CI)")
    p.add_argument("--out", default="gpu_check.json")
    p.add_argument("--only", default="", help="comma-separated sections")
    args = p.parse_args(argv)
    import torch

    dry = args.dry_run
    if not dry and not torch.cuda.is_available():
        print("no CUDA GPU: use --dry-run")
        return 2
    dev = torch.device("cpu" if dry else "cuda")
    sz = DRY if dry else FULL
    ctx: dict[str, Any] = {"dry": dry}
    result: dict[str, Any] = {"dry_run": dry, "sizes": sz}
    only = {s for s in args.only.split(",") if s}
    fns = {name: globals()[name] for name in SECTIONS}
    t_all = time.perf_counter()
    for name, fn in fns.items():
        if only and name not in only and name != "env":
            continue
        t0 = time.perf_counter()
        try:
            result[name] = fn(torch, dev, sz, ctx)
        except Exception as exc:  # one broken path must not hide the others' figures
            result[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-1500:]}
        result[name]["section_s"] = time.perf_counter() - t0
        print(f"{name}: {json.dumps({k: v for k, v in result[name].items() if k != 'trace'})[:300]}", flush=True)
    result["total_s"] = time.perf_counter() - t_all
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1, default=str)
    print(f"wrote {args.out} ({result['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
