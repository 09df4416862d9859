"""Issue 25 item 2 in the loop: labels, lengths and the ``loss`` score reach the recipe samplers,
each computed only when the sampler requires it; one EvolutionLoop run per new sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from loop_fakes import FakeEmbedder, FakeScorer, FakeTrainer, base_features

from diverseevol import EvolutionLoop, register_sampler
from diverseevol.data import InstructionRecord
from diverseevol.errors import MissingSignalError, ValidationError
from diverseevol.samplers import Requirements, unregister_sampler

N = 80
CATEGORIES = ("open_qa", "brainstorming", "classification", "creative_writing", "summarization")


def _records(n: int = N, *, where: str = "meta") -> list[InstructionRecord]:
    """Record i: instruction "task i", a response of (7 * i) % 23 + 1 words, category i**2 % 5 (skewed)."""
    out = []
    for i in range(n):
        label = {"category": CATEGORIES[(i * i) % 5]}
        text = " ".join(["w"] * ((7 * i) % 23 + 1))
        out.append(InstructionRecord(f"task {i}", "", text, **({"meta": label} if where == "meta" else {"original": label})))
    return out


def _response_words(i: int) -> int:
    return (7 * i) % 23 + 1


class LossScorer(FakeScorer):
    """The fake scorer plus a per-record ``loss`` (distance of the record to the model's centre)."""

    def __call__(self, model, records):
        out = super().__call__(model, records)
        out["loss"] = np.log1p(np.linalg.norm(base_features(len(records)) - np.asarray(model["center"]), axis=1))
        return out


class TokenCountingScorer(LossScorer):
    """A scorer that counts tokens (here: characters of the response) and counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.length_calls: list[int] = []

    def record_lengths(self, model, records):
        self.length_calls.append(model["round"])
        return np.array([len(r.output) for r in records], dtype=float)


@pytest.fixture
def spy():
    """A registered sampler that records the context it was given (requires what the test sets)."""
    seen: list = []

    @register_sampler("context_spy", overwrite=True)
    class ContextSpy:
        requires = Requirements()

        def select(self, ctx, k):
            seen.append(ctx)
            return np.sort(ctx.candidate_idx)[:k]

    yield ContextSpy, seen
    unregister_sampler("context_spy")


def _loop(tmp_path: Path, sampler, **kw):
    parts = {"trainer": FakeTrainer(), "embedder": FakeEmbedder(), "scorer": LossScorer()}
    parts.update({k: kw.pop(k) for k in list(kw) if k in parts})
    args = {"init_size": 10, "k": 8, "rounds": 2, "seed": 3, "progress": False, "run_dir": tmp_path / "run",
            "sampler": sampler, **kw}
    loop = EvolutionLoop(_records(), **parts, **args)
    return loop, parts


# --------------------------------------------------------------------------------------------
# one run per new sampler
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sampler", "params"),
    [
        ("balanced_random", {}),
        ("kmeans_random", {}),
        ("kmq", {}),
        ("longest", {}),
        ("length_matched_random", {}),
        ("length_matched_random", {"match": "kmq"}),
        ("kcenter_length_debiased", {"transform": "normalize"}),
    ],
)
def test_every_recipe_runs_in_the_loop(tmp_path, sampler, params):
    loop, parts = _loop(tmp_path, sampler, sampler_params=params, label_field="category")
    result = loop.run()
    assert [len(p) for p in result.pools] == [10, 18, 26]
    final = result.pools[-1]
    assert np.unique(final).size == final.size
    # the scorer runs only for samplers that read a score, once per selecting round
    needs_loss = sampler == "kmq" or params.get("match") == "kmq"
    assert parts["scorer"].calls == ([0, 1] if needs_loss else [])
    again, _ = _loop(tmp_path / "again", sampler, sampler_params=params, label_field="category")
    assert [p.tolist() for p in again.run().pools] == [p.tolist() for p in result.pools]  # deterministic per seed


def test_balanced_random_in_the_loop_balances_every_round(tmp_path):
    loop, _ = _loop(tmp_path, "balanced_random", label_field="category", k=10)
    result = loop.run()
    labels = np.array([CATEGORIES[(i * i) % 5] for i in range(N)])
    for t in range(2):
        new = result.pools[t + 1][len(result.pools[t]):]
        cand = np.setdiff1d(np.arange(N), result.pools[t])
        sizes = {c: int((labels[cand] == c).sum()) for c in set(labels[cand])}
        counts = {c: int((labels[new] == c).sum()) for c in sizes}
        share = 10 // len(sizes)
        assert sum(counts.values()) == 10
        assert all(counts[c] == min(sizes[c], share) or counts[c] == share + 1 for c in sizes), (counts, sizes)


def test_longest_in_the_loop_uses_word_lengths_without_a_token_counter(tmp_path):
    loop, _ = _loop(tmp_path, "longest", scorer=None)
    result = loop.run()
    pool0 = result.pools[0]
    cand = [i for i in range(N) if i not in set(pool0.tolist())]
    want = sorted(cand, key=lambda i: (-_response_words(i), i))[:8]  # the rest of the record is the same length
    assert result.pools[1][10:].tolist() == want


def test_longest_in_the_loop_uses_the_scorers_token_counts(tmp_path):
    scorer = TokenCountingScorer()
    loop, _ = _loop(tmp_path, "longest", scorer=scorer)
    result = loop.run()
    assert scorer.length_calls == [0, 1] and scorer.calls == []  # lengths each selecting round, no scoring pass
    chars = [len(r.output) for r in _records()]
    cand = [i for i in range(N) if i not in set(result.pools[0].tolist())]
    assert result.pools[1][10:].tolist() == sorted(cand, key=lambda i: (-chars[i], i))[:8]


# --------------------------------------------------------------------------------------------
# each signal only when required
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("requires", "has_labels", "has_lengths"),
    [(Requirements(), False, False), (Requirements(labels=True), True, False),
     (Requirements(lengths=True), False, True), (Requirements(labels=True, lengths=True), True, True)],
)
def test_the_context_carries_labels_and_lengths_only_when_required(tmp_path, spy, monkeypatch, requires,
                                                                      has_labels, has_lengths):
    import diverseevol.samplers.record_signals as record_signals

    cls, seen = spy
    monkeypatch.setattr(cls, "requires", requires)
    counted = []
    real = record_signals.record_word_lengths
    monkeypatch.setattr(record_signals, "record_word_lengths", lambda recs: counted.append(1) or real(recs))
    scorer = LossScorer()
    EvolutionLoop(_records(), trainer=FakeTrainer(), scorer=scorer, sampler="context_spy", init_size=10, k=8,
                  rounds=2, progress=False, run_dir=tmp_path / "run", label_field="category").run()
    assert len(seen) == 2 and scorer.calls == []
    for ctx in seen:
        assert (ctx.labels is not None) == has_labels and (ctx.lengths is not None) == has_lengths
        assert ctx.embeddings is None and not ctx.scores
    assert len(counted) == (2 if has_lengths else 0)
    if has_labels:
        np.testing.assert_array_equal(seen[0].labels, [CATEGORIES[(i * i) % 5] for i in range(N)])
    if has_lengths:  # words of the Alpaca-rendered record: the template, "task i", the response
        words = np.array([_response_words(i) for i in range(N)])
        assert np.ptp(seen[0].lengths - words) == 0


def test_labels_come_from_the_source_object_too(tmp_path, spy, monkeypatch):
    cls, seen = spy
    monkeypatch.setattr(cls, "requires", Requirements(labels=True))
    EvolutionLoop(_records(where="original"), trainer=FakeTrainer(), sampler="context_spy", init_size=10, k=8,
                  rounds=1, progress=False, run_dir=tmp_path / "run", label_field="category").run()
    assert seen[0].labels[:3].tolist() == ["open_qa", "brainstorming", "summarization"]


def test_a_sampler_that_requires_labels_without_label_field_is_refused():
    with pytest.raises(MissingSignalError, match="'balanced_random' requires labels.*label_field="):
        EvolutionLoop(_records(), trainer=FakeTrainer(), sampler="balanced_random", init_size=10, k=8, rounds=1)


def test_a_record_without_the_label_field_is_named():
    records = _records()
    records[13] = InstructionRecord("task 13", "", "w", meta={"topic": "x"})
    with pytest.raises(ValidationError, match=r"Record 13 has no field 'category'.*'task 13'.*\['topic'\]"):
        EvolutionLoop(records, trainer=FakeTrainer(), sampler="balanced_random", init_size=10, k=8, rounds=1,
                      label_field="category")
    # without a sampler that requires labels the record only counts as unlabelled in the metrics
    EvolutionLoop(records, trainer=FakeTrainer(), sampler="random", init_size=10, k=8, rounds=1,
                  label_field="category")


def test_kmq_reads_each_rounds_loss(tmp_path, spy, monkeypatch):
    cls, seen = spy
    monkeypatch.setattr(cls, "requires", Requirements(scores=frozenset({"loss"})))
    scorer = LossScorer()
    EvolutionLoop(_records(), trainer=FakeTrainer(), scorer=scorer, sampler="context_spy", init_size=10, k=8,
                  rounds=2, progress=False, run_dir=tmp_path / "run").run()
    assert scorer.calls == [0, 1]
    assert not np.allclose(seen[0].scores["loss"], seen[1].scores["loss"])  # M_0 and M_1 see Z differently
    assert all(np.all(np.isfinite(ctx.scores["loss"])) for ctx in seen)


def test_token_lengths_need_the_model_on_resume(tmp_path):
    scorer = TokenCountingScorer()
    trainer = FakeTrainer()
    loop = EvolutionLoop(_records(), trainer=trainer, scorer=scorer, sampler="longest", init_size=10, k=8,
                         rounds=2, progress=False, run_dir=tmp_path / "run")
    first = loop.run()
    # forget round 1's selection: a resume must reload M_1 to count tokens again
    import shutil

    rounds = tmp_path / "run" / "rounds"
    (rounds / "round_001" / "selection.json").unlink()
    (rounds / "round_001" / "metrics.json").unlink()
    shutil.rmtree(rounds / "round_002")
    scorer2, trainer2 = TokenCountingScorer(), FakeTrainer()
    again = EvolutionLoop(_records(), trainer=trainer2, scorer=scorer2, sampler="longest", init_size=10, k=8,
                          rounds=2, progress=False, run_dir=tmp_path / "run").run()
    assert scorer2.length_calls == [1] and trainer2.loads[:1] == [1]
    assert [p.tolist() for p in again.pools] == [p.tolist() for p in first.pools]
