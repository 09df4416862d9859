"""Token budgets of the embedding pass, alternated on the same records: tokens/s per budget.

On a busy or virtual machine the speed drifts by 10-30% over minutes, so timing one whole pass
per budget after another compares moments more than budgets. Here the records (Dolly-15k, sorted
longest first) go in groups of ``--group`` records; every group runs under each budget in turn
(the order flips from one group to the next), each budget cutting the group into batches with
:func:`diverseevol.hf._batches.plan_batches`, through the transformer body the embedding pass runs
(SDPA, causal kernel when compiled, no KV cache). Totals per budget are printed after each group.

Usage::

    python benchmarks/embed_budgets.py --model smollm2 --n 512 --budgets 16384,2048 --compile
    python benchmarks/embed_budgets.py --model smollm2 --n 256 --budgets 16384,2048      # eager

The first budget is the baseline of the printed ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2", help="'smollm2' (the offline SmolLM2-135M GGUF) or a path")
    p.add_argument("--n", type=int, default=512, help="Dolly records")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--budgets", default="16384,2048", help="comma-separated padded tokens per batch; the first is "
                   "the baseline")
    p.add_argument("--group", type=int, default=64, help="records per alternation group")
    p.add_argument("--compile", action="store_true", help="torch.compile the body (as compile=True)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import torch

    from embed import load_records

    from diverseevol.hf import load_model, smollm2_gguf_path
    from diverseevol.hf._batches import plan_batches
    from diverseevol.hf._fast_paths import CompiledBody, causal_sdpa, onednn_linears, sdpa_attention
    from diverseevol.hf._model import body_and_head
    from diverseevol.hf._records import tokenize_records
    from diverseevol.hf.embedder import _batch_on_device as batch_on_device

    torch.set_num_threads(args.threads)
    loaded = load_model(str(smollm2_gguf_path()) if args.model == "smollm2" else args.model)
    model, tok = loaded.model.float().eval(), loaded.tokenizer
    records, source = load_records(args.n, 1200)
    tokens = tokenize_records(tok, records, max_length=args.max_length, warn_truncated=False)
    ids, lengths_all = tokens.input_ids, np.asarray(tokens.lengths)
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    body, _ = body_and_head(model)
    runner = CompiledBody(body, args.compile)
    budgets = [int(b) for b in args.budgets.split(",")]
    pad_id = int(tok.pad_token_id)

    def run(rows: list[int]) -> tuple[float, int]:
        idx = np.asarray(rows)
        x, _ = batch_on_device(ids, idx, lengths_all[idx], pad_id, torch.device("cpu"))  # the pass's own batches
        t0 = time.perf_counter()
        runner(input_ids=x, attention_mask=None, use_cache=False)
        return time.perf_counter() - t0, x.numel()

    print(f"records: {source}; {sum(len(i) for i in ids)} tokens; compile={args.compile}; {args.threads} threads; "
          f"load {open('/proc/loadavg').read().split()[0]}")
    seconds = dict.fromkeys(budgets, 0.0)
    padded = dict.fromkeys(budgets, 0)
    real = 0
    with torch.inference_mode(), sdpa_attention(model), causal_sdpa(model, args.compile), onednn_linears(
        model, "auto", custom_op=args.compile
    ):
        t0 = time.perf_counter()
        run(order[:2])
        run(order[:3])  # the compilation (dynamic shapes) or the warm-up
        print(f"warm-up {time.perf_counter() - t0:.1f} s")
        for g in range(0, len(order), args.group):
            group = order[g : g + args.group]
            lengths = np.array([len(ids[i]) for i in group])
            real += int(lengths.sum())
            for budget in budgets if (g // args.group) % 2 == 0 else budgets[::-1]:
                for sl in plan_batches(lengths, max_tokens=budget):
                    dt, pad = run(group[sl.start : sl.stop])
                    seconds[budget] += dt
                    padded[budget] += pad
            print(f"after {g + len(group)} records: "
                  + ", ".join(f"{b}: {real / s:.0f} tokens/s" for b, s in seconds.items())
                  + f" (load {open('/proc/loadavg').read().split()[0]})", flush=True)
    base = budgets[0]
    for b in budgets:
        print(f"budget {b:6d}: {real / seconds[b]:7.0f} tokens/s, padding {padded[b] / real - 1:.1%}, "
              f"{seconds[base] / seconds[b]:.2f}x the {base}-token budget")


if __name__ == "__main__":
    main()
