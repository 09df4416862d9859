"""Scale table: time and peak memory of the kernel, Vendi, the embedding pass and one loop round vs N.

Each (part, N) runs in its own subprocess, so its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own. Parts:

* ``kcenter``: ``kcenter_select`` of k = 100 from a 100-record pool on N x d clustered float32.
* ``vendi``: ``vendi_score`` of N x d.
* ``embed``: HFEmbedder on the tiny random LLaMA (hidden 64, 2 layers) over ``--embed-sample``
  synthetic records, or with ``--embed-model smollm2`` SmolLM2-135M (float32, compiled, max_length
  256) over that many real Dolly records; the per-record cost is **extrapolated** to N (the row says so).
* ``loop``: one ``EvolutionLoop`` round with fake parts (a trainer that returns the pool's row
  indices, an embedder that returns a fixed N x d array, kcenter, k = 100, Vendi of the pool off),
  from the first training to the selection of P_1.

d is ``--dim`` (4096) unless N x d x 4 bytes x 3 would exceed half the available memory, then the
largest of 1024 / 768 / 256 that fits; every row prints its d. Times exclude the synthetic data's
generation (reported apart for the loop, whose fake embedder builds its array once per process).
Benchmarks unset ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` in their own process. The machine's
load average is printed beside every row.

Usage::

    python benchmarks/scale.py                                   # N = 15k, 52k, 200k, 1M
    python benchmarks/scale.py --sizes 15000,52000 --parts kcenter,vendi
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)


def _available_bytes() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 8 << 30


def pick_dim(n: int, want: int) -> int:
    """``want`` when three N x d float32 arrays fit in half the available memory (the machine is shared),
    else the largest smaller d that does."""
    budget = _available_bytes() // 2
    for d in (want, 1024, 768, 256):
        if d <= want and 3 * n * d * 4 <= budget:
            return d
    return 64


def clustered(n: int, d: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(50, d)).astype(np.float32)
    x = rng.standard_normal((n, d), dtype=np.float32)
    x += centres[rng.integers(0, 50, size=n)]
    return x


def part_kcenter(n: int, d: int) -> dict:
    import numpy as np

    from diverseevol import kcenter_select

    x = clustered(n, d)
    pool = np.arange(0, n, n // 100)[:100]
    t0 = time.perf_counter()
    picks = kcenter_select(x, pool, 100)
    return {"seconds": time.perf_counter() - t0, "picks": len(picks)}


def part_vendi(n: int, d: int) -> dict:
    from diverseevol import vendi_score

    x = clustered(n, d)
    t0 = time.perf_counter()
    v = vendi_score(x, progress=False)
    return {"seconds": time.perf_counter() - t0, "vendi": float(v)}


def part_embed_smollm2(n: int, sample: int) -> dict:
    """SmolLM2-135M (float32, compiled, max_length 256) on ``sample`` real Dolly records, extrapolated to N."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from embed import load_records  # the same Dolly sample as benchmarks/embed.py

    from diverseevol.hf import HFEmbedder, ModelHandle, load_model, smollm2_gguf_path
    from diverseevol.hf._records import tokenize_records

    torch.set_num_threads(2)
    loaded = load_model(str(smollm2_gguf_path()))
    handle = ModelHandle(model=loaded.model, tokenizer=loaded.tokenizer)
    recs, _ = load_records(sample, 1200)
    tokens = sum(len(i) for i in tokenize_records(loaded.tokenizer, recs, max_length=256, warn_truncated=False).input_ids)
    emb = HFEmbedder(max_length=256, batch_size=64, progress=False, compile=True)
    t0 = time.perf_counter()
    emb(handle, recs[:8])
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = emb(handle, recs)
    per = (time.perf_counter() - t0) / len(recs)
    return {"seconds": per * n, "extrapolated_from": len(recs), "per_record_ms": 1e3 * per, "d": out.shape[1],
            "tokens_per_record": tokens / len(recs), "first_call_s": warm, "model": "SmolLM2-135M fp32 compiled"}


def part_embed(n: int, d: int, sample: int) -> dict:
    if os.environ.get("SCALE_EMBED_MODEL") == "smollm2":
        return part_embed_smollm2(n, sample)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch

    from diverseevol.data import InstructionRecord
    from diverseevol.hf import HFEmbedder, ModelHandle
    from diverseevol.hf.tiny import build_char_tokenizer, build_tiny_llama

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    words = ["the", "model", "data", "select", "train", "diverse", "answer", "question", "list", "why"]
    recs = [
        InstructionRecord(" ".join(rng.choice(words, rng.integers(3, 20))), "",
                          " ".join(rng.choice(words, rng.integers(5, 60))))
        for _ in range(sample)
    ]
    tok = build_char_tokenizer()
    handle = ModelHandle(model=build_tiny_llama(tok), tokenizer=tok)
    emb = HFEmbedder(max_length=512, progress=False)
    emb(handle, recs[:16])
    t0 = time.perf_counter()
    out = emb(handle, recs)
    per = (time.perf_counter() - t0) / sample
    return {"seconds": per * n, "extrapolated_from": sample, "per_record_ms": 1e3 * per, "d": out.shape[1]}


