"""Crash safety and resume: kill -9 at every file write and inside every callable, then run()
again; the pools must equal an uninterrupted run's and finished work must never be redone.
Also: mismatch errors, overwrite/resume switches, locking, the atomic writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

import loop_fakes as fakes

from diverseevol.errors import RunDirectoryError, RunDirectoryMismatchError
from diverseevol._files import atomic_write, read_npy, write_json, write_npy
from diverseevol.run import EvolutionLoop, EvolutionResult, RunDirectory

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and flock need POSIX")

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    sys.path.insert(0, sys.argv[1])
    import loop_fakes as f
    from diverseevol.run import EvolutionLoop

    spec = os.environ.get("KILL_REPLACE")  # "<n>:before" or "<n>:after": die at this process's n-th rename
    if spec:
        nth, when = spec.split(":")
        nth, real, count = int(nth), os.replace, [0]

        def replace(src, dst):
            count[0] += 1
            if count[0] == nth and when == "before":  # temp file complete, not yet renamed
                os.kill(os.getpid(), signal.SIGKILL)
            real(src, dst)
            if count[0] == nth and when == "after":  # renamed, directory not yet fsync-ed
                os.kill(os.getpid(), signal.SIGKILL)

        os.replace = replace

    cfg = json.loads(sys.argv[2])
    loop = EvolutionLoop(
        f.make_records(),
        trainer=f.FakeTrainer(with_load=cfg.pop("with_load", True)),
        embedder=f.FakeEmbedder(),
        scorer=f.FakeScorer(),
        judge=f.FakeJudge(),
        progress=False,
        **cfg,
    )
    result = loop.run()
    print(json.dumps([p.tolist() for p in result.pools]))
    """
)


@pytest.fixture(autouse=True)
def _fast_disk(monkeypatch):
    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "0")


def base_cfg(run_dir, **kw):
    cfg = {"init_size": 6, "k": 5, "rounds": 3, "seed": 11, "run_dir": str(run_dir)}
    cfg.update(kw)
    return cfg


