"""Issue 14 item 5: the per-round metrics carry NovelSum and, with ``label_field=``, per-label counts and entropy."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from diverseevol import EvolutionLoop
from diverseevol.data import InstructionRecord
from diverseevol.errors import ValidationError
from diverseevol.run.result import METRIC_KEYS, EvolutionResult


class _Fixed:
    def __init__(self, emb: np.ndarray) -> None:
        self.emb = emb

    def __call__(self, model, records):
        return self.emb


def _novelsum_of(emb: np.ndarray, subset: np.ndarray, alpha=1.0, beta=0.5, n_neighbors=10) -> float:
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    dist_all = 1.0 - unit @ unit.T
    density = np.empty(len(emb))
    for i in range(len(emb)):
        others = np.delete(dist_all[i], i)
        density[i] = 1.0 / np.sort(others)[:n_neighbors].mean()
    total = 0.0
    for i in subset:
        others = [j for j in subset if j != i]
        order = sorted(others, key=lambda j: (dist_all[i, j], list(subset).index(j)))
        for rank, j in enumerate(order, start=1):
            total += (1.0 / rank) ** alpha * density[j] ** beta * dist_all[i, j]
    return total


def _records(n: int) -> list[InstructionRecord]:
    cats = ["open_qa", "brainstorming", "classification", "summarization"]
    return [
        InstructionRecord(f"task {i}", "", f"answer {i}", meta={"category": cats[(i * i) % 4]}) for i in range(n)
    ]


def test_metrics_rows_carry_novelsum_and_label_figures(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(60, 5)).astype(np.float32)
    records = _records(60)
    result = EvolutionLoop(records, trainer=lambda recs, t, out: None, embedder=_Fixed(emb), init_size=6, k=5,
                           rounds=2, seed=1, run_dir=tmp_path / "run", progress=False,
                           label_field="category", vendi=True).run()  # vendi=True: the last round is measured too
    assert {"novelsum", "label_entropy", "label_counts"} <= set(METRIC_KEYS)
    for pool, row in zip(result.pools, result.metrics):
        labels = [records[i].meta["category"] for i in pool]
        counts = Counter(labels)
        assert row["label_counts"] == dict(sorted(counts.items()))
        p = np.array(list(counts.values()), dtype=float) / len(labels)
        assert row["label_entropy"] == pytest.approx(float(-(p * np.log(p)).sum()))
        assert row["novelsum"] == pytest.approx(_novelsum_of(emb.astype(np.float64), np.asarray(pool)), rel=1e-4)
    saved = EvolutionResult.load(tmp_path / "run").metrics
    assert [r["label_counts"] for r in saved] == [r["label_counts"] for r in result.metrics]


def test_without_label_field_the_label_figures_are_none(tmp_path: Path) -> None:
    emb = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    result = EvolutionLoop(_records(30), trainer=lambda recs, t, out: None, embedder=_Fixed(emb), init_size=5,
                           k=5, rounds=1, seed=0, progress=False, vendi=True).run()
    assert all(r["label_entropy"] is None and r["label_counts"] is None for r in result.metrics)
    assert all(math.isfinite(r["novelsum"]) for r in result.metrics)


def test_unknown_label_field_is_refused_with_the_fix() -> None:
    with pytest.raises(ValidationError, match="meta_fields"):
        EvolutionLoop(_records(30), trainer=lambda recs, t, out: None, init_size=5, k=5, rounds=1,
                      sampler="random", label_field="topic")
