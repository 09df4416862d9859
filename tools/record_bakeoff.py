"""Record a finished bake-off as a result file under ``docs/results/`` (rendered by gen_result_docs.py).

Reads ``OUT/results.json`` and ``OUT/timing.json`` of a ``diverseevol bakeoff`` run (or of
``benchmarks/bakeoff_dolly.py``) and writes one JSON file holding them with the run's
``conditions``: the command, the stage (design or fresh seeds), the commit, the machine, the date and
the load during the run (from ``--load-log``, lines ``HH:MM:SS load1 load5 load15 ...`` as written by
``while true; do echo "$(date +%H:%M:%S) $(cat /proc/loadavg)"; sleep 60; done``).

Usage::

    python tools/record_bakeoff.py runs/bakeoff_dolly/out docs/results/bakeoff_dolly_design.json \\
        --stage design --command "python benchmarks/bakeoff_dolly.py --seeds 0,1,2 --workers 2" \\
        --load-log load.log --since 04:58 --until 05:45 --commit 82954b5 --how "nothing else ran but ..."
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    """``"2 cores (CPU model), 24 GiB, Python 3.11.7, torch 2.13.0 CPU"`` for this machine."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
        mem = f"{round(mem_kb / 2**20)} GiB"
    except (OSError, StopIteration):
        mem = "unknown memory"
    try:
        import torch

        torch_text = f", torch {torch.__version__.split('+')[0]} {'CUDA' if torch.cuda.is_available() else 'CPU'}"
    except ImportError:
        torch_text = ""
    return f"{os.cpu_count()} cores ({model}), {mem}, Python {platform.python_version()}{torch_text}"


def load_during(log: Path, since: str, until: str) -> dict[str, float]:
    """Min, median and max of the 1-minute load average logged between ``since`` and ``until`` (HH:MM[:SS])."""
    values = []
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and since <= parts[0][: len(since)] <= until:
            values.append(float(parts[1]))
    if not values:
        raise SystemExit(f"no load samples between {since} and {until} in {log}")
    return {"load_min": min(values), "load_median": statistics.median(values), "load_max": max(values),
            "load_samples": len(values)}


def record(out_dir: Path, conditions: dict[str, Any]) -> dict[str, Any]:
    """The result file's content: ``results.json`` + ``timing`` + ``conditions``."""
    data = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
    data["timing"] = json.loads((out_dir / "timing.json").read_text(encoding="utf-8"))
    data["conditions"] = conditions
    return data


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--stage", required=True, choices=("design", "fresh"))
    ap.add_argument("--command", required=True)
    ap.add_argument("--load-log", type=Path, required=True)
    ap.add_argument("--since", required=True)
    ap.add_argument("--until", required=True)
    ap.add_argument("--commit", default=None, help="the commit the run used (default: HEAD)")
    ap.add_argument("--how", default="", help="anything else about the conditions (other jobs, niceness)")
    args = ap.parse_args(argv)
    commit = args.commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                           text=True, check=True).stdout.strip()
    conditions = {"stage": args.stage, "command": args.command, "commit": commit, "machine": machine(),
                  "date": date.today().isoformat(), **load_during(args.load_log, args.since, args.until),
                  "how": args.how}
    args.dest.write_text(json.dumps(record(args.out_dir, conditions), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
