"""Evaluate models without any LLM endpoint: ExactMatchJudge as the loop's judge.

A toy "model" here is a dict prompt -> answer (what a trainer would return after learning the
records of its pool); ``generate(model, prompts)`` has the same shape as the HF generator in
``diverseevol.hf``. The judge reports accuracy overall and per task family, and plugs into
``EvolutionLoop(judge=...)`` as is.

Run:  python examples/judge_offline.py
"""

from __future__ import annotations

import tempfile

import numpy as np

from diverseevol import EvolutionLoop
from diverseevol.data import InstructionRecord
from diverseevol.judge import ExactMatchJudge
from diverseevol.report import write_report

# A small task suite: three families of questions with one exact answer each.
FAMILIES = {
    "add": lambda a, b: (f"What is {a} + {b}?", str(a + b)),
    "reverse": lambda a, b: (f"Reverse the word {'ab'[a % 2]}{chr(97 + b % 26)}{a}", f"{a}{chr(97 + b % 26)}{'ab'[a % 2]}"),
    "max": lambda a, b: (f"Which is larger, {a} or {b}?", str(max(a, b))),
}
rng = np.random.default_rng(0)
records, groups = [], []
for family, make in FAMILIES.items():
    for _ in range(40):
        q, a = make(*rng.integers(0, 50, size=2).tolist())
        records.append(InstructionRecord(q, "", a))
        groups.append(family)


def train(pool_records, round, out_dir):
    """The toy model memorises its training pool."""
    return {r.instruction: r.output for r in pool_records}


def generate(model, prompts):
    return [model.get(p, "I do not know.") for p in prompts]


# Toy embeddings: a direction per family plus noise (stands in for the model's hidden states).
_DIRECTIONS = {f: np.random.default_rng(i).normal(size=8) for i, f in enumerate(FAMILIES)}
EMBEDDINGS = np.stack([_DIRECTIONS[g] for g in groups]) + np.random.default_rng(9).normal(scale=0.3, size=(len(groups), 8))


def embed(model, all_records):
    return EMBEDDINGS


judge = ExactMatchJudge(
    [r.instruction for r in records], [r.output for r in records], generate,
    groups=groups, normalize="words", match="exact",
)

with tempfile.TemporaryDirectory() as tmp:
    runs = []
    for sampler in ("kcenter", "random"):
        loop = EvolutionLoop(records, trainer=train, embedder=embed, judge=judge, sampler=sampler,
                             init_size=6, k=6, rounds=4, seed=0, run_dir=f"{tmp}/{sampler}", progress=False)
        result = loop.run()
        print(sampler, [round(m["accuracy"], 1) for m in result.metrics])
        runs.append(f"{tmp}/{sampler}")
    written = write_report(runs, f"{tmp}/report", plots=False)
    print(written["table"].read_text())
