"""Tracking survives kill -9: a real loop process is killed at several points (inside the tracker's
writes, between a round's record and its logging, after the last round), resumed, and the
tracker's own files are read back (tests/tracking_readers.py): every round's scalars appear
exactly once, with the values the run directory recorded, and the MLflow run ends FINISHED.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

from tracking_readers import read_scalars, tensorboard_reader_available  # noqa: E402

from diverseevol.run.result import EvolutionResult  # noqa: E402

pytestmark = [
    pytest.mark.skipif(os.name != "posix", reason="SIGKILL needs POSIX"),
    pytest.mark.skipif(
        not (importlib.util.find_spec("mlflow") and importlib.util.find_spec("tensorboardX")
             and tensorboard_reader_available()),
        reason="needs mlflow and tensorboardX",
    ),
]

ROUNDS = 3


@pytest.fixture(autouse=True)
def _file_store(monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses a folder store without it

# TRACK_KILL selects where the child kills itself (SIGKILL, no cleanup):
#   round_end:T       after round T is recorded in the run directory, before any tracker logs it
#   tb:T:N            inside TensorBoard's logging of round T, after N scalars reached the event file
#   mlflow:T:N        inside MLflow's log_batch of round T, after N metrics reached the store
#   run_end           after the last round, before the trackers close their runs
#   mlflow_close      after TensorBoard closed, inside MLflow's close before the run is terminated
#   FAKE_KILL=judge:T inside the judge of round T (the round is not recorded)
SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    sys.path.insert(0, sys.argv[1])
    import loop_fakes as f
    from diverseevol import EvolutionLoop, tracking

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    spec = os.environ.get("TRACK_KILL", "").split(":")

    class Killer:
        def on_round_end(self, round, row):
            if spec[0] == "round_end" and int(spec[1]) == round:
                die()

        def on_run_end(self, result, error):
            if spec[0] == "run_end":
                die()

    if spec[0] == "tb":
        real_log = tracking.TensorBoardCallback._log

        def tb_log(self, step, metrics):
            if step == int(spec[1]):
                for i, (key, value) in enumerate(metrics.items()):
                    if i == int(spec[2]):
                        self.writer.flush()
                        die()
                    self.writer.add_scalar(key, value, step)
            real_log(self, step, metrics)

        tracking.TensorBoardCallback._log = tb_log
    if spec[0] == "mlflow":
        from mlflow.tracking import MlflowClient

        real_batch = MlflowClient.log_batch

        def log_batch(self, run_id, metrics=(), *args, **kwargs):
            metrics = list(metrics)
            if metrics and metrics[0].step == int(spec[1]):
                real_batch(self, run_id, metrics=metrics[: int(spec[2])])
                die()
            return real_batch(self, run_id, metrics, *args, **kwargs)

        MlflowClient.log_batch = log_batch
    if spec[0] == "mlflow_close":
        def close(self, error):
            die()

        tracking.MLflowCallback._close = close

    cfg = json.loads(sys.argv[2])
    loop = EvolutionLoop(
        f.make_records(),
        trainer=f.FakeTrainer(),
        embedder=f.FakeEmbedder(),
        judge=f.FakeJudge(),
        progress=False,
        callbacks=[Killer()],
        **cfg,
    )
    loop.run()
    """
)


def _child(tmp_path: Path, cfg: dict, kill: str | None = None, fake_kill: str | None = None):
    script = tmp_path / "child.py"
    if not script.exists():
        script.write_text(SCRIPT)
    env = dict(os.environ, DIVERSEEVOL_FSYNC="0", DIVERSEEVOL_PROGRESS="0", MLFLOW_ALLOW_FILE_STORE="true",
               MLFLOW_TRACKING_URI=(tmp_path / "mlruns").as_uri(), WANDB_MODE="offline", WANDB_SILENT="true")
    for name in ("TRACK_KILL", "FAKE_KILL", "MLFLOW_EXPERIMENT_NAME", "WANDB_PROJECT"):
        env.pop(name, None)
    if kill:
        env["TRACK_KILL"] = kill
    if fake_kill:
        env["FAKE_KILL"] = fake_kill
    return subprocess.run([sys.executable, str(script), str(TESTS), json.dumps(cfg)], env=env,
                          capture_output=True, text=True, timeout=180, check=False)


def _cfg(run_dir: Path, report_to: list[str]) -> dict:
    return {"init_size": 6, "k": 5, "rounds": ROUNDS, "seed": 7, "run_dir": str(run_dir), "report_to": report_to}


def _expected(rows: list[dict]) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for row in rows:
        for key, value in row.items():
            if key != "round" and isinstance(value, (int, float)) and not isinstance(value, bool):
                if math.isfinite(value):
                    out.setdefault(key, {})[row["round"]] = float(value)
    return out


