"""Wall time of ``diverseevol select --embedder`` in one process against 2 ranks under torchrun (CPU, gloo).

Both runs use the same records (the first N Dolly-15k records of at most ``--max-chars`` characters,
written to a JSONL file), the same tiny offline LLaMA (:func:`diverseevol.hf.tiny.save_tiny_model`)
and one thread per process (``OMP_NUM_THREADS=1``), and are interleaved ``--repeats`` times, so a
change of the machine's load hits both alike. Every wall time is the whole command (process start,
imports, process group, embedding, K-Center, writing). The picks of every run are compared with the
first one-process run's; the load average is read before each run.

Usage::

    python benchmarks/select_sharded.py                 # 2,400 records, k = 20, 3 repeats
    python benchmarks/select_sharded.py --n 600 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(nproc: int, data: Path, model: Path, out: Path, k: int) -> list[str]:
    select = ["-m", "diverseevol", "select", str(data), "--embedder", str(model), "--k", str(k),
              "--out", str(out / "picked.jsonl"), "--indices-out", str(out / "picked.txt")]
    if nproc == 1:
        return [sys.executable, *select]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr",
            "127.0.0.1", "--master_port", str(_free_port()), *select]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2400)
    ap.add_argument("--max-chars", type=int, default=2000)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    from embed import load_records  # the same Dolly sample as benchmarks/embed.py

    from diverseevol.hf.tiny import save_tiny_model

    work = Path(tempfile.mkdtemp(prefix="select_sharded_"))
    records, source = load_records(args.n, args.max_chars)
    data = work / "data.jsonl"
    data.write_text("".join(json.dumps({"instruction": r.instruction, "input": r.input, "output": r.output}) + "\n"
                            for r in records))
    model = save_tiny_model(work / "tiny", seed=0)
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               DIVERSEEVOL_PROGRESS="0", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    times: dict[int, list[float]] = {1: [], 2: []}
    loads: list[float] = []
    reference = None
    for rep in range(args.repeats):
        for nproc in (1, 2):
            out = work / f"run{rep}_{nproc}"
            out.mkdir()
            loads.append(os.getloadavg()[0])
            t0 = time.perf_counter()
            run = subprocess.run(_command(nproc, data, model, out, args.k), env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if run.returncode != 0:
                raise SystemExit(f"{nproc} process(es) failed:\n{run.stderr[-4000:]}")
            picks = (out / "picked.txt").read_text()
            reference = reference or picks
            same = picks == reference
            writers = (run.stdout + run.stderr).count("selected ")
            times[nproc].append(wall)
            print(f"repeat {rep}: {nproc} process(es) {wall:6.1f} s  load {loads[-1]:.2f}  "
                  f"picks identical: {same}  'selected' lines: {writers}", flush=True)
            if not same or writers != 1:
                raise SystemExit("the picks differ from one process's, or not exactly one rank reported")
    med1, med2 = statistics.median(times[1]), statistics.median(times[2])
    print(f"\n{len(records)} records ({source}), k = {args.k}, tiny LLaMA, 1 thread per process")
    print(f"median wall: 1 process {med1:.1f} s, 2 ranks {med2:.1f} s ({med1 / med2:.2f}x); "
          f"load average {min(loads):.2f}-{max(loads):.2f} (1-min, before each run)")
    if args.json is not None:
        args.json.write_text(json.dumps({"n": len(records), "k": args.k, "one": times[1], "two": times[2],
                                         "median_one": med1, "median_two": med2, "loads": loads}, indent=1))


if __name__ == "__main__":
    main()
