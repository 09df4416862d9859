"""Pure-numpy fake trainer / embedder / scorer / judge for the EvolutionLoop tests (no torch).

The "model" trained on a pool is the mean of the pool's base features, so each model sees Z
differently and the iterative and one-time modes pick different records. Everything is
deterministic. A log file (env ``FAKE_LOG``) records every call, across processes; the env var
``FAKE_KILL`` = ``"<event>:<round>"`` (event train | embed | score | judge) makes the process
SIGKILL itself inside that call, after partial work.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np

from diverseevol.data import InstructionRecord

N_RECORDS = 80
DIM = 6


def make_records(n: int = N_RECORDS) -> list[InstructionRecord]:
    return [InstructionRecord(f"task {i}", "" if i % 3 else f"context {i}", f"answer {i}") for i in range(n)]


def base_features(n: int = N_RECORDS, d: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(123)
    centers = rng.normal(scale=4.0, size=(5, d))
    labels = rng.integers(0, 5, size=n)
    return (centers[labels] + rng.normal(size=(n, d))).astype(np.float32)


def _row(rec: InstructionRecord) -> int:
    return int(rec.instruction.split()[-1])


def _log(event: str, t: int) -> None:
    path = os.environ.get("FAKE_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{event} {t}\n")


def _maybe_die(event: str, t: int) -> None:
    if os.environ.get("FAKE_KILL") == f"{event}:{t}":
        _log(f"killed-{event}", t)
        os.kill(os.getpid(), signal.SIGKILL)


def model_from_rows(rows: list[int], t: int) -> dict:
    center = base_features()[rows].mean(axis=0)
    return {"round": t, "n": len(rows), "center": center.tolist()}


class FakeTrainer:
    """Trains (computes the pool mean), writes model.json into out_dir; ``load`` reads it back."""

    def __init__(self, with_load: bool = True) -> None:
        self.calls: list[int] = []
        self.loads: list[int] = []
        if not with_load:
            self.load = None  # type: ignore[assignment]

    def __call__(self, records, round, out_dir: Path):
        recorded = (Path(out_dir).parent / "train.json").exists()
        _log("retrain" if recorded and self.load is not None else "train", round)
        self.calls.append(round)
        (Path(out_dir) / "partial.txt").write_text("started")
        _maybe_die("train", round)
        model = model_from_rows([_row(r) for r in records], round)
        (Path(out_dir) / "model.json").write_text(json.dumps(model))
        return model

    def load(self, out_dir: Path, round: int):
        _log("load", round)
        self.loads.append(round)
        return json.loads((Path(out_dir) / "model.json").read_text())


class FakeEmbedder:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, model, records):
        self.calls.append(model["round"])
        _log("embed", model["round"])
        _maybe_die("embed", model["round"])
        feats = base_features(len(records))
        center = np.asarray(model["center"], dtype=np.float64)
        scale = 0.3 + 2.0 / (1.0 + np.exp(-center))  # per-dimension: each model sees a different geometry
        return (feats * scale + 0.1 * center).astype(np.float32)


class FakeScorer:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, model, records):
        self.calls.append(model["round"])
        _log("score", model["round"])
        _maybe_die("score", model["round"])
        feats = base_features(len(records)).astype(np.float64)
        dist = np.linalg.norm(feats - np.asarray(model["center"]), axis=1)
        conf = 1.0 / (1.0 + dist)
        return {"confidence": conf, "margin": conf * np.cos(dist) ** 2, "entropy": np.log1p(dist)}


class FakeJudge:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, model, round):
        self.calls.append(round)
        _log("judge", round)
        _maybe_die("judge", round)
        return {"accuracy": float(np.tanh(model["n"] / 50.0)), "norm": float(np.linalg.norm(model["center"]))}


def small_loop(run_dir: Path, **kw):
    """An EvolutionLoop over :func:`make_records` with a FakeTrainer: P_0 = 6, k = 5, 2 rounds, seed 3 (override by kw)."""
    from diverseevol.run import EvolutionLoop

    params = dict(trainer=FakeTrainer(), init_size=6, k=5, rounds=2, seed=3, run_dir=run_dir, progress=False)
    params.update(kw)
    return EvolutionLoop(make_records(), **params)