def _assert_each_round_once(logged: dict[str, list[tuple[int, float]]], rows: list[dict], where: str) -> None:
    expected = _expected(rows)
    assert {"pool_size", "vendi", "accuracy", "time_train_s"} <= set(expected)
    assert set(logged) == set(expected), where
    for key, by_round in expected.items():
        steps = [step for step, _ in logged[key]]
        assert sorted(steps) == sorted(by_round), (where, key, logged[key])  # each round exactly once
        for step, value in logged[key]:
            assert value == pytest.approx(by_round[step], rel=1e-6, abs=1e-6), (where, key, step)


def _mlflow_logged(tmp_path: Path, run_dir: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    runs = client.search_runs(["0"])
    assert len(runs) == 1, [r.info for r in runs]  # one tracking run per run directory, resumed or not
    run = runs[0]
    assert run.data.tags["diverseevol.run_dir"] == str(run_dir.resolve())
    logged = {key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
              for key in run.data.metrics}
    return run, logged


KILLS = {
    "between record and logging": [("round_end:1", None)],
    "inside TensorBoard's writes": [("tb:1:3", None)],
    "inside MLflow's batch": [("mlflow:2:4", None)],
    "inside the judge, then after logging": [(None, "judge:1"), ("round_end:2", None)],
    "after the last round": [("run_end", None)],
    "inside MLflow's close": [("mlflow_close", None)],
    "twice in a row": [("tb:0:2", None), ("mlflow:1:1", None)],
}


#: the other kill points run with `pytest -m slow` (each case starts 3 to 4 processes that import MLflow)
SLOW = {"inside MLflow's close", "inside the judge, then after logging", "twice in a row"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(KILLS)]
)
def test_kill_9_then_resume_logs_every_round_once(tmp_path, name):
    run_dir = tmp_path / "run"
    cfg = _cfg(run_dir, ["tensorboard", "mlflow"])
    for kill, fake_kill in KILLS[name]:
        proc = _child(tmp_path, cfg, kill=kill, fake_kill=fake_kill)
        assert proc.returncode == -9, (kill, fake_kill, proc.returncode, proc.stderr[-3000:])
    proc = _child(tmp_path, cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = EvolutionResult.load(run_dir).metrics
    assert [r["round"] for r in rows] == list(range(ROUNDS + 1))
    _assert_each_round_once(read_scalars(run_dir / "tensorboard", reader="records"), rows, "tensorboard")
    run, logged = _mlflow_logged(tmp_path, run_dir)
    assert run.info.status == "FINISHED"
    _assert_each_round_once(logged, rows, "mlflow")
    assert run.data.params["k"] == "5"

    # replaying the finished run logs nothing more and opens no new tracking run
    files = sorted(p.name for p in (run_dir / "tensorboard").iterdir())
    assert _child(tmp_path, cfg).returncode == 0
    assert sorted(p.name for p in (run_dir / "tensorboard").iterdir()) == files
    again, logged_again = _mlflow_logged(tmp_path, run_dir)
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    assert logged_again == logged


@pytest.mark.skipif(not importlib.util.find_spec("wandb"), reason="wandb is not installed (it is optional)")
@pytest.mark.parametrize("kill", [pytest.param("round_end:1", marks=pytest.mark.slow), "run_end"])
def test_wandb_offline_resume_holds_every_round_once_in_its_latest_run(tmp_path, kill):
    from tracking_readers import read_wandb_offline

    run_dir = tmp_path / "run"
    cfg = _cfg(run_dir, ["wandb"])
    assert _child(tmp_path, cfg, kill=kill).returncode == -9
    killed = sorted((run_dir / "wandb").glob("offline-run-*"))
    proc = _child(tmp_path, cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    latest = [p for p in sorted((run_dir / "wandb").glob("offline-run-*")) if p not in killed]
    assert len(latest) == 1
    view = tmp_path / "latest"
    (view / "wandb").mkdir(parents=True)
    (view / "wandb" / latest[0].name).symlink_to(latest[0])
    logged = read_wandb_offline(view)
    deadline = time.monotonic() + 30
    while logged["exit_code"] is None and time.monotonic() < deadline:  # wandb-core writes behind
        time.sleep(0.2)
        logged = read_wandb_offline(view)
    assert logged["exit_code"] == 0
    history: dict[str, list[tuple[int, float]]] = {}
    for row in logged["history"]:
        for key, value in row.items():
            if not key.startswith("_") and key != "round":
                history.setdefault(key, []).append((row["round"], value))
    _assert_each_round_once(history, EvolutionResult.load(run_dir).metrics, "wandb")
    # replaying the finished run opens no new W&B run
    assert _child(tmp_path, cfg).returncode == 0
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == len(killed) + 1
