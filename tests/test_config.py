"""Tests of diverseevol.config: parsing, validation messages, YAML and TOML files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from diverseevol.config import RunConfig, load_config, parse_config
from diverseevol.errors import ConfigError

MINIMAL = {"run_dir": "runs/x", "data": {"path": "data.jsonl", "embeddings": "emb.npy"}}


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    cfg = parse_config(MINIMAL, base_dir=tmp_path)
    assert isinstance(cfg, RunConfig)
    assert cfg.run_dir == tmp_path / "runs/x"
    assert cfg.data.path == tmp_path / "data.jsonl"
    assert cfg.data.embeddings == tmp_path / "emb.npy"
    assert (cfg.budget.init_size, cfg.budget.k, cfg.budget.rounds, cfg.budget.mode) == (100, 100, 10, "iterative")
    assert cfg.sampler.name == "kcenter" and cfg.sampler.params == {}
    assert cfg.model is None and cfg.judge is None and cfg.seed == 0


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    cfg = parse_config({"run_dir": str(tmp_path / "r"), "data": {"path": "/abs/d.jsonl", "embeddings": "e.npy"}},
                       base_dir="/elsewhere")
    assert cfg.run_dir == tmp_path / "r"
    assert cfg.data.path == Path("/abs/d.jsonl")


def test_sampler_may_be_a_bare_name() -> None:
    cfg = parse_config({**MINIMAL, "sampler": "random"})
    assert cfg.sampler.name == "random"


def test_sampler_spec_and_structured_keys_are_one_sampler(tmp_path: Path) -> None:
    from diverseevol.samplers.spec import SamplerSpec

    want = SamplerSpec("kcenter", {"metric": "cosine"}, transform="normalize")
    forms = [
        "kcenter:transform=normalize,metric=cosine",  # the section as one string
        {"spec": "kcenter:metric=cosine,transform=normalize"},
        {"name": "kcenter", "params": {"metric": "cosine", "transform": "normalize"}},
        {"spec": "kcenter:transform=normalize,metric=cosine", "name": "kcenter"},  # agreeing keys are fine
    ]
    for form in forms:
        cfg = parse_config({**MINIMAL, "sampler": form}, base_dir=tmp_path)
        assert cfg.sampler.to_spec() == want, form
        assert (cfg.sampler.name, cfg.sampler.params) == ("kcenter", {"metric": "cosine", "transform": "normalize"})
        stored = cfg.to_dict()["sampler"]  # what a run directory stores reads back as the same section
        assert parse_config({**MINIMAL, "sampler": stored}, base_dir=tmp_path).to_dict() == cfg.to_dict()
    from dataclasses import replace

    from diverseevol.config import build_sampler

    built = build_sampler(cfg)
    assert (built.metric, built.transform) == ("cosine", "normalize")
    # `diverseevol run --sampler NAME` replaces the name of a section however it was written
    other = replace(cfg.sampler, name="kcenter", params={"metric": "euclidean"})
    assert other.to_spec() == SamplerSpec("kcenter", {"metric": "euclidean"})


@pytest.mark.parametrize(
    "sampler, budget, fragment",
    [
        ("kcenter:transform=", {}, "c.toml: sampler.spec: Sampler spec 'kcenter:transform=': The value of 'transform' "
                                   "is empty"),
        ({"name": "kcenter", "params": {"transform": ""}}, {}, "c.toml: sampler.params: Sampler 'kcenter' has an "
                                                             "empty transform"),
        ({"spec": "kcenter:metric=cosine", "params": {"metric": "euclidean"}}, {},
         "says 'kcenter:metric=cosine' but sampler.name / sampler.params say 'kcenter:metric=euclidean'"),
        ({"spec": "random", "name": "kcenter"}, {}, "give the sampler once"),
        ("kcenter:mode=onetime", {}, "Did you mean 'one_time'?"),
        ("kcenter:mode=one_time", {"mode": "iterative"}, "mode=one_time disagrees with budget.mode = 'iterative'"),
        ({"spec": 3}, {}, "sampler.spec: expected a sampler spec"),
    ],
)
def test_bad_sampler_specs_name_the_key(sampler: object, budget: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**MINIMAL, "sampler": sampler, "budget": budget}, source="c.toml")
    assert fragment in str(info.value)


def test_a_spec_mode_sets_the_budget_mode() -> None:
    cfg = parse_config({**MINIMAL, "sampler": "kcenter:mode=one_time"})
    assert cfg.budget.mode == "one_time" and cfg.sampler.to_spec().mode == "one_time"
    agreed = parse_config({**MINIMAL, "sampler": "kcenter:mode=one_time", "budget": {"mode": "one_time"}})
    assert agreed.budget.mode == "one_time"
    stored = cfg.to_dict()
    assert parse_config({**MINIMAL, "sampler": stored["sampler"], "budget": stored["budget"]}).to_dict() == stored


def test_an_unknown_sampler_parameter_is_named_with_a_close_match(tmp_path: Path) -> None:
    from diverseevol.config import build_sampler

    cfg = parse_config({**MINIMAL, "sampler": "kcenter:metrik=cosine"}, source="c.toml")
    with pytest.raises(ConfigError, match=r"c.toml: sampler.spec: .*Did you mean 'metric' \(not 'metrik'\)"):
        build_sampler(cfg)


@pytest.mark.parametrize(
    "mapping, fragment",
    [
        ({**MINIMAL, "data": {"path": "d", "embeddings": "e", "limt": 3}}, "data.limt: unknown key. Did you mean 'data.limit'?"),
        ({**MINIMAL, "budjet": {}}, "budjet: unknown key. Did you mean 'budget'?"),
        ({**MINIMAL, "budget": {"k": "ten"}}, "budget.k: expected an integer, got str 'ten'"),
        ({**MINIMAL, "budget": {"k": True}}, "budget.k: expected an integer, got bool True"),
        ({**MINIMAL, "budget": {"rounds": 0}}, "budget.rounds: must be >= 1, got 0"),
        ({**MINIMAL, "budget": {"mode": "one-time"}}, "Did you mean 'one_time'?"),
        ({"data": {"path": "d", "embeddings": "e"}}, "run_dir: missing required key"),
        ({"run_dir": "r"}, "data: missing required key"),
        ({"run_dir": "r", "data": {"embeddings": "e"}}, "data.path: missing required key"),
        ({"run_dir": "r", "data": {"path": "d"}}, "give a `model` section"),
        ({**MINIMAL, "judge": {"type": "exact_match", "path": "t.jsonl"}}, "needs a `model` section"),
        ({**MINIMAL, "model": {"name_or_path": "m"}, "judge": {"type": "exactmatch", "path": "t"}},
         "Did you mean 'exact_match'?"),
        ({**MINIMAL, "seed": 1.5}, "seed: expected an integer, got float 1.5"),
        (["not", "a", "mapping"], "expected a mapping"),
    ],
)
def test_invalid_configs_name_the_key(mapping: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(mapping, source="cfg.yaml")  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("init_size", [0, -3])
def test_empty_initial_pool_is_refused_like_the_loop(init_size: int) -> None:
    # EvolutionLoop refuses init_size < 1 (M_0 is trained on P_0); the config must refuse it at parse time.
    with pytest.raises(ConfigError) as info:
        parse_config({**MINIMAL, "budget": {"init_size": init_size}}, source="cfg.yaml")
    message = str(info.value)
    assert f"cfg.yaml: budget.init_size: must be >= 1, got {init_size}" in message
    assert "P_0" in message


def test_smallest_initial_pool_is_accepted() -> None:
    assert parse_config({**MINIMAL, "budget": {"init_size": 1}}).budget.init_size == 1


def test_yaml_and_toml_give_the_same_config(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    (tmp_path / "c.yaml").write_text(textwrap.dedent("""
        run_dir: runs/a
        seed: 3
        data: {path: d.jsonl, embeddings: e.npy, limit: 50}
        sampler: {name: kcenter, params: {metric: cosine}}
        budget: {init_size: 10, k: 5, rounds: 2, mode: one_time}
    """))
    (tmp_path / "c.toml").write_text(textwrap.dedent("""
        run_dir = "runs/a"
        seed = 3
        [data]
        path = "d.jsonl"
        embeddings = "e.npy"
        limit = 50
        [sampler]
        name = "kcenter"
        params = { metric = "cosine" }
        [budget]
        init_size = 10
        k = 5
        rounds = 2
        mode = "one_time"
    """))
    a, b = load_config(tmp_path / "c.yaml"), load_config(tmp_path / "c.toml")
    assert a.to_dict() == b.to_dict()
    assert a.budget.mode == "one_time" and a.sampler.params == {"metric": "cosine"} and a.data.limit == 50
    assert a.run_dir == tmp_path / "runs/a"


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "c.ini").write_text("x=1")
    with pytest.raises(ConfigError, match="unsupported configuration format"):
        load_config(tmp_path / "c.ini")
    (tmp_path / "bad.toml").write_text("run_dir = [")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "empty.toml").write_text("")
    with pytest.raises(ConfigError, match="run_dir: missing required key"):
        load_config(tmp_path / "empty.toml")


def test_example_config_is_valid() -> None:
    pytest.importorskip("yaml")
    path = Path(__file__).parents[1] / "examples" / "config.yaml"
    if not path.exists():
        pytest.skip("examples/config.yaml not written yet")
    cfg = load_config(path)
    assert cfg.model is not None


def test_run_config_with_a_hugging_face_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """model + exact-match judge: trains the tiny LLaMA each round, judges it, resumes."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import json

    import torch

    from diverseevol.assemble_config import run_config
    from diverseevol.demo.tasks import make_suite
    from diverseevol.hf.tiny import save_tiny_model

    torch.set_num_threads(2)
    monkeypatch.setenv("DIVERSEEVOL_PROGRESS", "0")
    suite = make_suite(60, 1, seed=0)
    with (tmp_path / "train.jsonl").open("w") as fh:
        for r in suite.train:
            fh.write(json.dumps({"instruction": r.instruction, "input": r.input, "output": r.output}) + "\n")
    with (tmp_path / "test.jsonl").open("w") as fh:
        for r, g in zip(suite.test[:6], suite.test_groups[:6]):
            fh.write(json.dumps({"instruction": r.instruction, "input": r.input, "output": r.output, "task": g}) + "\n")
    save_tiny_model(tmp_path / "model", hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                    max_position_embeddings=512)
    (tmp_path / "c.toml").write_text(textwrap.dedent("""
        run_dir = "run"
        [data]
        path = "train.jsonl"
        [model]
        name_or_path = "model"
        trainer = { lora = false, epochs = 1, batch_size = 4, per_device_batch_size = 4, lr = 1e-3 }
        embedder = { batch_size = 16, progress = false }
        [sampler]
        name = "margin"
        [budget]
        init_size = 4
        k = 2
        rounds = 1
        [judge]
        type = "exact_match"
        path = "test.jsonl"
        group_field = "task"
        params = { normalize = "strip" }
        generation = { max_new_tokens = 4, progress = false }
    """))
    result = run_config(tmp_path / "c.toml", progress=False)
    assert [len(p) for p in result.pools] == [4, 6] and result.finished
    group_key = f"accuracy/{suite.test_groups[0]}"  # one per-family key of the demo suite's first test records
    assert all("accuracy" in row and group_key in row for row in result.metrics)
    again = run_config(tmp_path / "c.toml", progress=False)
    assert [p.tolist() for p in again.pools] == [p.tolist() for p in result.pools]
    # A misspelt trainer argument is named with the accepted ones.
    (tmp_path / "c.toml").write_text((tmp_path / "c.toml").read_text().replace("epochs = 1", "epoch = 1"))
    with pytest.raises(ConfigError, match=r"model.trainer.epoch: not an argument of HFTrainer. Did you mean 'epochs'"):
        run_config(tmp_path / "c.toml", overwrite=True)


