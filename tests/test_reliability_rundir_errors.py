"""Issue 12 item 11 (run/loop part): typed errors instead of internal exceptions.

A judge callable returning None or a list, a scorer returning strings, a garbled config.json in a
run directory, JSON nested 100k deep (run directory files and load_instructions): each raises one
of the library's typed errors (DiverseEvolError and a builtin) with a message naming what was
expected, never TypeError/bare ValueError/RecursionError/UnicodeDecodeError.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import loop_fakes as fakes
from test_reliability_rundir import make, partial_run, rdir, expect_refused

from diverseevol.data import load_instructions
from diverseevol.errors import DataFormatError, DiverseEvolError, RunDirectoryError, ValidationError
from diverseevol.run import EvolutionResult


@pytest.fixture(autouse=True)
def _fast_disk(monkeypatch):
    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "0")


def _loop(tmp_path, **kw):
    return fakes.small_loop(tmp_path / "run", **{"sampler": "random", **kw})


def my_judge(model, round):
    return None


@pytest.mark.parametrize("returned", [None, [0.5, 0.7], "0.9", 3.0])
def test_judge_returning_something_else_than_a_mapping(tmp_path, returned):
    def my_judge(model, round):
        return returned

    with pytest.raises(ValidationError) as info:
        _loop(tmp_path, judge=my_judge).run()
    message = str(info.value)
    assert "my_judge" in message and "mapping" in message and type(returned).__name__ in message
    assert not isinstance(info.value, TypeError)


def test_judge_instance_is_named(tmp_path):
    class ListJudge:
        def __call__(self, model, round):
            return [("accuracy", 1.0)]

    with pytest.raises(ValidationError, match="ListJudge"):
        _loop(tmp_path, judge=ListJudge()).run()


@pytest.mark.parametrize(
    "values", [["high"] * 80, np.array(["0.5"] * 80), [None] * 80, np.zeros(80, complex), [[1, 2]] * 80]
)
def test_scorer_returning_non_numbers(tmp_path, values):
    def my_scorer(model, records):
        return {"margin": values}

    with pytest.raises(ValidationError) as info:
        _loop(tmp_path, sampler="margin", scorer=my_scorer).run()
    message = str(info.value)
    assert "margin" in message and "my_scorer" in message and "number" in message


# ---- config.json (item 11) -------------------------------------------------------------------------
@pytest.mark.parametrize("garbage", [b'{"format": "diverseevol-run", "format_ver', b"\x00\xff\x13garbage", b""])
def test_garbled_config_is_reported_as_corrupt(tmp_path, garbage):
    run_dir = partial_run(tmp_path)
    (run_dir / "config.json").write_bytes(garbage)
    for kw in ({}, {"overwrite": True}):
        with pytest.raises(RunDirectoryError, match="corrupt") as info:
            make(run_dir, **kw).run()
        assert "config.json" in str(info.value)
        assert "not a diverseevol run directory" not in str(info.value)
    with pytest.raises(RunDirectoryError, match=r"config\.json.*corrupt|corrupt.*config\.json"):
        EvolutionResult.load(run_dir)
    assert (rdir(run_dir, 0) / "selection.json").is_file()  # nothing was deleted




def test_deeply_nested_json_is_a_typed_error(tmp_path):
    run_dir = partial_run(tmp_path)
    (rdir(run_dir, 1) / "judge.json").write_text("[" * 100_000 + "]" * 100_000)
    expect_refused(run_dir, r"round_001.judge\.json")
    (run_dir / "config.json").write_text('{"a": ' * 100_000 + "1" + "}" * 100_000)
    with pytest.raises(RunDirectoryError, match=r"config\.json"):
        EvolutionResult.load(run_dir)




def test_deeply_nested_json_data_file(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    for name, text in (("d.json", deep), ("d.jsonl", '{"a": ' * 100_000 + "1" + "}" * 100_000)):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(DataFormatError, match="nested") as info:
            load_instructions(path)
        assert name in str(info.value)
