"""A 2-round EvolutionLoop end to end with the Hugging Face parts on CPU (tiny model)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from diverseevol import EvolutionLoop
from diverseevol.data import InstructionRecord
from diverseevol.hf import HFEmbedder, HFScorer, HFTrainer, ModelHandle
from diverseevol.hf.tiny import save_tiny_model
from diverseevol.hf.trainer import MARKER_NAME

torch.set_num_threads(2)
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

WORDS = ["add", "list", "poem", "why", "sum", "sky", "blue", "code", "tree", "sort"]


def make_records(n: int = 40, seed: int = 0) -> list[InstructionRecord]:
    rng = np.random.default_rng(seed)
    return [
        InstructionRecord(
            " ".join(rng.choice(WORDS, size=rng.integers(1, 6))),
            " ".join(rng.choice(WORDS, size=rng.integers(0, 4))),
            f"{i} " + " ".join(rng.choice(WORDS, size=rng.integers(1, 8))),
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "base", seed=0)


def test_two_round_kcenter_loop(base, tmp_path):
    records = make_records()
    trainer = HFTrainer(
        base, lora=True, epochs=1, batch_size=8, per_device_batch_size=8, lr=1e-3, progress=False
    )
    embedder = HFEmbedder(batch_size=16, progress=False)
    loop = EvolutionLoop(
        records,
        trainer=trainer,
        embedder=embedder,
        sampler="kcenter",
        init_size=4,
        k=4,
        rounds=2,
        seed=0,
        run_dir=tmp_path / "run",
        progress=False,
    )
    result = loop.run()
    assert result.finished
    assert [len(p) for p in result.pools] == [4, 8, 12]
    final = result.final_pool
    assert len(set(final.tolist())) == 12
    assert all(isinstance(m, ModelHandle) for m in result.models) and len(result.models) == 3
    for t in range(3):
        meta = json.loads((result.models[t].path / MARKER_NAME).read_text())
        assert meta["n_records"] == len(result.pools[t]) and meta["round"] == t
    # K-Center oracle: round 0's picks are the farthest-first picks in M_0's embedding space
    emb0 = embedder(result.models[0], records)
    pool = list(result.pools[0])
    for pick in result.new_indices[0]:
        cand = np.setdiff1d(np.arange(len(records)), pool)
        d = np.min(np.linalg.norm(emb0[cand, None, :] - emb0[None, pool, :], axis=-1), axis=1)
        assert pick == cand[np.argmax(d)]
        pool.append(pick)
    assert all(np.isfinite(row["vendi"]) for row in result.metrics[:-1])
    assert result.metrics[-1]["vendi"] is None  # the final round selects nothing and is not embedded

    # resuming a finished run trains nothing again and gives the same pools
    def fail(*a, **k):
        raise AssertionError("retrained")

    trainer2 = HFTrainer(
        base, lora=True, epochs=1, batch_size=8, per_device_batch_size=8, lr=1e-3, progress=False
    )
    trainer2._train = fail  # type: ignore[method-assign]
    again = EvolutionLoop(
        records,
        trainer=trainer2,
        embedder=embedder,
        sampler="kcenter",
        init_size=4,
        k=4,
        rounds=2,
        seed=0,
        run_dir=tmp_path / "run",
        progress=False,
    ).run()
    for a, b in zip(result.pools, again.pools):
        np.testing.assert_array_equal(a, b)


def test_margin_loop_with_scorer(base, tmp_path):
    records = make_records(24, seed=1)
    trainer = HFTrainer(base, lora=True, epochs=1, batch_size=8, per_device_batch_size=8, progress=False)
    scorer = HFScorer(progress=False)
    result = EvolutionLoop(
        records,
        trainer=trainer,
        scorer=scorer,
        sampler="margin",
        init_size=4,
        k=3,
        rounds=1,
        seed=2,
        run_dir=tmp_path / "run",
        progress=False,
    ).run()
    assert [len(p) for p in result.pools] == [4, 7]
    margin = scorer(result.models[0], records)["margin"]
    cand = np.setdiff1d(np.arange(24), result.pools[0])
    expected = cand[np.argsort(margin[cand], kind="stable")[:3]]
    assert sorted(result.new_indices[0].tolist()) == sorted(expected.tolist())
