"""Tests of the demo: the synthetic task suite's properties and a tiny end-to-end run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from diverseevol.demo.tasks import TASK_FAMILIES, make_suite, task_coverage, task_frequencies
from diverseevol.errors import UnknownSamplerError, ValidationError

_VOWELS = "aeiou"


def _oracle(name: str, x: str, y: str) -> bool:
    try:
        return _check(name, x, y)
    except (ValueError, KeyError, IndexError, TypeError):
        return False


def _check(name: str, x: str, y: str) -> bool:
    """An independent check of answer ``y`` to input ``x`` (written without the suite's solvers)."""
    if name == "add":
        a, b = x.split("+")
        return y == str(int(a) + int(b))
    if name == "subtract":
        a, b = x.split("-")
        return int(a) >= int(b) and int(y) + int(b) == int(a)
    if name == "larger":
        a, b = (int(v) for v in x.split(" "))
        return int(y) in (a, b) and int(y) >= a and int(y) >= b
    if name == "parity":
        return y == ("odd" if int(x) & 1 else "even")
    if name == "reverse":
        return len(y) == len(x) and all(y[i] == x[len(x) - 1 - i] for i in range(len(x)))
    if name == "uppercase":
        return y.lower() == x and y.isupper()
    if name == "capitalize":
        return y[0] == x[0].upper() and y[1:] == x[1:]
    if name == "middle_letter":
        return len(x) % 2 == 1 and y == x[(len(x) - 1) // 2]
    if name == "swap_ends":
        return len(y) == len(x) and y[0] == x[-1] and y[-1] == x[0] and y[1:-1] == x[1:-1]
    if name == "remove_vowels":
        return re.sub("[aeiou]", "", x) == y
    if name == "first_letter":
        return x.startswith(y) and len(y) == 1
    if name == "last_letter":
        return x.endswith(y) and len(y) == 1
    if name == "drop_first":
        return len(y) == len(x) - 1 and x.endswith(y)
    if name == "drop_last":
        return len(y) == len(x) - 1 and x.startswith(y)
    if name == "rotate":
        return len(y) == len(x) and y[-1] == x[0] and y[:-1] == x[1:]
    if name == "repeat_twice":
        return len(y) == 2 * len(x) and y[: len(x)] == x == y[len(x):]
    if name == "double_letters":
        return y[::2] == x and y[1::2] == x
    if name == "next_letters":
        return len(y) == len(x) and all((ord(b) - ord(a)) % 26 == 1 for a, b in zip(x, y))
    if name == "count_vowels":
        return int(y) == len(re.findall("[aeiou]", x))
    if name == "dashes":
        return y.replace("-", "") == x and len(y) == 2 * len(x) - 1
    raise AssertionError(f"no oracle for task family {name!r}")


def test_there_are_15_to_25_families_of_several_kinds() -> None:
    assert 15 <= len(TASK_FAMILIES) <= 25
    assert len({f.name for f in TASK_FAMILIES}) == len(TASK_FAMILIES)
    assert len({f.instruction for f in TASK_FAMILIES}) == len(TASK_FAMILIES)
    # Every family is a rule (no lookup tables a model could only memorise).
    assert {f.kind for f in TASK_FAMILIES} == {"string", "arithmetic", "counting", "formatting"}


def test_suite_is_deterministic_per_seed() -> None:
    a, b, c = make_suite(500, 3, seed=7), make_suite(500, 3, seed=7), make_suite(500, 3, seed=8)
    assert a.train == b.train and a.test == b.test
    np.testing.assert_array_equal(a.train_task, b.train_task)
    assert a.train != c.train


def test_every_answer_is_verified_by_an_independent_oracle() -> None:
    suite = make_suite(1500, 5, seed=3)
    for recs, tasks in ((suite.train, suite.train_task), (suite.test, suite.test_task)):
        for rec, t in zip(recs, tasks):
            fam = suite.families[int(t)]
            assert rec.instruction == fam.instruction
            assert _oracle(fam.name, rec.input, rec.output), (fam.name, rec)
            assert 1 <= len(rec.output) <= 24 and 1 <= len(rec.input) <= 24
    # The oracles can fail: a wrong answer is rejected for every family.
    for fam in TASK_FAMILIES:
        x = fam.make_input(np.random.default_rng(0))
        assert not _oracle(fam.name, x, fam.solve(x) + "x"), fam.name


def test_training_frequencies_are_zipf_skewed() -> None:
    suite = make_suite(1200, 5, seed=0)
    counts = suite.train_counts()
    assert counts.sum() == 1200 and counts.min() >= 3
    assert counts[0] > 30 * counts[-1]  # a few common tasks, a long tail of rare ones
    assert np.all(np.diff(counts) <= 1)  # non-increasing with the Zipf rank (up to rounding)
    shares = task_frequencies(20, 1.3)
    np.testing.assert_allclose(shares.sum(), 1.0)
    np.testing.assert_allclose(shares[0] / shares[1], 2 ** 1.3)
    np.testing.assert_allclose(task_frequencies(4, 0.0), np.full(4, 0.25))


def test_test_set_is_balanced_and_held_out() -> None:
    suite = make_suite(1200, 6, seed=1)
    np.testing.assert_array_equal(np.bincount(suite.test_task), np.full(len(TASK_FAMILIES), 6))
    train_keys = {(r.instruction, r.input) for r in suite.train}
    for rec in suite.test:  # every family is a rule: the test questions are new inputs
        assert (rec.instruction, rec.input) not in train_keys
    # Records are unique within the training set.
    assert len(train_keys) == len(suite.train)


def test_coverage_counts_families_in_a_pool() -> None:
    suite = make_suite(400, 1, seed=0)
    first_of_each = [int(np.flatnonzero(suite.train_task == t)[0]) for t in range(5)]
    assert task_coverage(suite.train_task, first_of_each) == 5
    assert task_coverage(suite.train_task, first_of_each * 3) == 5
    assert task_coverage(suite.train_task, []) == 0
    assert task_coverage(suite.train_task, np.arange(400)) == 20


def test_invalid_sizes_raise() -> None:
    with pytest.raises(ValidationError, match="too small"):
        make_suite(10, 1)
    with pytest.raises(ValidationError, match="n_test_per_task"):
        make_suite(100, 0)
    with pytest.raises(ValidationError, match="exponent"):
        task_frequencies(5, -1.0)


# --------------------------------------------------------------------------------------------
# end to end (needs the hf extra)
# --------------------------------------------------------------------------------------------
@pytest.fixture
def _hf() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")


def _tiny_run(tmp_path: Path, out: str, **overrides: object) -> object:
    import torch

    from diverseevol.demo.run import DemoSettings, run_demo

    torch.set_num_threads(2)
    overrides = {"samplers": ("kcenter", "random"), "rounds": 1, **overrides}
    settings = DemoSettings.preset("tiny", tiny=True, **overrides)
    messages: list[str] = []
    result = run_demo(settings, tmp_path / out, cache_dir=tmp_path / "cache", plots=False, progress=False,
                      echo=messages.append)
    result.messages = messages  # type: ignore[attr-defined]
    return result


def test_tiny_demo_end_to_end(_hf: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIVERSEEVOL_PROGRESS", "0")
    result = _tiny_run(tmp_path, "demo")
    settings = result.settings
    sizes = [settings.init_size + t * settings.k for t in range(settings.rounds + 1)]
    rows = [r for r in result.rows if r["sampler"] in ("kcenter", "random")]
    assert [(r["sampler"], r["seed"], r["pool_size"]) for r in rows] == [
        (s, 0, n) for s in ("kcenter", "random") for n in sizes]
    for r in rows:
        assert 0.0 <= r["accuracy"] <= 100.0
        assert 1 <= r["coverage"] <= 20
        assert r["vendi"] >= 1.0 - 1e-6
        assert np.isfinite(r["heldout_loss"]) and r["heldout_loss"] > 0
        # The macro average is the mean of the per-family values.
        fam = r["per_family"]
        assert len(fam) == 20
        np.testing.assert_allclose(r["heldout_loss"], np.mean([v["heldout_loss"] for v in fam.values()]))
        np.testing.assert_allclose(r["accuracy"], np.mean([v["accuracy"] for v in fam.values()]))
    # The full-data model and the untrained base: one reference row each, all of Z / nothing.
    full = [r for r in result.reference_rows if r["sampler"] == "full"]
    untrained = [r for r in result.reference_rows if r["sampler"] == "untrained"]
    assert [(r["pool_size"], r["coverage"]) for r in full] == [(settings.n_train, 20)]
    assert [(r["pool_size"], r["coverage"]) for r in untrained] == [(0, 0)]
    # Same seed, same P_0, same training: round 0 is identical for both samplers.
    r0 = {r["sampler"]: r for r in rows if r["round"] == 0}
    for key in ("coverage", "accuracy", "heldout_loss", "vendi"):
        assert r0["kcenter"][key] == r0["random"][key], key
    assert "Task coverage" in result.table_markdown and "kcenter" in result.table_markdown
    assert "Held-out reference loss" in result.table_markdown
    assert "K-Center minus random" in result.table_markdown
    saved = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(result.rows))
    assert saved["reference_rows"] == json.loads(json.dumps(result.reference_rows))
    assert saved["summary"] == json.loads(json.dumps(result.summary))
    # The bakeoff command's schema: rows with run_dir (loadable), paired, an empty heldout_idx.
    assert saved["heldout_idx"] == []
    assert {r["run_dir"] for r in rows} == {"seed_0/kcenter", "seed_0/random"}
    from diverseevol import EvolutionResult

    loaded = EvolutionResult.load(tmp_path / "demo" / "seed_0" / "kcenter")
    assert [len(p) for p in loaded.pools] == sizes
    assert saved["paired"] == json.loads(json.dumps(result.paired))
    assert {(p["sampler"], p["baseline"], p["metric"]) for p in saved["paired"]} == {
        ("kcenter", "random", "accuracy"), ("kcenter", "random", "heldout_loss"), ("kcenter", "random", "mean_words")}
    for p in saved["paired"]:
        if p["metric"] in ("accuracy", "heldout_loss"):
            by = {(r["sampler"], r["pool_size"]): r[p["metric"]] for r in rows}
            assert p["n"] == 1 and p["low"] is None
            np.testing.assert_allclose(p["mean"], by[("kcenter", p["pool_size"])] - by[("random", p["pool_size"])])
    # Family labels reach the loop (label_counts over the 20 families add up to the pool).
    for r in rows:
        assert sum(r["label_counts"].values()) == r["pool_size"]
    # Round 0 is computed once per seed and shared by both recipes.
    assert (tmp_path / "demo" / "seed_0" / "round0" / "trained.json").is_file()
    assert (tmp_path / "demo" / "seed_0" / "kcenter" / "config.json").is_file()
    assert any("task suite" in m for m in result.messages)
    timing = json.loads((tmp_path / "demo" / "timing.json").read_text())
    assert timing["cpu_time_s"] > 0 and timing["torch_threads"] == 2

    # A second call resumes the finished run directories and measures the same thing.
    again = _tiny_run(tmp_path, "demo")
    assert [(r["sampler"], r["pool_size"], r["coverage"], r["accuracy"], r["heldout_loss"]) for r in again.rows] == [
        (r["sampler"], r["pool_size"], r["coverage"], r["accuracy"], r["heldout_loss"]) for r in result.rows
    ]


def test_two_runs_of_the_same_seeds_write_identical_results(_hf: None, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIVERSEEVOL_PROGRESS", "0")
    a = _tiny_run(tmp_path, "a", seeds=(3, 4), full=False)
    b = _tiny_run(tmp_path, "b", seeds=(3, 4), full=False)
    text = (tmp_path / "a" / "results.json").read_bytes()
    assert text == (tmp_path / "b" / "results.json").read_bytes()
    assert {r["seed"] for r in a.rows} == {3, 4}
    # Two seeds: the summary has an interval for each sampler and pool size, and the paired difference.
    entry = next(e for e in a.summary["by_sampler"] if e["sampler"] == "kcenter")
    assert entry["n_seeds"] == 2 and entry["accuracy"]["low"] is not None
    diffs = a.summary["kcenter_minus_random"]
    assert [d["pool_size"] for d in diffs] == [8, 16, "selected"]
    assert b.summary == a.summary


def test_a_transform_suffix_reaches_the_sampler(_hf: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIVERSEEVOL_PROGRESS", "0")
    result = _tiny_run(tmp_path, "t", samplers=("kcenter", "kcenter@normalize"), full=False)
    params = {}
    for name in ("kcenter", "kcenter@normalize"):
        from diverseevol.bakeoff import recipe_dir_name

        config = json.loads((tmp_path / "t" / "seed_0" / recipe_dir_name(name) / "config.json").read_text())["config"]
        assert config["sampler"] == "kcenter"
        params[name] = config["sampler_params"]
    assert params["kcenter@normalize"].get("transform") == "normalize"
    assert "transform" not in params["kcenter"]
    assert {r["sampler"] for r in result.rows} == {"kcenter", "kcenter@normalize"}
    assert "kcenter@normalize" in result.table_markdown


def test_t_interval_matches_the_textbook_formula() -> None:
    from diverseevol.demo.run import t_interval

    x = [1.0, 2.0, 4.0]
    got = t_interval(x)
    # t_{0.975, 2} = 4.302652729911275; sd = sqrt(7/3).
    half = 4.302652729911275 * np.sqrt(7.0 / 3.0) / np.sqrt(3.0)
    assert got["n"] == 3
    np.testing.assert_allclose([got["mean"], got["low"], got["high"]], [7 / 3, 7 / 3 - half, 7 / 3 + half])
    assert t_interval([5.0]) == {"mean": 5.0, "low": None, "high": None, "n": 1}
    assert t_interval([])["mean"] is None


def test_kcenter_minus_random_is_paired_by_seed() -> None:
    from diverseevol.demo.run import summary_stats, t_interval

    rows = []
    for seed, (kc, rnd) in enumerate([(50.0, 40.0), (30.0, 35.0), (60.0, 41.0)]):
        for name, acc in (("kcenter", kc), ("random", rnd)):
            for size, bump in ((10, 0.0), (20, 5.0)):
                value = acc if size == 20 else 0.0
                rows.append({"sampler": name, "seed": seed, "pool_size": size, "accuracy": value + bump,
                             "heldout_loss": 1.0 - value / 100, "coverage": 1, "vendi": 1.0, "rare_accuracy": None})
    diffs = {d["pool_size"]: d for d in summary_stats(rows, ["kcenter", "random"])["kcenter_minus_random"]}
    expected = t_interval([10.0, -5.0, 19.0])
    expected_loss = t_interval([-0.10, 0.05, -0.19])
    for key in ("mean", "low", "high"):
        np.testing.assert_allclose(diffs[20]["accuracy"][key], expected[key])
        np.testing.assert_allclose(diffs[20]["heldout_loss"][key], expected_loss[key])
    assert diffs[10]["accuracy"]["mean"] == 0.0 and diffs[20]["n_seeds"] == 3
    np.testing.assert_allclose(diffs["selected"]["accuracy"]["mean"], expected["mean"])


def test_demo_sampler_names() -> None:
    from diverseevol.demo.run import DEFAULT_SAMPLERS, check_sampler_name

    assert check_sampler_name("kcenter_one_time") == ("kcenter", "one_time")
    assert check_sampler_name("margin") == ("margin", "iterative")
    # issue 21: the default one-time K-Center is written in the one sampler-spec syntax
    assert {"kcenter", "kcenter:mode=one_time", "random", "least_confidence", "margin"} <= set(DEFAULT_SAMPLERS)
    with pytest.raises(UnknownSamplerError, match="no_such_sampler"):
        check_sampler_name("no_such_sampler_one_time")


def test_demo_samplers_are_sampler_specs_and_old_spellings_warn() -> None:
    from diverseevol.demo.run import check_sampler_name

    assert check_sampler_name("kcenter:mode=one_time") == ("kcenter", "one_time")
    assert check_sampler_name("kcenter:mode=one_time,transform=whiten,metric=cosine") == ("kcenter", "one_time")
    for old, new in [("kcenter_one_time", "kcenter:mode=one_time"), ("kcenter@normalize", "kcenter:transform=normalize"),
                     ("kcenter_one_time@whiten", "kcenter:mode=one_time,transform=whiten")]:
        with pytest.warns(DeprecationWarning, match=f"write {new!r}"):
            check_sampler_name(old)
    with pytest.raises(ValidationError, match="value of 'transform' is empty"):
        check_sampler_name("kcenter:transform=")
    with pytest.raises(ValidationError, match=r"Did you mean 'metric' \(not 'metrik'\)"):
        check_sampler_name("kcenter:metrik=cosine")
    with pytest.raises(ValidationError, match="random.*does not accept"):
        check_sampler_name("random:transform=normalize")


def test_demo_sampler_names_take_an_embedding_transform() -> None:
    from diverseevol.demo.run import check_sampler_name, sampler_transform

    assert sampler_transform("kcenter@normalize") == ("kcenter", "normalize")
    assert sampler_transform("kcenter_one_time@center+normalize") == ("kcenter_one_time", "center+normalize")
    assert sampler_transform("random") == ("random", None)
    assert check_sampler_name("kcenter@normalize") == ("kcenter", "iterative")
    assert check_sampler_name("kcenter_one_time@whiten") == ("kcenter", "one_time")
    with pytest.raises(ValidationError, match="after '@'"):
        check_sampler_name("kcenter@")
    with pytest.raises(ValidationError):
        check_sampler_name("kcenter@no_such_transform")
    with pytest.raises(ValidationError):  # random takes no transform
        check_sampler_name("random@normalize")


def test_pretraining_corpus_has_no_skill_lines_with_empty_answers() -> None:
    from diverseevol.demo.model import PromptCodec, pretraining_corpus

    corpus = pretraining_corpus(2000, no_skill_share=0.25)
    none = [c for c in corpus if c[0] == -1]
    assert 400 < len(none) < 600
    for t, x, y, layout in corpus:
        if t == -1:  # no code in the head, at least one noise token, the empty answer
            assert y == "" and -2 not in layout and any(v >= 0 for v in layout)
        else:
            assert layout.count(-2) == 1 and y == TASK_FAMILIES[t].solve(x)
    codec = PromptCodec(TASK_FAMILIES)
    t, x, _, layout = none[0]
    head = codec.head(None, code=t, layout=layout)
    assert not any(codec.vocab[i].startswith("<skill") for i in head)
    assert all(c[0] >= 0 for c in pretraining_corpus(300))  # the default: none
    assert pretraining_corpus(2000, no_skill_share=0.25) == corpus  # deterministic


def test_cli_demo_passes_seeds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from diverseevol import cli
    from diverseevol.demo import run as demo_run

    seen = {}

    def fake_run_demo(settings: object, **kwargs: object) -> object:
        seen["settings"] = settings

        class R:
            table_markdown = ""
            wall_time_s = cpu_time_s = 0.0

        return R()

    monkeypatch.setattr(demo_run, "run_demo", fake_run_demo)
    assert cli.main(["demo", "--seeds", "101,102,103", "--samplers", "kcenter,kcenter:mode=one_time,random",
                     "--out", str(tmp_path), "--no-plots"]) == cli.EXIT_OK
    assert seen["settings"].all_seeds == (101, 102, 103)
    assert seen["settings"].samplers == ("kcenter", "kcenter:mode=one_time", "random")
    seen.clear()
    assert cli.main(["demo", "--samplers", "kcenter,kcenter:transform=normalize", "--out", str(tmp_path)]) == cli.EXIT_OK
    assert seen["settings"].samplers == ("kcenter", "kcenter:transform=normalize")
    seen.clear()
    assert cli.main(["demo", "--samplers", "random@normalize", "--out", str(tmp_path)]) != cli.EXIT_OK
    assert seen == {}
    for bad in ("1,x", "1,1", "-1"):
        assert cli.main(["demo", "--seeds", bad, "--out", str(tmp_path)]) == cli.EXIT_USAGE
    assert seen == {}


def test_cli_demo_takes_sampler_specs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from diverseevol import cli
    from diverseevol.demo import run as demo_run

    seen = {}

    def fake_run_demo(settings: object, **kwargs: object) -> object:
        seen["settings"] = settings

        class R:
            table_markdown = ""
            wall_time_s = cpu_time_s = 0.0

        return R()

    monkeypatch.setattr(demo_run, "run_demo", fake_run_demo)
    argv = ["demo", "--samplers", "kcenter,kcenter:mode=one_time,kcenter:transform=normalize", "--out", str(tmp_path)]
    assert cli.main(argv) == cli.EXIT_OK
    assert seen["settings"].samplers == ("kcenter", "kcenter:mode=one_time", "kcenter:transform=normalize")
    seen.clear()
    assert cli.main(["demo", "--samplers", "kcenter:transform=", "--out", str(tmp_path)]) != cli.EXIT_OK
    assert seen == {}


def test_demo_imports_only_public_names_of_the_hf_package() -> None:
    import ast

    folder = Path(__file__).parents[1] / "diverseevol" / "demo"
    private = []
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and "hf." in node.module \
                    and node.module.split("hf.", 1)[1].startswith("_"):
                private.append(f"{path.name}: {node.module}")
    assert private == []


def test_hf_exports_the_record_tokenisation_the_demo_uses(_hf: None) -> None:
    from diverseevol import hf
    from diverseevol.hf import _records

    assert hf.CausalLMCollator is _records.CausalLMCollator
    assert hf.tokenize_records is _records.tokenize_records
    assert hf.IGNORE_INDEX == -100


# --------------------------------------------------------------------------------------------
# the demo as a bake-off (issue 25 item 5) and honest plots (issue 24 item 3)
# --------------------------------------------------------------------------------------------
def test_default_recipes_are_the_papers_plus_the_literatures() -> None:
    from diverseevol.demo.run import DEFAULT_SAMPLERS, DemoSettings, baseline_of, recipe_settings

    assert DEFAULT_SAMPLERS == ("kcenter", "kcenter:mode=one_time", "random", "least_confidence", "margin",
                                "balanced_random", "kmeans_random", "kmq", "longest")
    settings = recipe_settings(DemoSettings.preset("tiny", seeds=(0, 1)))
    assert settings.baseline == "random" and settings.label_field == "family" and settings.seeds == (0, 1)
    assert settings.metrics == ("heldout_loss", "accuracy")
    # Without random, the first recipe is the baseline; one recipe alone runs (nothing is paired).
    assert baseline_of(("kcenter", "margin")) == "kcenter"
    alone = recipe_settings(DemoSettings.preset("tiny", samplers=("margin",)))
    assert alone.samplers == ("margin",) and alone.baseline == "margin"


def test_suite_records_carry_their_family_label() -> None:
    from diverseevol.demo.tasks import LABEL_FIELD, make_suite
    from diverseevol.samplers.record_signals import record_labels

    suite = make_suite(n_train=200, n_test_per_task=1, seed=5)
    labels = record_labels(suite.train, LABEL_FIELD)
    assert labels == [suite.families[t].name for t in suite.train_task]


def test_paired_table_verdicts_follow_the_adjusted_intervals() -> None:
    from diverseevol.bakeoff.stats import paired_differences
    from diverseevol.demo.stats import paired_table

    rows = []
    # Three seeds; a: accuracy +10, +12, +11 and loss -0.1, -0.12, -0.11 (ahead on both);
    # b: accuracy -1, +2, 0 (interval spans 0).
    for seed, (a_acc, b_acc, a_loss) in enumerate([(10.0, -1.0, -0.10), (12.0, 2.0, -0.12), (11.0, 0.0, -0.11)]):
        rows += [{"sampler": "random", "seed": seed, "pool_size": 40, "accuracy": 50.0, "heldout_loss": 1.0},
                 {"sampler": "a", "seed": seed, "pool_size": 40, "accuracy": 50.0 + a_acc, "heldout_loss": 1.0 + a_loss},
                 {"sampler": "b", "seed": seed, "pool_size": 40, "accuracy": 50.0 + b_acc, "heldout_loss": 1.0}]
    paired = paired_differences(rows, baseline="random", metrics=["accuracy", "heldout_loss"])
    lines = paired_table(paired, ["a", "random", "b"], "random")
    text = "\n".join(lines)
    a_line = next(line for line in lines if line.startswith("| a |"))
    b_line = next(line for line in lines if line.startswith("| b |"))
    # Hand computation: mean of (10, 12, 11) = 11; Bonferroni over 2 comparisons: t_{1-0.025/2, 2}.
    from scipy import stats

    half = stats.t.ppf(1 - 0.025 / 2, 2) * 1.0 / np.sqrt(3)
    assert f"+11.00 [{11 - half:+.2f}, {11 + half:+.2f}]" in a_line
    assert a_line.endswith("ahead on loss, ahead on accuracy |")
    assert b_line.endswith("not distinguishable |")
    assert "over 2 comparisons" in text and "final pool (40 records)" in text


def test_plot_titles_say_how_many_seeds_and_band_only_with_two() -> None:
    from diverseevol.demo.outputs import plot_title

    assert plot_title(1) == "one seed (no interval)"
    assert plot_title(5) == "mean over 5 seeds; shaded: 95% t-interval over seeds"
    assert "shaded" not in plot_title(1)


def test_a_far_reference_value_is_a_note_not_a_line() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diverseevol.demo.outputs import _reference_marks

    fig, ax = plt.subplots()
    ax.plot([20, 40], [1.0, 0.8])
    notes = _reference_marks(ax, [("full", "--", 0.75), ("untrained", ":", 14.0)], 0.8, 1.0)
    assert len(ax.lines) == 2  # the data and the full model's line; the untrained model is a note
    assert notes == ["untrained (mean): 14, off this axis"]
    assert ax.get_ylim()[1] < 2.0
    plt.close(fig)
