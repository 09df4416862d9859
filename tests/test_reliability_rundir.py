"""Issue 12 items 4 and 11 (run directory): resuming validates every file it reads.

Each corruption below is made by hand in a real run directory (written by a run that failed in
its judge at round 2: rounds 0 and 1 complete, round 2 trained and selected). Resuming, and
EvolutionResult.load, must raise RunDirectoryError naming the file and a fix; never resume with
wrong pools, never IndexError/AttributeError/TypeError/KeyError.
Oracle: the file that was edited, and the rules of docs/run_directory.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import loop_fakes as fakes

from diverseevol.errors import DiverseEvolError, RunDirectoryError
from diverseevol.run import EvolutionLoop, EvolutionResult

N = fakes.N_RECORDS
K = 5


@pytest.fixture(autouse=True)
def _fast_disk(monkeypatch):
    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "0")


class FailingJudge(fakes.FakeJudge):
    def __init__(self, fail_at=None):
        super().__init__()
        self.fail_at = fail_at

    def __call__(self, model, round):
        if round == self.fail_at:
            raise RuntimeError("judge endpoint down")
        return super().__call__(model, round)


def make(run_dir, *, fail_at=None, **kw):
    params = dict(
        trainer=fakes.FakeTrainer(), embedder=fakes.FakeEmbedder(), scorer=fakes.FakeScorer(),
        judge=FailingJudge(fail_at), init_size=6, k=K, rounds=3, seed=11, run_dir=run_dir, progress=False,
        sampler="kcenter", cache_embeddings=True,
    )
    params.update(kw)
    return EvolutionLoop(fakes.make_records(), **params)


def partial_run(tmp_path, **kw):
    """A run that stopped in round 2's judge: rounds 0, 1 complete; round 2 trained and selected."""
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="endpoint down"):
        make(run_dir, fail_at=2, **kw).run()
    return run_dir


def rdir(run_dir, t):
    return run_dir / "rounds" / f"round_{t:03d}"


def edit_json(path, change):
    obj = json.loads(path.read_text())
    path.write_text(json.dumps(change(obj)))


def expect_refused(run_dir, file_pattern, *, load=True, **kw):
    """Both resuming and EvolutionResult.load raise RunDirectoryError naming the file and a fix."""
    with pytest.raises(RunDirectoryError, match=file_pattern) as info:
        make(run_dir, **kw).run()
    message = str(info.value)
    assert "overwrite=True" in message or "delete" in message.lower(), message
    if load:
        with pytest.raises(RunDirectoryError, match=file_pattern):
            EvolutionResult.load(run_dir)
    return message


def _with(key, value):
    def change(obj):
        obj[key] = value
        return obj

    return change


# ---- selection.json ----------------------------------------------------------------------------
def test_selection_with_two_of_five_indices_kept(tmp_path):
    run_dir = partial_run(tmp_path)
    edit_json(rdir(run_dir, 1) / "selection.json", lambda o: _with("new_indices", o["new_indices"][:2])(o))
    message = expect_refused(run_dir, r"round_001.selection\.json")
    assert "2" in message and "5" in message and "round_001" in message


def test_selection_index_out_of_range(tmp_path):
    run_dir = partial_run(tmp_path)
    edit_json(rdir(run_dir, 0) / "selection.json", lambda o: _with("new_indices", [N, *o["new_indices"][1:]])(o))
    message = expect_refused(run_dir, r"round_000.selection\.json")
    assert str(N) in message


@pytest.mark.parametrize(
    "bad",
    [[1.5, 2, 3, 4, 5], ["7", 8, 9, 10, 11], [True, 8, 9, 10, 11], [[1], 8, 9, 10, 11], [-1, 8, 9, 10, 12],
     [8, 8, 9, 10, 11], "8,9,10,11,12", None],
)
def test_selection_indices_not_whole_numbers_in_range(tmp_path, bad):
    run_dir = partial_run(tmp_path)
    edit_json(rdir(run_dir, 0) / "selection.json", _with("new_indices", bad))
    expect_refused(run_dir, r"round_000.selection\.json")


