# %% [markdown]
# # diverseevol, step by step
#
# A notebook-style walk-through (open it in VS Code / Jupyter as cells, or run it as a script):
#
# 1. the demo's synthetic instruction suite: 20 task families with very uneven frequencies;
# 2. one-shot K-Center vs random selection on cheap text features: task coverage and Vendi;
# 3. the self-evolving loop with your own (here: numpy) trainer and embedder;
# 4. the same loop from a configuration file, as `diverseevol run` does it;
# 5. optionally (`python examples/notebook_style.py --with-model`), the real demo with a tiny
#    LLaMA: K-Center vs random with training and exact-match judging (about a minute on CPU).
#
# Everything is offline; steps 1-4 need numpy only and take a few seconds.

# %%
from __future__ import annotations

import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

from diverseevol import EvolutionLoop, kcenter_select, vendi_score
from diverseevol.demo.tasks import make_suite, task_coverage

suite = make_suite(n_train=1000, n_test_per_task=5, seed=0)
counts = suite.train_counts()
print(f"{len(suite.train)} training records, {len(suite.families)} task families")
for t, (fam, n) in enumerate(zip(suite.families, counts)):
    example = suite.train[int(np.flatnonzero(suite.train_task == t)[0])]
    print(f"  {fam.name:14s} {fam.kind:10s} {n:4d}  e.g. {fam.instruction!r} {example.input!r} -> {example.output!r}")

# %% [markdown]
# ## 2. One-shot selection on text features
#
# Any embedding works for `kcenter_select`. Here: hashed character trigrams of the instruction
# and input (a stand-in for a sentence encoder), L2-normalised.

# %%
def trigram_features(records, dim: int = 256) -> np.ndarray:
    out = np.zeros((len(records), dim), dtype=np.float32)
    for i, r in enumerate(records):
        text = f"{r.instruction} | {r.input}"
        for j in range(len(text) - 2):
            out[i, zlib.crc32(text[j : j + 3].encode()) % dim] += 1.0
    return out / np.linalg.norm(out, axis=1, keepdims=True)


emb = trigram_features(suite.train)
rng = np.random.default_rng(0)
empty = np.array([], dtype=np.int64)
for k in (20, 40, 80):
    picked = kcenter_select(emb, empty, k, metric="cosine", random_state=0)
    random_pick = rng.choice(len(emb), size=k, replace=False)
    print(
        f"k={k:3d}  coverage: kcenter {task_coverage(suite.train_task, picked):2d}/20, "
        f"random {task_coverage(suite.train_task, random_pick):2d}/20   "
        f"Vendi: kcenter {vendi_score(emb[picked]):5.2f}, random {vendi_score(emb[random_pick]):5.2f}"
    )

# %% [markdown]
# ## 3. The loop with your own trainer and embedder
#
# The loop calls `trainer(records, round, out_dir)`, then `embedder(model, records)` on all of
# Z, then the sampler. Here the "model" is the set of task families it was trained on, and its
# embedding of a record is the trigram features (a real model's view would change per round).

# %%
def trainer(records, round, out_dir):
    return sorted({r.instruction for r in records})


def embedder(model, records):
    return emb


with tempfile.TemporaryDirectory() as tmp:
    for sampler in ("kcenter", "random"):
        result = EvolutionLoop(
            suite.train, trainer=trainer, embedder=embedder, sampler=sampler,
            sampler_params={"metric": "cosine"} if sampler == "kcenter" else None,
            init_size=10, k=10, rounds=3, seed=0, run_dir=Path(tmp) / sampler, progress=False,
        ).run()
        cover = [task_coverage(suite.train_task, p) for p in result.pools]
        print(f"{sampler:8s} pool sizes {[len(p) for p in result.pools]}  coverage {cover}")

# %% [markdown]
# ## 4. From a configuration file
#
# `diverseevol run CONFIG` does the same from YAML or TOML. Without a `model` section it selects
# with fixed embeddings (no training); `examples/config.yaml` shows every section.

# %%
from diverseevol.assemble_config import run_config
from diverseevol.config import load_config
from diverseevol import EvolutionResult

with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    import json

    with open(tmp / "data.jsonl", "w") as fh:
        fh.writelines(json.dumps({"instruction": r.instruction, "input": r.input, "output": r.output}) + "\n" for r in suite.train)
    np.save(tmp / "emb.npy", emb)
    (tmp / "run.toml").write_text(
        'run_dir = "runs/kcenter"\nseed = 0\n'
        '[data]\npath = "data.jsonl"\nembeddings = "emb.npy"\n'
        '[sampler]\nname = "kcenter"\nparams = { metric = "cosine" }\n'
        '[budget]\ninit_size = 10\nk = 10\nrounds = 3\n'
    )
    config = load_config(tmp / "run.toml")
    run_config(config, progress=False)
    loaded = EvolutionResult.load(tmp / "runs" / "kcenter")          # read back from disk
    print("pools from the run directory:", [len(p) for p in loaded.pools])
    print("Vendi per round (fixed embeddings):", [round(m["vendi"], 2) for m in loaded.metrics if m.get("vendi")])

# %% [markdown]
# ## 5. The demo with a real (tiny) model
#
# Trains a tiny LLaMA on every pool and judges it by exact match. Needs the `hf` extra.

# %%
if "--with-model" in sys.argv:
    from diverseevol.demo.run import DemoSettings, run_demo

    settings = DemoSettings.preset("tiny", tiny=True, samplers=("kcenter", "random"))
    with tempfile.TemporaryDirectory() as tmp:
        demo = run_demo(settings, Path(tmp) / "demo", cache_dir=Path(tmp) / "cache", plots=False, progress=False)
        print(demo.table_markdown)
else:
    print("(skipping the model step; run with --with-model)")
