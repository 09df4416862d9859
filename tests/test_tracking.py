"""Experiment tracking of the loop (report_to=, diverseevol.tracking): the logs are read back.

TensorBoard event files are read with TensorBoard's own reader (or a TFRecord walk), the MLflow
runs from a local file store with ``MlflowClient``, W&B offline runs from their run files; the
values are compared with the metrics rows the loop recorded in its run directory.
"""

from __future__ import annotations

import importlib.util
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

import loop_fakes as fakes
from tracking_readers import read_scalars, tensorboard_reader_available

import diverseevol.tracking as tracking
from diverseevol import EvolutionLoop
from diverseevol.cli import EXIT_OK, EXIT_USAGE, main
from diverseevol.errors import ConfigError, OptionalDependencyError, ValidationError
from diverseevol.run.result import METRIC_KEYS, EvolutionResult
from diverseevol.tracking import (
    MLflowCallback,
    TensorBoardCallback,
    normalize_report_to,
    numeric_metrics,
    tracking_callbacks,
)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


needs_tensorboard = pytest.mark.skipif(
    not (tensorboard_reader_available() and (_installed("tensorboardX") or _installed("torch"))),
    reason="needs a TensorBoard writer (torch + tensorboard, or tensorboardX) and a reader",
)
needs_mlflow = pytest.mark.skipif(not _installed("mlflow"), reason="needs mlflow (mlflow-skinny is enough)")

ROUNDS = 2


def _loop(run_dir: Path, judge: object = None, **kwargs: object) -> EvolutionLoop:
    return EvolutionLoop(
        fakes.make_records(),
        trainer=fakes.FakeTrainer(),
        embedder=fakes.FakeEmbedder(),
        judge=judge if judge is not None else fakes.FakeJudge(),
        init_size=10,
        k=5,
        rounds=ROUNDS,
        run_dir=run_dir,
        progress=False,
        **kwargs,
    )


def _expected(rows: list[dict]) -> dict[str, dict[int, float]]:
    """``{key: {round: value}}``: every finite number of the recorded rows but the round itself."""
    out: dict[str, dict[int, float]] = {}
    for row in rows:
        for key, value in row.items():
            if key != "round" and isinstance(value, (int, float)) and not isinstance(value, bool):
                if math.isfinite(value):
                    out.setdefault(key, {})[row["round"]] = float(value)
    return out


def _assert_logged(logged: dict[str, list[tuple[int, float]]], rows: list[dict]) -> None:
    expected = _expected(rows)
    # the test means something: bookkeeping, measurements, timings and judge metrics are there
    needed = {"pool_size", "n_new", "vendi", "covering_radius", "time_train_s", "accuracy", "norm"}
    assert needed <= set(expected)
    assert set(logged) == set(expected)
    for key, by_round in expected.items():
        steps = dict(logged[key])
        assert len(logged[key]) == len(by_round), (key, logged[key])
        assert sorted(steps) == sorted(by_round), key
        for t, value in by_round.items():
            assert steps[t] == pytest.approx(value, rel=1e-6, abs=1e-6), (key, t)


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A local MLflow file store in tmp_path (MLflow 3 wants an explicit opt-in for file stores)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    return uri


# --------------------------------------------------------------------------------------------
# report_to names
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, expected",
    [
        (None, ()),
        ("none", ()),
        ([], ()),
        (["none"], ()),
        ("tensorboard", ("tensorboard",)),
        ("MLflow", ("mlflow",)),
        (["mlflow", "tensorboard", "mlflow"], ("mlflow", "tensorboard")),
        (("wandb", "none", "tensorboard"), ("wandb", "tensorboard")),
    ],
)
def test_report_to_is_spelled_as_in_transformers(value, expected):
    assert normalize_report_to(value) == expected


def test_all_means_every_installed_integration():
    installed = [
        name
        for name, modules in (("tensorboard", ["tensorboard", "tensorboardX"]), ("mlflow", ["mlflow"]),
                              ("wandb", ["wandb"]))
        if any(_installed(m) for m in modules)
    ]
    assert normalize_report_to("all") == tuple(installed)
    assert normalize_report_to(["all", "tensorboard"]) == tuple(dict.fromkeys([*installed, "tensorboard"]))


