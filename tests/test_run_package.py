"""The run package's parts on their own: the replay reader, the metrics-row schema, the settings
and schedule, the old import paths, and the loop's use of the sampler contract
(requirements_of / run_sampler). Oracles: hand-built run directories and hand-written schedules."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import loop_fakes as fakes
from kcenter_oracle import kcenter_oracle

from diverseevol.errors import RunDirectoryError, SamplerOutputError, ValidationError
from diverseevol.run import EvolutionLoop, EvolutionResult, LoopSettings, RunDirectory
from diverseevol.run.result import METRIC_KEYS, SIGNAL_KEYS, TIME_KEYS, metrics_row
from diverseevol.samplers import Requirements, Selection


@pytest.fixture(autouse=True)
def _fast_disk(monkeypatch):
    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "0")


# ---- old import paths ------------------------------------------------------------------------
def test_old_import_paths_are_the_new_objects():
    import diverseevol
    import diverseevol._files as files
    import diverseevol.report as report

    with pytest.warns(DeprecationWarning, match=r"diverseevol\.loop is deprecated.*diverseevol\.run"):
        import diverseevol.loop as old_loop
    with pytest.warns(DeprecationWarning, match=r"diverseevol\.rundir is deprecated.*diverseevol\.run\.directory"):
        import diverseevol.rundir as old_rundir

    assert old_loop.EvolutionLoop is EvolutionLoop is diverseevol.EvolutionLoop
    assert old_loop.EvolutionResult is EvolutionResult is diverseevol.EvolutionResult
    assert old_loop.METRIC_KEYS is METRIC_KEYS
    assert old_rundir.RunDirectory is RunDirectory
    helpers = ("atomic_write", "to_jsonable", "write_json", "read_json", "write_npy", "read_npy", "redact_secrets")
    for name in helpers:
        assert getattr(old_rundir, name) is getattr(files, name)
    assert report._LOOP_KEYS == frozenset(METRIC_KEYS)  # the report reads the one schema


# ---- the metrics row ---------------------------------------------------------------------------
def test_metrics_row_schema():
    assert METRIC_KEYS == ("round", "pool_size", "n_new", *SIGNAL_KEYS, *TIME_KEYS)
    row = metrics_row(
        2,
        pool_size=np.int64(16),
        n_new=5,
        signals={"vendi": np.float32(3.5), "covering_radius": float("nan")},
        times={"time_train_s": 1.25, "time_select_s": 0.5, "unrelated": 9.0},
        judge_metrics={"accuracy": 0.75, "round": 99, "vendi": 1.0},
    )
    assert list(row) == [*METRIC_KEYS, "accuracy", "judge/round", "judge/vendi"]
    assert row["round"] == 2 and row["pool_size"] == 16 and row["n_new"] == 5
    assert row["vendi"] == 3.5 and row["covering_radius"] is None and row["vendi_reference"] is None
    assert row["time_train_s"] == 1.25 and row["time_select_s"] == 0.5 and row["time_judge_s"] == 0.0
    assert "unrelated" not in row
    assert row["accuracy"] == 0.75 and row["judge/round"] == 99 and row["judge/vendi"] == 1.0


# ---- the replay reader ---------------------------------------------------------------------------
def _hand_made_run(path: Path, *, rounds: int, selections: int) -> RunDirectory:
    """P_0 = [4, 1]; round t selects [10 + t, 20 + t] with radii [t + 1, t + 0.5]."""
    rd = RunDirectory(path)
    config, data = {"rounds": rounds, "sampler": "hand"}, {"n_records": 30, "sha256": "x"}
    rd.create(config=config, data=data, library_version="0")
    rd.write_pool(0, np.array([4, 1]))
    for t in range(selections):
        rd.write_train(t, {"time_train_s": 0.0})
        rd.write_selection(t, {"new_indices": np.array([10 + t, 20 + t]), "radii": [t + 1.0, t + 0.5]})
        rd.write_round_metrics(t, {"round": t})
    return rd


def test_replay_derives_each_pool_from_p0_and_the_selections(tmp_path):
    rd = _hand_made_run(tmp_path, rounds=3, selections=2)
    records = list(rd.replay(3))
    assert [r.round for r in records] == [0, 1, 2]  # round 2 has no selection: P_3 is not decided
    np.testing.assert_array_equal(records[0].pool, [4, 1])
    np.testing.assert_array_equal(records[1].pool, [4, 1, 10, 20])
    np.testing.assert_array_equal(records[2].pool, [4, 1, 10, 20, 11, 21])
    np.testing.assert_array_equal(records[1].new_indices, [11, 21])
    np.testing.assert_allclose(records[1].radii, [2.0, 1.5])
    assert records[1].stored_pool is None  # only pool.json of round 0 was written
    assert records[0].complete and not records[2].complete
    assert records[2].new_indices.size == 0 and records[2].radii is None
    assert records[0].model_dir == tmp_path / "rounds" / "round_000" / "model"
    # a given P_0 replaces round 0's pool.json
    other = list(rd.replay(3, first_pool=np.array([7])))
    np.testing.assert_array_equal(other[1].pool, [7, 10, 20])


def test_load_of_a_partial_run_uses_the_replay(tmp_path):
    _hand_made_run(tmp_path, rounds=3, selections=2)
    result = EvolutionResult.load(tmp_path)
    assert [p.tolist() for p in result.pools] == [[4, 1], [4, 1, 10, 20], [4, 1, 10, 20, 11, 21]]
    assert [r.tolist() for r in result.radii] == [[1.0, 0.5], [2.0, 1.5]]
    assert result.metrics == [{"round": 0}, {"round": 1}] and len(result.models) == 2
    assert not result.finished and result.config["sampler"] == "hand"


def test_replay_stops_at_rounds_and_yields_nothing_without_p0(tmp_path):
    rd = _hand_made_run(tmp_path / "a", rounds=1, selections=2)
    assert [r.round for r in rd.replay(1)] == [0, 1]
    assert list(RunDirectory(tmp_path / "empty").replay(3)) == []


def test_resume_refuses_a_complete_round_without_selection(tmp_path):
    loop = _loop(tmp_path, sampler="random")
    loop.run()
    (tmp_path / "run" / "rounds" / "round_001" / "selection.json").unlink()
    with pytest.raises(RunDirectoryError, match="no selection.json"):
        _loop(tmp_path, sampler="random").run()


# ---- settings and schedule ---------------------------------------------------------------------
def _loop(tmp_path, **kw):
    params = dict(
        trainer=fakes.FakeTrainer(), embedder=fakes.FakeEmbedder(), scorer=fakes.FakeScorer(),
        init_size=6, k=5, rounds=3, seed=7, run_dir=tmp_path / "run", progress=False,
    )
    params.update(kw)
    return EvolutionLoop(fakes.make_records(), **params)


@pytest.mark.parametrize(
    ("sampler", "mode", "vendi", "selects", "embeds", "scores"),
    [
        ("kcenter", "iterative", None, [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]),
        ("kcenter", "iterative", True, [1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]),
        ("kcenter", "iterative", False, [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]),
        ("kcenter", "one_time", False, [1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]),
        ("margin", "iterative", None, [1, 1, 1, 0], [0, 0, 0, 0], [1, 1, 1, 0]),
        ("margin", "one_time", True, [1, 0, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]),
        ("random", "iterative", None, [1, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]),
    ],
)
def test_schedule(tmp_path, sampler, mode, vendi, selects, embeds, scores):
    s = _loop(tmp_path, sampler=sampler, mode=mode, vendi=vendi).settings
    assert [int(s.selects_in(t)) for t in range(4)] == selects
    assert [int(s.embeds_in(t)) for t in range(4)] == embeds
    assert [int(s.scores_in(t)) for t in range(4)] == scores
    assert s.selection_size == (15 if mode == "one_time" else 5)


def test_settings_are_checked_once_and_readable_from_the_loop(tmp_path):
    loop = _loop(tmp_path, sampler="margin", k=np.int64(5))
    assert isinstance(loop.settings, LoopSettings) and loop.settings.score_names == ("margin",)
    assert loop.k == 5 and type(loop.k) is int and loop.sampler.name == "margin"
    with pytest.raises(AttributeError):
        loop.settings.k = 3  # frozen
    emb = fakes.FakeEmbedder()
    loop.embedder = emb  # assigning a setting replaces it in the settings
    assert loop.settings.embedder is emb and loop.embedder is emb
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        loop.nothing  # noqa: B018
    with pytest.raises(ValidationError, match="seed"):
        LoopSettings.from_arguments(
            fakes.make_records(), trainer=fakes.FakeTrainer(), sampler="random", seed=-1
        )


# ---- the sampler contract inside the loop ------------------------------------------------------
class _FirstCandidates:
    """Picks the lowest candidates; returns a Selection with made-up radii, or plain floats."""

    name = "first_candidates"
    requires = Requirements()

    def __init__(self, output="selection"):
        self.output = output

    def select(self, ctx, k):
        picks = ctx.candidate_idx[:k]
        if self.output == "selection":
            return Selection(picks, radii=np.arange(k, 0, -1, dtype=float))
        if self.output == "integral floats":
            return picks.astype(np.float64)
        return picks + 0.5


def test_loop_records_the_radii_of_a_selection(tmp_path):
    result = _loop(tmp_path, sampler=_FirstCandidates()).run()
    np.testing.assert_array_equal(result.radii[0], [5, 4, 3, 2, 1])
    pool0 = result.pools[0]
    np.testing.assert_array_equal(result.new_indices[0], np.setdiff1d(np.arange(80), pool0)[:5])


def test_loop_accepts_integral_floats_and_refuses_fractions(tmp_path):
    result = _loop(tmp_path / "a", sampler=_FirstCandidates("integral floats")).run()
    assert result.radii == [None, None, None]
    with pytest.raises(SamplerOutputError):
        _loop(tmp_path / "b", sampler=_FirstCandidates("fractions")).run()


def test_loop_honours_old_style_requires_and_select_with_radii(tmp_path):
    class OldKCenter:
        name = "old_kcenter"
        requires = frozenset({"embeddings"})

        def select(self, ctx, k):  # pragma: no cover - select_with_radii is used instead
            raise AssertionError

        def select_with_radii(self, ctx, k):
            return kcenter_oracle(ctx.embeddings, ctx.pool_idx, ctx.candidate_idx, k)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _loop(tmp_path, sampler=OldKCenter(), vendi=False).run()
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert all(r is not None and np.all(np.diff(r) <= 1e-9) for r in result.radii)
    assert result.metrics[0]["covering_radius"] == pytest.approx(float(result.radii[0][0]))