def run_child(tmp_path, cfg, *, kill_replace=None, fake_kill=None):
    script = tmp_path / "child.py"
    if not script.exists():
        script.write_text(SCRIPT)
    env = dict(
        os.environ, FAKE_LOG=str(tmp_path / "calls.log"), DIVERSEEVOL_FSYNC="0", DIVERSEEVOL_PROGRESS="0"
    )
    env.pop("KILL_REPLACE", None)
    env.pop("FAKE_KILL", None)
    if kill_replace:
        env["KILL_REPLACE"] = kill_replace
    if fake_kill:
        env["FAKE_KILL"] = fake_kill
    proc = subprocess.run(
        [sys.executable, str(script), str(TESTS), json.dumps(cfg)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc


def reference(tmp_path, **kw):
    cfg = base_cfg(tmp_path / "reference", **kw)
    cfg.pop("with_load", None)
    loop = EvolutionLoop(
        fakes.make_records(),
        trainer=fakes.FakeTrainer(),
        embedder=fakes.FakeEmbedder(),
        scorer=fakes.FakeScorer(),
        judge=fakes.FakeJudge(),
        progress=False,
        **cfg,
    )
    return loop.run()


def without_timings(rows):
    return [{k: v for k, v in r.items() if not k.startswith("time_")} for r in rows]


def call_counts(tmp_path):
    lines = (tmp_path / "calls.log").read_text().split("\n")
    return Counter(tuple(line.split()) for line in lines if line)


def check_same_as_reference(tmp_path, run_dir, ref):
    got = EvolutionResult.load(run_dir)
    assert got.finished
    assert len(got.pools) == len(ref.pools)
    for a, b in zip(got.pools, ref.pools):
        np.testing.assert_array_equal(a, b)
    assert without_timings(got.metrics) == without_timings(ref.metrics)
    summary = json.loads((Path(run_dir) / "metrics.json").read_text())
    assert without_timings(summary) == without_timings(ref.metrics)
    assert not [p for p in Path(run_dir).rglob("*") if ".tmp." in p.name], "temporary files left behind"


# ---- kill -9 at every write ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("when", "extra"),
    [("before", {}), ("after", {"cache_embeddings": True})],
    ids=["mid-write", "after-rename+cached-embeddings"],
)
def test_kill_at_every_write_then_resume(tmp_path, when, extra):
    """Each process writes exactly one file and is killed at its next rename (before: temp file
    complete but not renamed; after: renamed but the directory not fsync-ed). Walking the whole
    run this way kills it once at every file write."""
    ref = reference(tmp_path, **extra)
    run_dir = tmp_path / "run"
    cfg = base_cfg(run_dir, **extra)
    nth = "2:before" if when == "before" else "1:after"
    kills = 0
    for _ in range(80):
        proc = run_child(tmp_path, cfg, kill_replace=nth)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        kills += 1
    else:  # pragma: no cover
        pytest.fail("the run never finished")
    # one kill per file write: 5 per round (pool, train, selection, judge, metrics) + config.json;
    # the summaries written after a round's metrics are skipped by the next process.
    assert kills >= 20
    check_same_as_reference(tmp_path, run_dir, ref)
    counts = call_counts(tmp_path)
    assert counts[("retrain", "0")] == 0 and not any(c[0] == "retrain" for c in counts)
    for t in range(4):
        # a training is redone only when killed before its completion record was renamed
        assert counts[("train", str(t))] == (1 if when == "after" else counts[("train", str(t))])
        assert counts[("train", str(t))] <= 2
        assert counts[("judge", str(t))] <= 2
    if extra.get("cache_embeddings"):
        assert all(counts[("embed", str(t))] == 1 for t in range(3))  # cached embeddings are never recomputed
        assert counts[("embed", "3")] == 0  # the final round selects nothing: not embedded


@pytest.mark.parametrize(
    ("sampler", "kills", "extra"),
    [
        ("kcenter", ["train:0", "embed:1", "judge:1", "train:2", "embed:2", "judge:3"], {}),
        ("margin", ["score:0", "train:1", "score:2", "judge:3"], {}),
        ("kcenter", ["embed:0", "judge:0", "train:2"], {"mode": "one_time"}),
        ("random", ["train:1", "judge:2"], {"with_load": False}),
    ],
    ids=["kcenter", "margin", "one_time", "random-no-load"],
)
def test_kill_inside_callables_then_resume(tmp_path, sampler, kills, extra):
    ref = reference(tmp_path, sampler=sampler, **extra)
    run_dir = tmp_path / "run"
    cfg = base_cfg(run_dir, sampler=sampler, **extra)
    for spec in kills:
        proc = run_child(tmp_path, cfg, fake_kill=spec)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        partial = EvolutionResult.load(run_dir)
        assert not partial.finished
    proc = run_child(tmp_path, cfg)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [p.tolist() for p in ref.pools]
    check_same_as_reference(tmp_path, run_dir, ref)
    counts = call_counts(tmp_path)
    for t in range(4):
        killed_in_train = int(f"train:{t}" in kills)
        if extra.get("with_load", True):
            assert counts[("train", str(t))] == 1 + killed_in_train
        assert counts[("killed-train", str(t))] == killed_in_train
    assert not any(c[0] == "retrain" for c in counts)


# ---- in-process resume -----------------------------------------------------------------------
class FailingJudge(fakes.FakeJudge):
    def __init__(self, fail_at):
        super().__init__()
        self.fail_at = fail_at

    def __call__(self, model, round):
        if round == self.fail_at:
            raise RuntimeError("judge endpoint down")
        return super().__call__(model, round)


def make(run_dir, *, trainer=None, judge=None, **kw):
    cfg = base_cfg(run_dir, **kw)
    return EvolutionLoop(
        fakes.make_records(),
        trainer=trainer or fakes.FakeTrainer(),
        embedder=fakes.FakeEmbedder(),
        scorer=fakes.FakeScorer(),
        judge=judge or fakes.FakeJudge(),
        progress=False,
        **cfg,
    )


def test_resume_after_exception_uses_load_and_skips_finished_work(tmp_path):
    ref = reference(tmp_path)
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="endpoint down"):
        make(run_dir, judge=FailingJudge(2)).run()
    partial = EvolutionResult.load(run_dir)
    assert not partial.finished and len(partial.metrics) == 2 and len(partial.pools) == 4  # S_2 was selected
    trainer, emb = fakes.FakeTrainer(), fakes.FakeEmbedder()
    loop = make(run_dir, trainer=trainer)
    loop.embedder = emb
    result = loop.run()
    assert trainer.loads == [2] and trainer.calls == [3]  # round 2 is loaded for its judge, not retrained
    assert emb.calls == []  # round 2's selection and metrics were recorded already; round 3 selects nothing
    for a, b in zip(result.pools, ref.pools):
        np.testing.assert_array_equal(a, b)
    assert without_timings(result.metrics) == without_timings(ref.metrics)
    assert isinstance(result.models[0], Path) and isinstance(result.models[3], dict)


def test_resume_without_load_calls_trainer_again_with_same_out_dir(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError):
        make(run_dir, judge=FailingJudge(1)).run()
    trainer = fakes.FakeTrainer(with_load=False)
    seen = []
    original = trainer.__call__

    def spy(records, round, out_dir):
        seen.append((round, Path(out_dir)))
        return original(records, round, out_dir)

    loop = make(run_dir, trainer=spy)
    loop.run()
    assert [r for r, _ in seen] == [1, 2, 3]
    assert seen[0][1] == run_dir / "rounds" / "round_001" / "model"