@pytest.mark.parametrize("value", ["tensorbord", ["mlflow", "comet"], 3, [None], {"tensorboard": 1}])
def test_unknown_integration_is_refused_with_the_choices(value):
    with pytest.raises(ValidationError) as info:
        normalize_report_to(value)
    assert isinstance(info.value, ValueError)
    assert "tensorboard" in str(info.value) and "mlflow" in str(info.value)


def test_loop_refuses_an_unknown_integration_when_built(tmp_path):
    with pytest.raises(ValidationError, match="tensorbord"):
        _loop(tmp_path / "run", report_to="tensorbord")
    assert not (tmp_path / "run").exists()


def test_missing_package_names_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(tracking, "is_available", lambda module: False)
    with pytest.raises(OptionalDependencyError, match="pip install mlflow-skinny") as info:
        _loop(tmp_path / "run", report_to=["mlflow"])
    assert isinstance(info.value, ImportError)
    with pytest.raises(OptionalDependencyError, match="pip install tensorboard"):
        tracking_callbacks("tensorboard")
    assert tracking_callbacks("none") == []


def test_numeric_metrics_keeps_finite_numbers_but_the_round():
    row = {"round": 3, "pool_size": 20, "vendi": 4.5, "vendi_reference": None, "flag": True,
           "name": "x", "per_group": {"a": 1.0}, "curve": [1.0, 2.0], "bad": float("nan"),
           "huge": float("inf"), "np": np.float32(0.25), "count": np.int64(7)}
    assert numeric_metrics(row) == {"pool_size": 20.0, "vendi": 4.5, "np": 0.25, "count": 7.0}


# --------------------------------------------------------------------------------------------
# TensorBoard
# --------------------------------------------------------------------------------------------
@needs_tensorboard
def test_tensorboard_event_files_hold_every_numeric_metric_per_round(tmp_path):
    run_dir = tmp_path / "run"
    result = _loop(run_dir, report_to="tensorboard").run()
    rows = EvolutionResult.load(run_dir).metrics  # what the run directory recorded
    assert len(rows) == ROUNDS + 1 and rows == result.metrics
    assert set(METRIC_KEYS) <= set(rows[0])
    _assert_logged(read_scalars(run_dir / "tensorboard"), rows)


@needs_tensorboard
@pytest.mark.skipif(not (_installed("tensorboard") and _installed("tensorboardX")),
                    reason="compares TensorBoard's reader with the TFRecord walk")
def test_both_event_readers_agree(tmp_path):
    _loop(tmp_path / "run", report_to="tensorboard").run()
    log_dir = tmp_path / "run" / "tensorboard"
    assert read_scalars(log_dir, "tensorboard") == read_scalars(log_dir, "records")


@needs_tensorboard
def test_tensorboard_callback_with_its_own_directory_and_a_user_callback(tmp_path):
    events: list[tuple] = []

    class Recorder:
        def on_run_start(self, run_dir, config):
            events.append(("start", Path(run_dir), config["k"]))

        def on_round_end(self, round, row):
            events.append(("round", round))

        def on_run_end(self, result, error):
            events.append(("end", len(result.pools), error))

    log_dir = tmp_path / "tb"
    _loop(tmp_path / "run", callbacks=[TensorBoardCallback(log_dir), Recorder()]).run()
    assert events == [
        ("start", tmp_path / "run", 5), ("round", 0), ("round", 1), ("round", 2), ("end", 3, None)
    ]
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert sorted(step for step, _ in read_scalars(log_dir)["pool_size"]) == [0, 1, 2]


