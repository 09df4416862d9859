"""The real-model bake-off: SmolLM2-135M-Instruct + LoRA on a stratified Dolly-15k pool.

Prepares, in ``--work``:

* ``data.jsonl``: ``--pool`` + ``--heldout`` x 8 Dolly records, stratified by category (each
  category's share of Dolly, largest remainders), ``context`` cut to ``--context-chars``
  characters so long passages leave response tokens inside ``max_length``;
* ``bakeoff.yaml``: the run configuration with its ``bakeoff`` section (recipes, baseline,
  ``heldout: {label_field: category, per_label: --heldout}``), the budget and the LoRA trainer;

then runs ``diverseevol bakeoff work/bakeoff.yaml --seeds ... --out work/out`` through the
library call (:func:`diverseevol.bakeoff.from_config.run_bakeoff_config`). A rerun resumes.

Usage::

    python benchmarks/bakeoff_dolly.py --quick                          # minutes: 60-record pool, 1 seed
    python benchmarks/bakeoff_dolly.py --seeds 0,1,2 --workers 2         # design seeds (CPU budget below)
    python benchmarks/bakeoff_dolly.py --seeds 100,101,102,103,104 --workers 2 --work runs/bakeoff_fresh

CPU budget (2 cores): pool 1,000, held-out 10 per category, P_0 = 20, k = 40, 2 rounds (pools 20, 60,
100: 10% of the pool), 1 epoch, max_length 160, context 300 characters, ROUGE-L on the final
pool's model only (``generate_rounds``) with 48 new tokens.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(
    os.environ.get("DIVERSEEVOL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
) / "databricks-dolly-15k" / "databricks-dolly-15k.jsonl.gz"

RECIPES = ("random", "kcenter", "balanced_random", "kmeans_random:mode=one_time")


def stratified_sample(rows: list[dict], n: int, seed: int = 1234) -> list[int]:
    """``n`` row indices, each category getting its share of ``rows`` (largest remainders), shuffled."""
    rng = np.random.default_rng(seed)
    by_cat: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_cat.setdefault(r["category"], []).append(i)
    cats = sorted(by_cat)
    quota = {c: n * len(by_cat[c]) / len(rows) for c in cats}
    counts = {c: int(np.floor(q)) for c, q in quota.items()}
    for c in sorted(cats, key=lambda c: counts[c] - quota[c])[: n - sum(counts.values())]:
        counts[c] += 1
    picked = [int(i) for c in cats for i in rng.choice(by_cat[c], size=counts[c], replace=False)]
    return [picked[j] for j in rng.permutation(len(picked))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--quick", action="store_true", help="60-record pool, 2 held out per category, 1 seed")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated sampler specs (quote params)")
    ap.add_argument("--pool", type=int, default=1000)
    ap.add_argument("--heldout", type=int, default=10, help="held-out records per category")
    ap.add_argument("--init", type=int, default=20)
    ap.add_argument("--k", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-length", type=int, default=160)
    ap.add_argument("--context-chars", type=int, default=300)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--workers", type=int, default=1, help="seeds in parallel processes")
    ap.add_argument("--work", type=Path, default=Path("runs/bakeoff_dolly"))
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.pool, args.heldout, args.init, args.k, args.rounds, args.seeds = 60, 2, 4, 4, 1, "0"
    from diverseevol.bakeoff.from_config import run_bakeoff_config
    from diverseevol.hf import smollm2_gguf_path

    with gzip.open(args.data, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    n_cats = len({r["category"] for r in rows})
    idx = stratified_sample(rows, args.pool + args.heldout * n_cats)
    args.work.mkdir(parents=True, exist_ok=True)
    data_path = args.work / "data.jsonl"
    with open(data_path, "w", encoding="utf-8") as fh:
        for i in idx:
            r = dict(rows[i])
            r["context"] = (r.get("context") or "")[: args.context_chars]
            fh.write(json.dumps(r) + "\n")
    recipes = [s.strip() for s in args.recipes.split(";" if ";" in args.recipes else ",") if s.strip()]
    batch = 4 if args.quick else 8
    config = {
        "data": {"path": "data.jsonl"},
        "model": {
            "name_or_path": str(smollm2_gguf_path()),
            "trainer": {"lora": True, "lora_r": 8, "lora_alpha": 16, "epochs": args.epochs, "batch_size": batch,
                        "per_device_batch_size": batch, "lr": 1e-3, "warmup_ratio": 0.0,
                        "max_length": args.max_length, "progress": False, "logging_steps": 1000},
            "embedder": {"batch_size": batch, "max_length": args.max_length, "progress": False},
        },
        "budget": {"init_size": args.init, "k": args.k, "rounds": args.rounds},
        "bakeoff": {
            "samplers": recipes, "baseline": "random",
            "heldout": {"label_field": "category", "per_label": args.heldout},
            "generation": {"max_new_tokens": args.max_new_tokens, "batch_size": batch},
            "generate_rounds": [args.rounds],
            "loss": {"max_length": args.max_length, "batch_size": batch},
        },
    }
    cfg_path = args.work / "bakeoff.yaml"
    cfg_path.write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")  # JSON is valid YAML
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"Dolly: {len(idx)} records ({dict(sorted(Counter(rows[i]['category'] for i in idx).items()))}); "
          f"recipes {recipes}; seeds {seeds}; workers {args.workers}", flush=True)
    t0 = time.perf_counter()
    result = run_bakeoff_config(cfg_path, args.work / "out", seeds=seeds, workers=args.workers,
                                plots=not args.no_plots, progress=False, echo=lambda m: print(m, flush=True))
    print((args.work / "out" / "results.md").read_text())
    print(f"wall {time.perf_counter() - t0:.0f} s; load average at the end {os.getloadavg()}")
    return 0 if result.rows else 1


if __name__ == "__main__":
    sys.exit(main())
