"""Embed once per round: a loop round that needs embeddings and scores runs the model over Z once.

Forward calls of the tiny HF model's transformer body are counted with a forward hook (the rows
it saw per round); the signals the loop stored are checked against separate HFEmbedder and
HFScorer passes over the same round's model.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hf_fixtures import word_records

from diverseevol import EvolutionLoop
from diverseevol.data import InstructionRecord
from diverseevol.hf import HFEmbedder, HFScorer, ModelHandle
from diverseevol.hf.tiny import build_char_tokenizer, build_tiny_llama

torch.set_num_threads(2)

N = 24
ROUNDS = 2


def make_records(n: int = N) -> list[InstructionRecord]:
    words = ["add", "list", "poem", "why", "sum", "sky", "blue", "code", "tree", "sort"]
    return word_records(n, seed=3, words=words, instruction_words=(1, 6), response_words=(1, 8), sep=" ")


class CountingTrainer:
    """Returns a fresh tiny model per round (seeded by the round) whose body counts the rows it runs."""

    def __init__(self) -> None:
        self.tokenizer = build_char_tokenizer()
        self.rows: Counter[int] = Counter()  # round -> rows through the transformer body
        self.calls: Counter[int] = Counter()  # round -> forward calls of the body
        self.models: dict[int, ModelHandle] = {}

    def __call__(self, records, round, out_dir: Path):
        model = build_tiny_llama(self.tokenizer, seed=round)

        def count(module, args, kwargs, output, t=round):
            ids = kwargs.get("input_ids", args[0] if args else None)
            self.rows[t] += int(ids.shape[0])
            self.calls[t] += 1

        model.model.register_forward_hook(count, with_kwargs=True)
        self.models[round] = ModelHandle(model=model, tokenizer=self.tokenizer)
        return self.models[round]


def run_loop(
    tmp_path: Path,
    scorer_kwargs: dict,
    *,
    embedder: HFEmbedder | None = None,
    scorer: HFScorer | None = None,
    cache_embeddings: bool = True,
) -> tuple[CountingTrainer, Path]:
    """Margin sampling over ``make_records()`` with Vendi on (embeddings every round) and a counting trainer."""
    trainer = CountingTrainer()
    loop = EvolutionLoop(
        make_records(),
        trainer=trainer,
        embedder=HFEmbedder(batch_size=4, progress=False) if embedder is None else embedder,
        scorer=HFScorer(progress=False, **scorer_kwargs) if scorer is None else scorer,
        sampler="margin",
        vendi=True,  # embeddings every round, for the Vendi score of the pool
        init_size=4,
        k=4,
        rounds=ROUNDS,
        seed=0,
        run_dir=tmp_path / "run",
        cache_embeddings=cache_embeddings,
        progress=False,
    )
    result = loop.run()
    assert result.finished
    return trainer, tmp_path / "run"


def test_margin_with_embeddings_runs_one_pass_per_round(tmp_path):
    trainer, run_dir = run_loop(tmp_path, {})
    records = make_records()
    for t in range(ROUNDS):  # rounds that select: embeddings (Vendi) and margin scores
        assert trainer.rows[t] == N, f"round {t}: {trainer.rows[t]} rows through the model for {N} records"
        calls_before = trainer.calls[t]
        handle = trainer.models[t]
        emb = HFEmbedder(progress=False)(handle, records)
        scores = HFScorer(progress=False)(handle, records)
        assert trainer.calls[t] > calls_before  # the oracle passes are counted too: the hook is live
        stored = np.load(run_dir / "rounds" / f"round_{t:03d}" / "embeddings.npy")
        np.testing.assert_allclose(stored, emb, rtol=1e-5, atol=1e-6)
        margin = np.load(run_dir / "rounds" / f"round_{t:03d}" / "scores" / "margin.npy")
        np.testing.assert_allclose(margin, scores["margin"], rtol=1e-5, atol=1e-8)


def test_scorer_that_truncates_differently_gets_its_own_pass(tmp_path):
    # control: the counter sees two passes when the scorer's scores cannot come from the embedder's pass
    trainer, _ = run_loop(tmp_path, {"max_length": 300})
    for t in range(ROUNDS):
        assert trainer.rows[t] == 2 * N


def test_scorer_built_on_its_embedder_runs_one_pass(tmp_path):
    embedder = HFEmbedder(batch_size=4, scores=True, progress=False)
    trainer, _ = run_loop(
        tmp_path, {}, embedder=embedder, scorer=HFScorer(embedder=embedder, progress=False), cache_embeddings=False
    )
    for t in range(ROUNDS):
        assert trainer.rows[t] == N


def test_shares_pass_with():
    emb = HFEmbedder()
    assert HFScorer().shares_pass_with(emb)
    assert HFScorer(batch_size=3).shares_pass_with(emb)  # batching does not change scores
    assert not HFScorer(max_length=100).shares_pass_with(emb)
    assert not HFScorer(template="chat").shares_pass_with(emb)
    assert not HFScorer(tokenizer=build_char_tokenizer()).shares_pass_with(emb)
    assert not HFScorer().shares_pass_with(lambda model, records: None)
    short = HFEmbedder(max_length=100)
    assert HFScorer(embedder=short).shares_pass_with(short)  # its own embedder's pass, as before