FULL = {
    "run_dir": "runs/full",
    "seed": 4,
    "data": {"path": "d.jsonl", "limit": 7, "embeddings": "e.npy", "fields": "dolly"},
    "model": {"name_or_path": "hub-name", "trainer": {"epochs": 1}, "embedder": {"batch_size": 2},
              "scorer": {"batch_size": 3}},
    "sampler": {"name": "margin", "params": {"x": 1}},
    "budget": {"init_size": 3, "k": 2, "rounds": 5, "mode": "one_time"},
    "judge": {"type": "pairwise", "path": "vicuna.jsonl", "group_field": None, "benchmark": "vicuna",
              "references": "refs.jsonl", "params": {"model": "m"}, "generation": {"max_new_tokens": 4}},
}


def test_every_field_of_the_dataclasses_is_a_key_of_the_file(tmp_path: Path) -> None:
    # to_dict() writes every dataclass field; parsing it again must accept each one and give the same config.
    cfg = parse_config(FULL, base_dir=tmp_path)
    again = parse_config(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()
    assert again.judge is not None and again.judge.references == tmp_path / "refs.jsonl"
    assert cfg.model is not None and cfg.model.name_or_path == "hub-name"  # no such local path: kept as a name


@pytest.mark.parametrize(
    "section, allowed",
    [
        ("data", "path, limit, embeddings, fields, format, file_type, columns, tags, meta_fields, encoding, "
                 "on_duplicates, duplicate_keys, dataset_info, dataset"),  # the data keys load_instructions takes (issue 21)
        ("model", "name_or_path, trainer, embedder, scorer"),
        ("sampler", "name, params, spec"),
        ("budget", "init_size, k, rounds, mode"),
        ("judge", "type, path, group_field, benchmark, references, params, generation"),
    ],
)
def test_unknown_key_lists_the_section_keys(section: str, allowed: str) -> None:
    mapping = {key: dict(value) if isinstance(value, dict) else value for key, value in FULL.items()}
    mapping[section]["zzz"] = 1
    with pytest.raises(ConfigError) as info:
        parse_config(mapping, source="c.toml")
    assert str(info.value) == f"c.toml: {section}.zzz: unknown key. Allowed here: {allowed}."


def test_model_path_is_resolved_when_it_exists(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    cfg = parse_config({**MINIMAL, "model": {"name_or_path": "local"}}, base_dir=tmp_path)
    assert cfg.model is not None and cfg.model.name_or_path == str(tmp_path / "local")


def test_sampler_needing_scores_without_a_model_is_refused(tmp_path: Path) -> None:
    import json

    import numpy as np

    from diverseevol.assemble_config import build_judge, build_loop

    with (tmp_path / "d.jsonl").open("w") as fh:
        for i in range(6):
            fh.write(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + "\n")
    np.save(tmp_path / "e.npy", np.zeros((6, 2), dtype=np.float32))
    cfg = parse_config({"run_dir": "r", "data": {"path": "d.jsonl", "embeddings": "e.npy"}, "sampler": "margin"},
                       base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"sampler 'margin' needs model scores \(scores:margin\); add a `model`"):
        build_loop(cfg)
    with pytest.raises(ConfigError, match="no `judge` section"):
        build_judge(cfg)