def test_selection_index_already_in_the_pool(tmp_path):
    run_dir = partial_run(tmp_path)
    pool0 = json.loads((rdir(run_dir, 0) / "pool.json").read_text())["indices"]
    edit_json(rdir(run_dir, 1) / "selection.json", lambda o: _with("new_indices", [pool0[0], *o["new_indices"][1:]])(o))
    message = expect_refused(run_dir, r"round_001.selection\.json")
    assert "pool" in message


@pytest.mark.parametrize("content", [[8, 9, 10, 11, 12], "text", 3, None])
def test_selection_that_is_not_an_object(tmp_path, content):
    run_dir = partial_run(tmp_path)
    (rdir(run_dir, 1) / "selection.json").write_text(json.dumps(content))
    expect_refused(run_dir, r"round_001.selection\.json")


def test_selection_radii_of_the_wrong_length_or_type(tmp_path):
    run_dir = partial_run(tmp_path)
    edit_json(rdir(run_dir, 0) / "selection.json", lambda o: _with("radii", o["radii"][:3])(o))
    expect_refused(run_dir, r"round_000.selection\.json")
    edit_json(rdir(run_dir, 0) / "selection.json", _with("radii", ["a", "b", "c", "d", "e"]))
    expect_refused(run_dir, r"round_000.selection\.json")


def test_selection_of_the_incomplete_round_is_checked_too(tmp_path):
    run_dir = partial_run(tmp_path)
    edit_json(rdir(run_dir, 2) / "selection.json", lambda o: _with("new_indices", o["new_indices"][:2])(o))
    expect_refused(run_dir, r"round_002.selection\.json")


def test_one_time_picks_are_checked(tmp_path):
    run_dir = partial_run(tmp_path, mode="one_time")

    def cut(obj):
        obj["one_time"]["indices"] = obj["one_time"]["indices"][:7]
        return obj

    edit_json(rdir(run_dir, 0) / "selection.json", cut)
    expect_refused(run_dir, r"round_000.selection\.json", mode="one_time")


# ---- pool.json, train.json, judge.json, metrics.json, status.json -----------------------------------
@pytest.mark.parametrize(
    "change",
    [lambda o: [1, 2, 3], lambda o: _with("indices", "1,2")(o), lambda o: _with("indices", [1.5] * 6)(o),
     lambda o: {"round": 0}, lambda o: _with("indices", [N + 3, *o["indices"][1:]])(o)],
)
def test_pool_json(tmp_path, change):
    run_dir = partial_run(tmp_path)
    edit_json(rdir(run_dir, 0) / "pool.json", change)
    expect_refused(run_dir, r"round_000.pool\.json")


@pytest.mark.parametrize("name", ["train.json", "metrics.json", "judge.json"])
@pytest.mark.parametrize("content", [[1, 2], "x", {"time_train_s": "slow", "metrics": [1], "round": "one"}])
def test_round_files_that_are_not_what_the_loop_wrote(tmp_path, name, content):
    run_dir = partial_run(tmp_path)
    (rdir(run_dir, 1) / name).write_text(json.dumps(content))
    expect_refused(run_dir, rf"round_001.{name.replace('.', '[.]')}")


def test_metrics_row_of_another_round(tmp_path):
    run_dir = partial_run(tmp_path)
    edit_json(rdir(run_dir, 1) / "metrics.json", _with("round", 0))
    expect_refused(run_dir, r"round_001.metrics\.json")


def test_status_that_is_not_an_object(tmp_path):
    run_dir = partial_run(tmp_path)
    (run_dir / "status.json").write_text("[1]")
    with pytest.raises(RunDirectoryError, match=r"status\.json"):
        EvolutionResult.load(run_dir)


def test_broken_summaries_are_rewritten_on_resume(tmp_path):
    """metrics.json and status.json at the top are summaries of the rounds: resuming rewrites them."""
    run_dir = partial_run(tmp_path)
    (run_dir / "metrics.json").write_text("{not json")
    (run_dir / "status.json").write_text("[1]")
    result = make(run_dir).run()
    assert result.finished
    assert json.loads((run_dir / "metrics.json").read_text()) == result.metrics
    assert EvolutionResult.load(run_dir).finished