# --------------------------------------------------------------------------------------------
# MLflow
# --------------------------------------------------------------------------------------------
@needs_mlflow
def test_mlflow_file_store_holds_one_run_with_every_metric_and_the_config(tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    run_dir = tmp_path / "run"
    _loop(run_dir, report_to="mlflow").run()
    client = MlflowClient(tracking_uri=mlflow_store)
    runs = client.search_runs(["0"])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.tags["diverseevol.run_dir"] == str(run_dir.resolve())
    assert run.data.params["k"] == "5" and run.data.params["sampler"] == "kcenter"
    assert run.data.params["rounds"] == str(ROUNDS)
    rows = EvolutionResult.load(run_dir).metrics
    logged = {
        key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
        for key in run.data.metrics
    }
    _assert_logged(logged, rows)


@needs_mlflow
def test_mlflow_experiment_name_and_run_name(tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    cb = MLflowCallback(mlflow_store, "diverseevol-tests", run_name="kcenter-seed0", tags={"who": "test"})
    _loop(tmp_path / "run", callbacks=[cb]).run()
    client = MlflowClient(tracking_uri=mlflow_store)
    experiment = client.get_experiment_by_name("diverseevol-tests")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "kcenter-seed0" and run.data.tags["who"] == "test"
    assert run.info.run_id == cb.run_id
    assert [m.step for m in client.get_metric_history(run.info.run_id, "pool_size")] == [0, 1, 2]


class _FailingJudge(fakes.FakeJudge):
    """Raises in ``fail_round`` (a crash in the middle of a run)."""

    def __init__(self, fail_round: int) -> None:
        super().__init__()
        self.fail_round = fail_round

    def __call__(self, model, round):
        if round == self.fail_round:
            raise RuntimeError("judge crashed")
        return super().__call__(model, round)


@needs_mlflow
@needs_tensorboard
def test_failed_run_is_marked_failed_and_its_resume_continues_the_same_tracking_run(tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    run_dir = tmp_path / "run"
    ended: list = []

    class EndRecorder:
        def on_run_end(self, result, error):
            ended.append((result, error))

    with pytest.raises(RuntimeError, match="judge crashed"):
        _loop(run_dir, judge=_FailingJudge(1), report_to=["tensorboard", "mlflow"],
              callbacks=[EndRecorder()]).run()
    assert ended[0][0] is None and isinstance(ended[0][1], RuntimeError)
    client = MlflowClient(tracking_uri=mlflow_store)
    (run,) = client.search_runs(["0"])
    assert run.info.status == "FAILED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "pool_size")] == [0]
    assert sorted(step for step, _ in read_scalars(run_dir / "tensorboard")["pool_size"]) == [0]

    _loop(run_dir, report_to=["tensorboard", "mlflow"]).run()  # resume: rounds 1 and 2 only
    (again,) = client.search_runs(["0"])
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    rows = EvolutionResult.load(run_dir).metrics
    logged = {
        key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
        for key in again.data.metrics
    }
    _assert_logged(logged, rows)
    _assert_logged(read_scalars(run_dir / "tensorboard"), rows)

    # a finished run replayed logs nothing; started over, it is a new MLflow run
    _loop(run_dir, report_to="mlflow").run()
    assert len(client.search_runs(["0"])) == 1
    _loop(run_dir, report_to="mlflow", overwrite=True).run()
    assert len(client.search_runs(["0"])) == 2


# --------------------------------------------------------------------------------------------
# configuration file and CLI
# --------------------------------------------------------------------------------------------
@pytest.fixture
def config_files(tmp_path: Path) -> Path:
    records = [{"instruction": f"task {i}", "input": "", "output": f"answer {i}"} for i in range(40)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    np.save(tmp_path / "e.npy", fakes.base_features(40))
    cfg = tmp_path / "c.toml"
    cfg.write_text('run_dir = "runs/x"\nreport_to = "tensorboard"\n[data]\npath = "d.jsonl"\n'
                   'embeddings = "e.npy"\n[sampler]\nname = "kcenter"\nparams = {metric = "cosine"}\n'
                   '[budget]\ninit_size = 4\nk = 3\nrounds = 2\n')
    return cfg


@needs_tensorboard
def test_config_report_to_logs_every_round(config_files):
    from diverseevol.config import load_config

    assert load_config(config_files).report_to == "tensorboard"
    assert main(["run", str(config_files)]) == EXIT_OK
    run_dir = config_files.parent / "runs" / "x"
    rows = EvolutionResult.load(run_dir).metrics
    logged = read_scalars(run_dir / "tensorboard")
    assert sorted(step for step, _ in logged["pool_size"]) == [0, 1, 2]
    # the last round is not embedded by default (no selection follows it): no Vendi to log there
    assert dict(logged["vendi"]) == pytest.approx({r["round"]: r["vendi"] for r in rows if r["vendi"] is not None})


@needs_mlflow
def test_cli_report_to_overrides_the_config(config_files, mlflow_store):
    from mlflow.tracking import MlflowClient

    assert main(["run", str(config_files), "--report-to", "mlflow"]) == EXIT_OK
    run_dir = config_files.parent / "runs" / "x"
    assert not (run_dir / "tensorboard").exists()
    (run,) = MlflowClient(tracking_uri=mlflow_store).search_runs(["0"])
    assert run.info.run_name == "x" and run.info.status == "FINISHED"
    assert main(["run", str(config_files), "--report-to", "none", "--overwrite"]) == EXIT_OK
    assert not (run_dir / "tensorboard").exists()


def test_misspelt_report_to_is_a_usage_error(config_files, capsys):
    from diverseevol.config import load_config

    assert main(["run", str(config_files), "--report-to", "tensorbord"]) == EXIT_USAGE
    assert "tensorbord" in capsys.readouterr().err
    config_files.write_text(config_files.read_text().replace('"tensorboard"', '["mlflow", "mlfow"]'))
    with pytest.raises(ConfigError, match="report_to: .*'mlfow'"):
        load_config(config_files)
    assert main(["run", str(config_files)]) == EXIT_USAGE


# --------------------------------------------------------------------------------------------
# Weights & Biases (offline)
# --------------------------------------------------------------------------------------------
@pytest.mark.skipif(not _installed("wandb"), reason="wandb is not installed (it is optional)")
def test_wandb_offline_run_files_hold_every_round(tmp_path, monkeypatch):
    from tracking_readers import read_wandb_offline

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    import wandb

    run_dir = tmp_path / "run"
    _loop(run_dir, report_to="wandb").run()
    assert wandb.run is None  # never the global run: the HF trainer's W&B logging opens its own
    logged = read_wandb_offline(run_dir)
    deadline = time.monotonic() + 30
    while logged["exit_code"] is None and time.monotonic() < deadline:  # wandb-core writes the file behind
        time.sleep(0.2)
        logged = read_wandb_offline(run_dir)
    assert logged["name"] == "run" and logged["exit_code"] == 0, logged
    assert logged["config"]["k"] == 5 and logged["config"]["sampler"] == "kcenter"
    history = {
        key: [(row["round"], row[key]) for row in logged["history"] if key in row]
        for row in logged["history"]
        for key in row
        if not key.startswith("_") and key != "round"
    }
    _assert_logged(history, EvolutionResult.load(run_dir).metrics)


def test_two_tensorboardx_writers_in_the_same_second_keep_both_event_files(tmp_path, monkeypatch):
    """tensorboardX names event files by the second: a resume right after a crash must not replace the first file."""
    tbx = pytest.importorskip("tensorboardX")
    import tensorboardX.event_file_writer as efw

    from diverseevol import tracking

    monkeypatch.setattr(tracking, "_summary_writer_class", lambda: tbx.SummaryWriter)
    monkeypatch.setattr(efw.time, "time", lambda: 1_700_000_000.0)  # both writers open "in the same second"
    for round_ in (0, 1):
        cb = tracking.TensorBoardCallback(tmp_path / "tb")
        cb._open(tmp_path, "run", {})
        cb._log(round_, {"pool_size": 10.0 + 5 * round_})
        cb._close(None)
    assert len(list((tmp_path / "tb").glob("events.out.tfevents.*"))) == 2
    assert sorted(read_scalars(tmp_path / "tb", reader="records")["pool_size"]) == [(0, 10.0), (1, 15.0)]
