"""Tests of diverseevol.assemble: parts, judges and loops built from settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import loop_fakes as fakes
from diverseevol.assemble import (
    FixedEmbedder,
    LoopParts,
    assemble_loop,
    base_model_arguments,
    build_exact_match_judge,
    construct,
    fixed_embedding_parts,
)
from diverseevol.data import InstructionRecord, format_prompt
from diverseevol.errors import ConfigError
from diverseevol.run import EvolutionLoop


def _target(alpha: int = 1, *, beta: str = "x") -> tuple[int, str]:
    return alpha, beta


def _open(**kwargs: object) -> dict[str, object]:
    return dict(kwargs)


def test_construct_names_a_misspelt_argument_and_lists_the_accepted_ones() -> None:
    assert construct(_target, {"beta": "y"}, "section", 2) == (2, "y")
    with pytest.raises(ConfigError) as info:
        construct(_target, {"bta": "y"}, "model.trainer")
    assert str(info.value) == "model.trainer.bta: not an argument of _target. Did you mean 'beta'? Accepted: alpha, beta."
    assert construct(_open, {"anything": 1}, "x") == {"anything": 1}  # **kwargs takes every key


def test_base_model_arguments() -> None:
    assert base_model_arguments("models/llama", cache_dir="/c") == {"base_model": "models/llama"}
    assert base_model_arguments(Path("m/q4.gguf"), cache_dir=Path("/c")) == {"gguf_file": "m/q4.gguf", "cache_dir": "/c"}
    assert base_model_arguments("m/q4.gguf") == {"gguf_file": "m/q4.gguf"}


def test_fixed_embedding_parts(tmp_path: Path) -> None:
    emb = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.save(tmp_path / "e.npy", emb)
    parts = fixed_embedding_parts(tmp_path / "e.npy", 6)
    assert parts.scorer is None and parts.trainer([], 0, tmp_path) is None
    np.testing.assert_array_equal(parts.embedder(None, []), emb)
    with pytest.raises(ConfigError, match=r"has shape \(6, 2\), expected \(5, d\)"):
        FixedEmbedder(tmp_path / "e.npy", 5)
    with pytest.raises(FileNotFoundError, match="data.embeddings file"):
        fixed_embedding_parts(tmp_path / "none.npy", 6)


def test_assemble_loop_wires_parts_budget_and_sampler_like_a_direct_loop(tmp_path: Path) -> None:
    records = fakes.make_records()
    common = dict(sampler="kcenter", sampler_params={"metric": "cosine"}, init_size=5, k=4, rounds=2,
                  mode="one_time", seed=3, progress=False)
    parts = LoopParts(fakes.FakeTrainer(), fakes.FakeEmbedder(), fakes.FakeScorer())
    judge = fakes.FakeJudge()
    got = assemble_loop(records, parts, judge=judge, run_dir=tmp_path / "a", tags={"who": "test"}, **common).run()
    direct = EvolutionLoop(records, trainer=fakes.FakeTrainer(), embedder=fakes.FakeEmbedder(),
                           scorer=fakes.FakeScorer(), judge=fakes.FakeJudge(), run_dir=tmp_path / "b",
                           **common).run()
    assert [p.tolist() for p in got.pools] == [p.tolist() for p in direct.pools]
    assert [len(p) for p in got.pools] == [5, 9, 13]
    assert judge.calls == [0, 1, 2] and parts.trainer.calls == [0, 1, 2]


def test_exact_match_judge_gets_alpaca_prompts_and_reference_outputs() -> None:
    tests = [InstructionRecord("Add", "2+3", "5"), InstructionRecord("Say hi", "", "hi")]
    seen: list[list[str]] = []

    def generate(model: object, prompts: list[str]) -> list[str]:
        seen.append(list(prompts))
        return ["5", "hello"]

    judge = build_exact_match_judge(tests, generate, groups=["math", "chat"], params={"normalize": "strip"})
    metrics = judge(None, 0)
    assert seen == [[format_prompt(r) for r in tests]]
    assert metrics["accuracy"] == pytest.approx(50.0)
    assert metrics["accuracy/math"] == pytest.approx(100.0) and metrics["accuracy/chat"] == pytest.approx(0.0)
    with pytest.raises(ConfigError, match="judge.params.normalise: not an argument of ExactMatchJudge"):
        build_exact_match_judge(tests, generate, params={"normalise": "strip"})


def test_hf_parts_from_settings() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from diverseevol.assemble import build_hf_parts

    parts = build_hf_parts("/models/base", scores=True, seed=3, progress=False, trainer={"epochs": 1},
                           embedder={"batch_size": 4}, scorer={"batch_size": 2})
    assert parts.trainer.seed == 3 and parts.trainer.epochs == 1
    assert parts.embedder.scores and parts.embedder.batch_size == 4
    assert parts.scorer.embedder is parts.embedder and parts.scorer.batch_size == 2
    assert build_hf_parts("/m", scores=False, seed=3, trainer={"seed": 9}).trainer.seed == 9  # settings win
    assert build_hf_parts("/m", scores=False).scorer is None
    with pytest.raises(ConfigError, match=r"DemoSettings.trainer.epoch: not an argument of HFTrainer. Did you mean 'epochs'"):
        build_hf_parts("/m", scores=False, trainer={"epoch": 1}, where="DemoSettings")
