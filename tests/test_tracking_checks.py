"""Issue 22 item 8: a tracker is checked before round 0 trains (the package imports for real, the
store is writable, a server answers within a short timeout), with a typed error; a tracker that
fails later raises TrackingError saying the rounds are recorded. Also: a TensorBoard event file
cut in the middle of a record by kill -9 is repaired on resume."""

from __future__ import annotations

import http.server
import importlib.util
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import loop_fakes as fakes
from tracking_readers import read_scalars

from diverseevol import EvolutionLoop
from diverseevol.errors import OptionalDependencyError, TrackingError
from diverseevol.tracking import MLflowCallback, TensorBoardCallback

needs_mlflow = pytest.mark.skipif(not importlib.util.find_spec("mlflow"), reason="needs mlflow")
needs_tbx = pytest.mark.skipif(not importlib.util.find_spec("tensorboardX"), reason="needs tensorboardX")


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "0")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # MLflow's defaults write relative to the working directory


def _loop(run_dir: Path, trainer: fakes.FakeTrainer, **kwargs) -> EvolutionLoop:
    return EvolutionLoop(fakes.make_records(), trainer=trainer, embedder=fakes.FakeEmbedder(), init_size=6, k=5,
                         rounds=1, run_dir=run_dir, progress=False, **kwargs)


def _refused_before_round_0(tmp_path: Path, error: type, **kwargs) -> str:
    trainer = fakes.FakeTrainer()
    start = time.monotonic()
    with pytest.raises(error) as info:
        _loop(tmp_path / "run", trainer, **kwargs).run()
    assert trainer.calls == [], "round 0 trained before the tracker was checked"
    assert time.monotonic() - start < 30
    return str(info.value)


@needs_mlflow
def test_mlflow_skinny_defaults_are_refused_before_round_0(tmp_path):
    text = _refused_before_round_0(tmp_path, TrackingError, report_to="mlflow")
    assert "MLFLOW_TRACKING_URI" in text and "file:///" in text


@needs_mlflow
def test_an_unreachable_server_is_refused_quickly(tmp_path, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://bob:hunter22@127.0.0.1:{port}")
    text = _refused_before_round_0(tmp_path, TrackingError, report_to="mlflow")
    assert f"127.0.0.1:{port}" in text and "/health" in text and "hunter22" not in text


class _NotMlflow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = b"OK" if self.path == "/health" else b"<html>not mlflow</html>"
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args):
        pass


@needs_mlflow
def test_a_server_that_answers_health_but_is_no_mlflow_store_is_refused(tmp_path, monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotMlflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    try:
        cb = MLflowCallback(f"http://127.0.0.1:{server.server_port}")
        text = _refused_before_round_0(tmp_path, TrackingError, callbacks=[cb])
    finally:
        server.shutdown()
    assert "cannot open the tracking store" in text


@needs_mlflow
@needs_tbx
def test_a_store_that_cannot_be_written_is_refused(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    text = _refused_before_round_0(tmp_path, TrackingError, callbacks=[MLflowCallback((blocker / "mlruns").as_uri())])
    assert str(blocker) in text and "not a directory" in text
    text = _refused_before_round_0(tmp_path, TrackingError, callbacks=[TensorBoardCallback(blocker / "tb")])
    assert str(blocker) in text


@needs_mlflow
def test_a_broken_install_that_find_spec_finds_is_caught(tmp_path, monkeypatch):
    fake = tmp_path / "site" / "mlflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise AttributeError('module protobuf has no attribute X')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")]:
        monkeypatch.delitem(sys.modules, name)
    importlib.invalidate_caches()
    assert importlib.util.find_spec("mlflow") is not None  # the old check passes
    text = _refused_before_round_0(tmp_path, OptionalDependencyError, report_to="mlflow")
    assert "installed but fails to import" in text and "AttributeError" in text and "pip install" in text


class _FailingWriter:
    def __init__(self, log_dir):
        pass

    def add_text(self, *args):
        pass

    def add_scalar(self, *args):
        raise ConnectionError("the log server went away")

    def flush(self):
        pass

    def close(self):
        pass


def test_a_tracker_failing_mid_run_is_a_tracking_error(tmp_path):
    cb = TensorBoardCallback(tmp_path / "tb", writer_factory=_FailingWriter)
    with pytest.raises(TrackingError) as info:
        _loop(tmp_path / "run", fakes.FakeTrainer(), callbacks=[cb]).run()
    text = str(info.value)
    assert "report_to='tensorboard'" in text and "the log server went away" in text and "resume" in text
    assert isinstance(info.value, RuntimeError)


@needs_tbx
def test_a_torn_last_record_is_cut_off_on_resume(tmp_path):
    """kill -9 in the middle of a record's write leaves part of it at the end of the event file."""
    run_dir = tmp_path / "run"
    _loop(run_dir, fakes.FakeTrainer(), report_to="tensorboard").run()
    (event_file,) = (run_dir / "tensorboard").glob("events.out.tfevents.*")
    whole = event_file.read_bytes()
    event_file.write_bytes(whole + whole[-30:-3])  # a partial record
    _loop(run_dir, fakes.FakeTrainer(), report_to="tensorboard").run()  # replays: logs nothing
    assert event_file.read_bytes() == whole
    assert len(list((run_dir / "tensorboard").iterdir())) == 1
    steps = sorted(step for step, _ in read_scalars(run_dir / "tensorboard", reader="records")["pool_size"])
    assert steps == [0, 1]