# ---- cached signals ------------------------------------------------------------------------------
def _reselect_round_2(run_dir):
    (rdir(run_dir, 2) / "selection.json").unlink()  # round 2 reselects from its cached signals


@pytest.mark.parametrize(
    "bad",
    [np.zeros((N - 1, fakes.DIM), np.float32), np.zeros(N, np.float32), np.zeros((N, fakes.DIM), np.complex64),
     np.array([["a"] * fakes.DIM] * N), np.zeros((N, 0), np.float32)],
    ids=["short", "1-D", "complex", "strings", "no-columns"],
)
def test_cached_embeddings(tmp_path, bad):
    run_dir = partial_run(tmp_path)
    _reselect_round_2(run_dir)
    np.save(rdir(run_dir, 2) / "embeddings.npy", bad)
    message = expect_refused(run_dir, r"round_002.embeddings\.npy", load=False)
    assert "delete" in message.lower()


def test_cached_embeddings_empty_file(tmp_path):
    run_dir = partial_run(tmp_path)
    _reselect_round_2(run_dir)
    (rdir(run_dir, 2) / "embeddings.npy").write_bytes(b"")
    expect_refused(run_dir, r"round_002.embeddings\.npy", load=False)


@pytest.mark.parametrize(
    "bad",
    [np.zeros(N - 1), np.zeros((N, 2)), np.array(["high"] * N), np.zeros(N, np.complex128)],
    ids=["short", "2-D", "strings", "complex"],
)
def test_cached_scores(tmp_path, bad):
    run_dir = partial_run(tmp_path, sampler="margin", cache_embeddings=False)
    _reselect_round_2(run_dir)
    np.save(rdir(run_dir, 2) / "scores" / "margin.npy", bad)
    message = expect_refused(run_dir, r"round_002.scores.margin\.npy", load=False, sampler="margin",
                             cache_embeddings=False)
    assert "delete" in message.lower()


def test_valid_cached_signals_are_used(tmp_path):
    """Control: with the caches intact, the resumed run equals an uninterrupted one."""
    ref = make(tmp_path / "ref").run()
    run_dir = partial_run(tmp_path)
    _reselect_round_2(run_dir)
    loop = make(run_dir)
    got = loop.run()
    assert 2 not in loop.embedder.calls  # the cache was read
    for a, b in zip(got.pools, ref.pools):
        np.testing.assert_array_equal(a, b)


# ---- config.json -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [{"format": "diverseevol-run", "format_version": 1, "data": [], "config": {}},
     {"format": "diverseevol-run", "format_version": 1, "data": {"n_records": "80"}, "config": {}},
     {"format": "diverseevol-run", "format_version": 1, "data": {"n_records": 80}, "config": []}],
)
def test_config_with_wrong_types(tmp_path, header):
    run_dir = partial_run(tmp_path)
    (run_dir / "config.json").write_text(json.dumps(header))
    with pytest.raises(RunDirectoryError, match=r"config\.json"):
        EvolutionResult.load(run_dir)
    with pytest.raises(DiverseEvolError, match=r"config\.json|different run"):
        make(run_dir).run()


def test_fix_named_in_the_message_works(tmp_path):
    """The advice "delete round_001/ and the later rounds" recomputes them: same pools as a clean run."""
    ref = make(tmp_path / "ref").run()
    run_dir = partial_run(tmp_path)
    edit_json(rdir(run_dir, 1) / "selection.json", lambda o: _with("new_indices", o["new_indices"][:2])(o))
    message = expect_refused(run_dir, r"round_001.selection\.json")
    assert "round_001" in message and "later" in message
    import shutil

    for t in (1, 2):
        shutil.rmtree(rdir(run_dir, t))
    got = make(run_dir).run()
    for a, b in zip(got.pools, ref.pools):
        np.testing.assert_array_equal(a, b)
