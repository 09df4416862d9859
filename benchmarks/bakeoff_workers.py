"""The bake-off over worker processes: serial vs ``--workers 2``, same rows, wall time side by side.

Builds the tiny offline LLaMA (``diverseevol.hf.tiny``) and 48 synthetic records (`--records`) with 2 categories,
writes a bake-off configuration (random, kcenter, balanced_random; P_0 and k an eighth of the records (at least 6), 2 rounds; held-out
3 per category), then runs ``run_bakeoff_config`` for the seeds serially (2 torch threads) and with
2 worker processes (1 thread each), interleaved ``--repeats`` times in fresh folders. Prints each
wall time, the median ratio serial / workers, the load average, and checks the rows are equal.

Usage::

    python benchmarks/bakeoff_workers.py --seeds 0,1 --repeats 3
    python benchmarks/bakeoff_workers.py --records 192 --rounds 3 --epochs 4   # more work per recipe

Each worker process imports torch and transformers and loads its model afresh (about 5 s each on 2 cores),
while the serial run reuses the parent's imports: the default workload (about 10 s serially) is too small for
2 workers to gain; scale it with ``--records`` / ``--rounds`` / ``--epochs``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORDS = ["add", "list", "poem", "why", "sum", "sky", "blue", "code", "tree", "sort"]


def write_inputs(folder: Path, records: int = 48, rounds: int = 2, epochs: int = 2) -> Path:
    from diverseevol.hf.tiny import save_tiny_model

    base = save_tiny_model(folder / "base", seed=0)
    rng = np.random.default_rng(0)
    with open(folder / "data.jsonl", "w") as fh:
        for i in range(records):
            fh.write(json.dumps({
                "instruction": " ".join(rng.choice(WORDS, size=rng.integers(1, 5))), "context": "",
                "response": f"{i} " + " ".join(rng.choice(WORDS, size=rng.integers(1, 6))),
                "category": ["open_qa", "brainstorming"][i % 2]}) + "\n")
    cfg = {
        "data": {"path": "data.jsonl"},
        "model": {"name_or_path": str(base),
                  "trainer": {"lora": True, "epochs": epochs, "batch_size": 4, "per_device_batch_size": 4, "lr": 0.001,
                              "progress": False, "max_length": 320},
                  "embedder": {"batch_size": 16, "progress": False}},
        "budget": {"init_size": max(6, records // 8), "k": max(6, records // 8), "rounds": rounds},
        "bakeoff": {"samplers": ["random", "kcenter", "balanced_random"], "baseline": "random",
                    "heldout": {"label_field": "category", "per_label": 3},
                    "generation": {"max_new_tokens": 8, "batch_size": 6}, "generate_rounds": [2]},
    }
    (folder / "bakeoff.yaml").write_text(json.dumps(cfg, indent=1))
    return folder / "bakeoff.yaml"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--records", type=int, default=48, help="synthetic records (P_0 and k are an eighth each)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args(argv)
    import torch

    from diverseevol.bakeoff.from_config import run_bakeoff_config

    seeds = [int(s) for s in args.seeds.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bakeoff_workers_"))
    cfg = write_inputs(work, args.records, args.rounds, args.epochs)
    times: dict[int, list[float]] = {1: [], 2: []}
    rows: dict[int, list] = {}
    load0 = os.getloadavg()
    for rep in range(args.repeats):
        for workers in (1, 2):
            torch.set_num_threads(2)
            out = work / f"out_{workers}_{rep}"
            t0 = time.perf_counter()
            result = run_bakeoff_config(cfg, out, seeds=seeds, workers=workers, plots=False, progress=False,
                                        echo=lambda m: None)
            times[workers].append(time.perf_counter() - t0)
            rows.setdefault(workers, result.rows)
            print(f"repeat {rep}: workers {workers}: {times[workers][-1]:.1f} s", flush=True)
    same = rows[1] == rows[2]
    s, w = statistics.median(times[1]), statistics.median(times[2])
    print(f"seeds {seeds}, 3 recipes, {args.records} records, {args.rounds} rounds, {args.epochs} epochs; median serial {s:.1f} s, 2 workers {w:.1f} s, serial / workers = {s / w:.2f}; "
          f"rows equal: {same}; load average before {load0[0]:.1f}, after {os.getloadavg()[0]:.1f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
