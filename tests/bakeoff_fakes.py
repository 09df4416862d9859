"""Pure-numpy parts for bake-off tests: records with a category, a trainer whose model is its pool,
an embedder, and a held-out judge whose loss and answers depend on the model. Picklable, so
``run_bakeoff(workers=2)`` can ship them to spawned processes. Every call is appended to the
log file named by env ``BAKEOFF_LOG`` (across processes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from diverseevol.data import InstructionRecord
from diverseevol.judge.heldout import HeldoutJudge

CATEGORIES = ("alpha", "beta", "gamma")


def make_records(n: int = 60) -> list[InstructionRecord]:
    out = []
    for i in range(n):
        cat = CATEGORIES[i % 3]
        words = " ".join(["word"] * (1 + (i * 7) % 11))
        out.append(InstructionRecord(f"task {i} {words}", "", f"answer {cat} {i}", meta={"category": cat}))
    return out


def _number(rec: InstructionRecord) -> int:
    return int(rec.instruction.split()[1])


def _features(numbers: list[int]) -> np.ndarray:
    rng = np.random.default_rng(7)
    table = rng.normal(size=(1000, 4))
    return table[np.asarray(numbers, dtype=np.int64)]


def _log(event: str, t: int) -> None:
    path = os.environ.get("BAKEOFF_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{os.getpid()} {event} {t}\n")


class Trainer:
    def __call__(self, records, round, out_dir):
        _log("train", round)
        if os.environ.get("BAKEOFF_FAIL_ROUND") == str(round):
            raise RuntimeError("injected failure")
        nums = sorted(_number(r) for r in records)
        model = {"round": round, "numbers": nums, "center": _features(nums).mean(axis=0).tolist()}
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "model.json").write_text(json.dumps(model))
        return model

    def load(self, out_dir, round):
        _log("load", round)
        return json.loads((Path(out_dir) / "model.json").read_text())


def embedder(model, records):
    _log("embed", model["round"])
    feats = _features([_number(r) for r in records])
    return (feats - 0.3 * np.asarray(model["center"])).astype(np.float32)


def loss(model, records):
    feats = _features([_number(r) for r in records])
    nll = np.linalg.norm(feats - np.asarray(model["center"]), axis=1) + 1.0 / (1 + len(model["numbers"]))
    return nll * 2, np.full(len(records), 2)


def generate(model, records):
    seen = {n % 3 for n in model["numbers"]}
    return [r.output if _number(r) % 3 in seen and len(model["numbers"]) > 12 else "no idea" for r in records]


class Parts:
    """``parts(seed, split) -> (trainer, embedder, scorer, judge)``."""

    def __call__(self, seed, split):
        return Trainer(), embedder, None, _Judge(split)


class _Judge:
    def __init__(self, split) -> None:
        self.inner = HeldoutJudge(split.heldout_records, split.heldout_labels, loss=loss, generate=generate)

    def __call__(self, model, round):
        _log("judge", round)
        return self.inner(model, round)