def part_loop(n: int, d: int) -> dict:
    import tempfile

    import numpy as np

    from diverseevol import EvolutionLoop
    from diverseevol.data import InstructionRecord

    t0 = time.perf_counter()
    feats = clustered(n, d)
    records = [InstructionRecord(f"r{i}", "", "x") for i in range(n)]
    setup = time.perf_counter() - t0

    def trainer(recs, round, out_dir):
        return {"round": round, "n": len(recs)}

    def embedder(model, recs):
        return feats

    with tempfile.TemporaryDirectory() as tmp:
        loop = EvolutionLoop(records, trainer=trainer, embedder=embedder, sampler="kcenter", init_size=100,
                             k=100, rounds=1, seed=0, run_dir=os.path.join(tmp, "run"), vendi=False,
                             progress=False)
        t0 = time.perf_counter()
        result = loop.run()
        elapsed = time.perf_counter() - t0
    assert len(result.pools[1]) == 200
    return {"seconds": elapsed, "setup_seconds": setup}


def child(part: str, n: int, d: int, sample: int) -> None:
    import resource

    if part == "kcenter":
        out = part_kcenter(n, d)
    elif part == "vendi":
        out = part_vendi(n, d)
    elif part == "embed":
        out = part_embed(n, d, sample)
    else:
        out = part_loop(n, d)
    out["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="15000,52000,200000,1000000")
    p.add_argument("--parts", default="kcenter,vendi,embed,loop")
    p.add_argument("--dim", type=int, default=4096)
    p.add_argument("--embed-model", choices=("tiny", "smollm2"), default="tiny",
                   help="the embedding row's model: the tiny random LLaMA on synthetic records, or SmolLM2-135M "
                   "(float32, compiled, max_length 256) on real Dolly records")
    p.add_argument("--embed-sample", type=int, default=512, 
                   help="records actually embedded (then extrapolated)")
    p.add_argument("--timeout", type=float, default=900, 
                   help="seconds per (part, N) before it is reported as such")
    p.add_argument("--child", nargs=4, metavar=("PART", "N", "D", "SAMPLE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        part, n, d, sample = args.child
        child(part, int(n), int(d), int(sample))
        return
    os.environ["SCALE_EMBED_MODEL"] = args.embed_model  # read by the child process
    print(f"{'part':8s} {'N':>9s} {'d':>5s} {'seconds':>9s} {'peak MiB':>9s} {'load':>5s}  note")
    embed_once: dict = {}  # the embedding pass is measured once and extrapolated to every N
    for n in (int(s) for s in args.sizes.split(",")):
        for part in args.parts.split(","):
            d = 64 if part == "embed" else pick_dim(n, args.dim)
            load = open("/proc/loadavg").read().split()[0]
            if part == "embed" and embed_once:
                res = embed_once
                seconds = res["per_record_ms"] * n / 1e3
                print(f"{part:8s} {n:9d} {res.get('d', d):5d} {seconds:9.2f} {res['maxrss_mib']:9.0f} "
                      f"{res['load']:>5s}  extrapolated: {res['per_record_ms']:.2f} ms/record (measured on "
                      f"{res['extrapolated_from']} records above)", flush=True)
                continue
            try:
                run = subprocess.run(
                    [sys.executable, __file__, "--child", part, str(n), str(d), str(args.embed_sample)],
                    capture_output=True, text=True, timeout=args.timeout,
                )
            except subprocess.TimeoutExpired:
                over = ">" + str(int(args.timeout))
                print(f"{part:8s} {n:9d} {d:5d} {over:>9s} {'':>9s} {load:>5s}  timed out")
                continue
            if run.returncode != 0:
                why = (run.stderr.strip().splitlines() or ["?"])[-1][:80]
                print(f"{part:8s} {n:9d} {d:5d} {'failed':>9s} {'':>9s} {load:>5s}  {why}")
                continue
            res = json.loads(run.stdout.strip().splitlines()[-1])
            note = ""
            if part == "embed":
                embed_once.update(res, load=load)
                model = res.get("model", "tiny model")
                extra = (f", {res['tokens_per_record']:.0f} tokens a record, first call {res['first_call_s']:.0f} s"
                         if "tokens_per_record" in res else "")
                note = (f"extrapolated from {res['extrapolated_from']} records "
                        f"({res['per_record_ms']:.2f} ms each, {model}{extra}); peak memory is the sample's")
            elif part == "loop":
                note = f"+ {res['setup_seconds']:.1f} s to build the fake data"
            load_after = open("/proc/loadavg").read().split()[0]
            d = res.get("d", d) if part == "embed" else d  # the model's width
            print(f"{part:8s} {n:9d} {d:5d} {res['seconds']:9.2f} {res['maxrss_mib']:9.0f} "
                  f"{load + '-' + load_after:>5s}  {note}", flush=True)


if __name__ == "__main__":
    main()
