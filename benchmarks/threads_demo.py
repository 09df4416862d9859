"""Wall and CPU time of the demo with and without the thread policy (:mod:`diverseevol.threads`).

Runs ``diverseevol demo --no-plots --overwrite`` as a fresh process, alternately with the policy
off (``DIVERSEEVOL_THREAD_POLICY=0``: libgomp's default spin-then-sleep wait) and on (the default:
``OMP_WAIT_POLICY=PASSIVE`` set before torch loads, thread counts from the usable cores), on the same
cached base model (built first, untimed, when the cache is cold). Wall time is the whole
command; CPU time is user + system of the command and its children (``resource.RUSAGE_CHILDREN``).
The 1-minute load average is read before and after every run, and every run's ``results.json`` is
compared byte for byte with the first one's (the demo is deterministic per seed).

Usage::

    python benchmarks/threads_demo.py                    # the default demo, 1 repeat of each
    python benchmarks/threads_demo.py --repeats 2 -- --tiny   # arguments after -- go to the demo
    python benchmarks/threads_demo.py --busy 2               # beside 2 busy-looping processes (load ~4 on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--work", type=Path, default=None, help="folder of the runs and the cache (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--busy", type=int, default=0,
                    help="start this many busy-looping processes (nice 0) for the timed runs: a reproducible load")
    ap.add_argument("demo_args", nargs="*", help="more arguments of `diverseevol demo` (after --)")
    args = ap.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="threads_demo_"))
    base_env = {k: v for k, v in os.environ.items()
                if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                             "GOMP_SPINCOUNT", "DIVERSEEVOL_THREAD_POLICY")}
    base_env.update(DIVERSEEVOL_CACHE=str(work / "cache"), DIVERSEEVOL_PROGRESS="0", HF_HUB_OFFLINE="1",
                    PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))

    def demo(out: Path, policy: bool) -> dict:
        env = dict(base_env, **({} if policy else {"DIVERSEEVOL_THREAD_POLICY": "0"}))
        load0, c0, t0 = os.getloadavg()[0], _children_cpu(), time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "diverseevol", "demo", "--out", str(out), "--no-plots",
                              "--overwrite", *args.demo_args], env=env, capture_output=True, text=True)
        wall, cpu = time.perf_counter() - t0, _children_cpu() - c0
        if run.returncode != 0:
            raise SystemExit(f"demo failed:\n{run.stderr[-4000:]}")
        return {"policy": policy, "wall_s": wall, "cpu_s": cpu, "load_before": load0,
                "load_after": os.getloadavg()[0], "results": (out / "results.json").read_bytes()}

    if not (work / "cache").exists():  # build the cached base model once, untimed, so both arms reuse it
        print("building the base model (untimed) ...", flush=True)
        tiny = "--tiny" in args.demo_args
        build = ("from diverseevol.demo.model import prepare_tiny_base; from diverseevol.demo.run import DemoSettings; "
                 "from diverseevol.hf.gguf import default_cache_dir; "
                 f"prepare_tiny_base(default_cache_dir() / 'demo', DemoSettings.preset('tiny', tiny={tiny}).tiny_spec, "
                 "progress=False)")
        subprocess.run([sys.executable, "-c", build], env=base_env, check=True)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(0, args.busy))]
    if busy:
        print(f"{len(busy)} busy-looping processes started; waiting 60 s for the load average to rise", flush=True)
        time.sleep(60)
    try:
        rows = _timed_runs(args, work, demo)
    finally:
        for p in busy:
            p.kill()
    if not all(r["identical"] for r in rows):
        raise SystemExit("results.json differs between runs")
    if args.json is not None:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if k != "results"} | {"busy": args.busy}
                                         for r in rows], indent=1))


def _timed_runs(args: argparse.Namespace, work: Path, demo) -> list[dict]:  # type: ignore[no-untyped-def]
    rows: list[dict] = []
    for rep in range(args.repeats):
        for policy in (False, True):
            row = demo(work / f"run{rep}_{'on' if policy else 'off'}", policy)
            row["identical"] = row["results"] == (rows[0]["results"] if rows else row["results"])
            rows.append(row)
            print(f"repeat {rep} policy {'on ' if policy else 'off'}: wall {row['wall_s']:6.1f} s  "
                  f"CPU {row['cpu_s']:6.1f} s  load {row['load_before']:.2f} -> {row['load_after']:.2f}  "
                  f"results.json identical: {row['identical']}", flush=True)
    return rows


if __name__ == "__main__":
    main()
