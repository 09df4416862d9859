"""Tests of the demo: the synthetic task suite's properties and a tiny end-to-end run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from diverseevol.demo.tasks import TASK_FAMILIES, make_suite, task_coverage, task_frequencies
from diverseevol.errors import ValidationError

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]


_CAPITALS = dict(France="Paris", Spain="Madrid", Italy="Rome", Japan="Tokyo", Egypt="Cairo", Peru="Lima",
                 Kenya="Nairobi", Chile="Santiago", Cuba="Havana", Greece="Athens", Norway="Oslo",
                 Sweden="Stockholm", Poland="Warsaw", Austria="Vienna", Ireland="Dublin", Portugal="Lisbon",
                 Russia="Moscow", China="Beijing", India="New Delhi", Iran="Tehran", Iraq="Baghdad",
                 Mexico="Mexico City", Canada="Ottawa", Brazil="Brasilia", Germany="Berlin", Finland="Helsinki",
                 Denmark="Copenhagen", Hungary="Budapest", Thailand="Bangkok", Vietnam="Hanoi", Ghana="Accra",
                 Nepal="Kathmandu")
_COLORS = dict(banana="yellow", grass="green", sky="blue", snow="white", coal="black", tomato="red",
               orange="orange", lemon="yellow", cherry="red", lime="green", milk="white", ink="black", blood="red",
               sea="blue", leaf="green", sun="yellow", chocolate="brown", pumpkin="orange", plum="purple",
               grape="purple", carrot="orange", salt="white", night="black", strawberry="red", frog="green",
               wood="brown", coffee="brown", lavender="purple", sapphire="blue", corn="yellow")
_ANTONYM_PAIRS = ("hot cold", "big small", "fast slow", "up down", "left right", "old new", "early late",
                  "light dark", "happy sad", "open closed", "full empty", "high low", "hard soft", "wet dry",
                  "long short", "rich poor", "strong weak", "thick thin", "loud quiet", "near far", "clean dirty",
                  "true false", "first last", "in out", "win lose", "buy sell", "push pull", "day night", "yes no",
                  "always never")
_OPPOSITES = dict(p.split() for p in _ANTONYM_PAIRS)


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
    if name == "multiply":
        a, b = x.split("*")
        return int(y) == int(a) * int(b) and 2 <= int(a) <= 9
    if name == "larger":
        a, b = (int(v) for v in x.split(" "))
        return int(y) in (a, b) and int(y) >= a and int(y) >= b
    if name == "parity":
        return y == ("odd" if int(x) & 1 else "even")
    if name == "reverse":
        return len(y) == len(x) and all(y[i] == x[len(x) - 1 - i] for i in range(len(x)))
    if name == "uppercase":
        return y.lower() == x and y.isupper()
    if name == "length":
        return int(y) == sum(1 for _ in x)
    if name == "remove_vowels":
        return re.sub("[aeiou]", "", x) == y
    if name == "first_letter":
        return x.startswith(y) and len(y) == 1
    if name == "last_letter":
        return x.endswith(y) and len(y) == 1
    if name == "repeat_twice":
        return len(y) == 2 * len(x) and y[: len(x)] == x == y[len(x):]
    if name == "count_vowels":
        return int(y) == len(re.findall("[aeiou]", x))
    if name == "dashes":
        return y.replace("-", "") == x and len(y) == 2 * len(x) - 1
    if name == "date":
        month, day = x.split(" ")
        d, m = y.split("/")
        return len(d) == len(m) == 2 and int(d) == int(day) and _MONTHS[int(m) - 1] == month
    if name == "initials":
        return y == "".join(w[0] for w in x.split()).upper()
    if name == "next_letter":
        return ord(y) - ord(x) == 1 and y.isalpha()
    if name == "capital":
        return _CAPITALS[x] == y
    if name == "opposite":
        return _OPPOSITES[x] == y
    if name == "color":
        return _COLORS[x] == y
    raise AssertionError(f"no oracle for task family {name!r}")


def test_there_are_15_to_25_families_of_several_kinds() -> None:
    assert 15 <= len(TASK_FAMILIES) <= 25
    assert len({f.name for f in TASK_FAMILIES}) == len(TASK_FAMILIES)
    assert len({f.instruction for f in TASK_FAMILIES}) == len(TASK_FAMILIES)
    assert {f.kind for f in TASK_FAMILIES} >= {"string", "arithmetic", "counting", "formatting", "lookup"}


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
    for rec, t in zip(suite.test, suite.test_task):
        if suite.families[int(t)].kind != "lookup":
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


def test_tiny_demo_end_to_end(_hf: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from diverseevol.demo.run import DemoSettings, run_demo

    torch.set_num_threads(2)
    monkeypatch.setenv("DIVERSEEVOL_PROGRESS", "0")
    settings = DemoSettings.preset("tiny", tiny=True, samplers=("kcenter", "random"), rounds=1)
    messages: list[str] = []
    result = run_demo(settings, tmp_path / "demo", cache_dir=tmp_path / "cache", plots=False, progress=False,
                      echo=messages.append)
    sizes = [settings.init_size + t * settings.k for t in range(settings.rounds + 1)]
    assert [(r["sampler"], r["pool_size"]) for r in result.rows] == [(s, n) for s in ("kcenter", "random") for n in sizes]
    for r in result.rows:
        assert 0.0 <= r["accuracy"] <= 100.0
        assert 1 <= r["coverage"] <= 20
        assert r["vendi"] >= 1.0 - 1e-6
    # Same seed, same P_0: round 0 is identical for both samplers.
    r0 = {r["sampler"]: r for r in result.rows if r["round"] == 0}
    assert r0["kcenter"]["coverage"] == r0["random"]["coverage"]
    assert "Task coverage" in result.table_markdown and "kcenter" in result.table_markdown
    saved = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(result.rows))
    assert (tmp_path / "demo" / "kcenter" / "config.json").is_file()
    assert any("task suite" in m for m in messages)

    # A second call resumes the finished run directories and measures the same thing.
    again = run_demo(settings, tmp_path / "demo", cache_dir=tmp_path / "cache", plots=False, progress=False)
    assert [(r["sampler"], r["pool_size"], r["coverage"], r["accuracy"]) for r in again.rows] == [
        (r["sampler"], r["pool_size"], r["coverage"], r["accuracy"]) for r in result.rows
    ]


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