def test_finished_run_calls_nothing(tmp_path):
    run_dir = tmp_path / "run"
    first = make(run_dir).run()
    trainer, judge = fakes.FakeTrainer(), fakes.FakeJudge()
    loop = make(run_dir, trainer=trainer, judge=judge)
    again = loop.run()
    assert trainer.calls == [] and trainer.loads == [] and judge.calls == [] and loop.embedder.calls == []
    assert again.metrics == first.metrics


# ---- mismatch, overwrite, resume=False -------------------------------------------------------
def test_mismatched_config_or_data_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    make(run_dir, sampler="random").run()
    with pytest.raises(RunDirectoryMismatchError, match=r"k: stored 5, given 4"):
        make(run_dir, sampler="random", k=4).run()
    with pytest.raises(RunDirectoryMismatchError, match="sampler"):
        make(run_dir, sampler="margin").run()
    with pytest.raises(RunDirectoryMismatchError, match="metric"):
        make(run_dir, sampler="kcenter", sampler_params={"metric": "cosine"}).run()
    other = fakes.make_records()
    other[3] = type(other[3])("changed", "", "x")
    loop = EvolutionLoop(
        other, trainer=fakes.FakeTrainer(), sampler="random", progress=False, **base_cfg(run_dir)
    )
    with pytest.raises(RunDirectoryMismatchError, match="different content"):
        loop.run()
    fewer = EvolutionLoop(
        other[:70], trainer=fakes.FakeTrainer(), sampler="random", progress=False, **base_cfg(run_dir)
    )
    with pytest.raises(RunDirectoryMismatchError, match="80 records"):
        fewer.run()
    # settings that do not change the pools are not compared
    make(run_dir, sampler="random", vendi=False, tags={"note": "resumed"}).run()


def test_overwrite_and_resume_false(tmp_path):
    run_dir = tmp_path / "run"
    make(run_dir, sampler="random").run()
    with pytest.raises(RunDirectoryError, match="resume=True"):
        make(run_dir, sampler="random", resume=False).run()
    trainer = fakes.FakeTrainer()
    result = make(run_dir, sampler="margin", k=4, overwrite=True, trainer=trainer).run()
    assert trainer.calls == [0, 1, 2, 3] and result.config["sampler"] == "margin"
    assert EvolutionResult.load(run_dir).config["k"] == 4


def test_foreign_directory_is_never_touched(tmp_path):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    (run_dir / "thesis.tex").write_text("precious")
    for kw in ({}, {"overwrite": True}):
        with pytest.raises(RunDirectoryError, match="not a diverseevol run directory"):
            make(run_dir, sampler="random", **kw).run()
    assert (run_dir / "thesis.tex").read_text() == "precious"
    assert [p.name for p in run_dir.iterdir()] == ["thesis.tex"]  # not even a lock file


def test_edited_pool_is_detected(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError):
        make(run_dir, sampler="random", judge=FailingJudge(2)).run()
    path = run_dir / "rounds" / "round_001" / "pool.json"
    obj = json.loads(path.read_text())
    obj["indices"][0], obj["indices"][1] = obj["indices"][1], obj["indices"][0]
    path.write_text(json.dumps(obj))
    with pytest.raises(RunDirectoryError, match="corrupt"):
        make(run_dir, sampler="random").run()


def test_locked_directory_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    with RunDirectory(run_dir).lock(), pytest.raises(RunDirectoryError, match="in use"):
        make(run_dir, sampler="random").run()
    make(run_dir, sampler="random").run()  # the lock is released with the context


def test_load_rejects_non_run_directories(tmp_path):
    with pytest.raises(RunDirectoryError, match="config.json"):
        EvolutionResult.load(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "diverseevol-run", "format_version": 99}')
    with pytest.raises(RunDirectoryError, match="format_version"):
        EvolutionResult.load(tmp_path)


# ---- the atomic writer -----------------------------------------------------------------------
def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "1")  # the real fsync path
    target = tmp_path / "a.json"
    write_json(target, {"v": 1})

    def boom(fh):
        fh.write(b'{"v": ')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, boom)
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_npy_round_trip_and_no_pickles(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_npy(tmp_path / "e.npy", arr)
    back = read_npy(tmp_path / "e.npy", mmap=True)
    assert isinstance(back, np.memmap) and np.array_equal(back, arr)
    with pytest.raises(RunDirectoryError, match="pickle"):
        write_npy(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))
    np.save(tmp_path / "p.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(RunDirectoryError):
        read_npy(tmp_path / "p.npy")


def test_nonfinite_values_become_null(tmp_path):
    write_json(
        tmp_path / "m.json",
        {"a": float("nan"), "b": np.float32(1.5), "c": np.int64(3), "d": np.array([1, 2])},
    )
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": None, "b": 1.5, "c": 3, "d": [1, 2]}
