"""Experiment tracking for the loop: the per-round metrics in TensorBoard, MLflow or W&B.

``EvolutionLoop(report_to=...)`` takes the names transformers uses for ``TrainingArguments.report_to``
(``"tensorboard"``, ``"mlflow"``, ``"wandb"``, ``"all"``, ``"none"`` or a list of them) and turns
each into a loop callback of this module. Each callback checks its tracker before round 0 (the
package imports, the store is writable, a server answers), logs every numeric value of each
round's metrics row (:data:`~diverseevol.run.result.METRIC_KEYS` plus the judge's metrics) at
``step = round``, and closes its tracking run when the loop ends (as failed when it raised).

Logging is idempotent by step: before it logs anything, a callback reads back what its tracker
already holds for the run directory (TensorBoard: its own event files; MLflow: the run tagged with
the run directory; W&B: the marker it writes once a W&B run finished), and then logs only the
values the tracker does not hold, for the rounds a resumed loop replays from disk as well as for
those it runs. After ``kill -9`` at any point and a resume, each round's values are therefore held
exactly once (see ``docs/tracking.md`` for what holds per integration). A run directory is told
apart from an earlier one at the same path by the ``run_id`` of its ``config.json``.

The tracking packages are imported only when a run starts; this module imports only the standard
library and the base modules :mod:`diverseevol._optional`, :mod:`diverseevol._files` and
:mod:`diverseevol.errors`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import numbers
import os
import re
import struct
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._files import read_json, redact_text, write_json
from ._optional import is_available
from .errors import DiverseEvolError, OptionalDependencyError, TrackingError, ValidationError

__all__ = [
    "REPORT_TO",
    "MLflowCallback",
    "TensorBoardCallback",
    "TrackingCallback",
    "WandbCallback",
    "normalize_report_to",
    "numeric_metrics",
    "tracking_callbacks",
]

#: The integrations ``report_to`` accepts (as transformers spells them), besides "all" and "none".
REPORT_TO: tuple[str, ...] = ("tensorboard", "mlflow", "wandb")

#: integration -> the modules that can serve it (any one is enough)
_MODULES: dict[str, tuple[str, ...]] = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "mlflow": ("mlflow",),
    "wandb": ("wandb",),
}

#: integration -> what to install
_INSTALL: dict[str, str] = {
    "tensorboard": "pip install tensorboard (or tensorboardX)",
    "mlflow": "pip install mlflow-skinny (or mlflow)",
    "wandb": "pip install wandb",
}


def normalize_report_to(report_to: str | Sequence[str] | None) -> tuple[str, ...]:
    """The integrations named by ``report_to``, checked, in order and without repeats.

    Parameters
    ----------
    report_to : str, sequence of str or None
        ``"tensorboard"``, ``"mlflow"``, ``"wandb"``, a list of them, ``"all"`` (every one whose
        package is installed) or ``"none"`` / ``None`` / ``[]`` (no tracking).

    Returns
    -------
    tuple of str
        Names from :data:`REPORT_TO`; empty for no tracking.

    Raises
    ------
    ValidationError
        For a name that is not an integration, or a value that is neither a string nor a list.
    """
    if report_to is None:
        return ()
    if isinstance(report_to, str):
        names: list[Any] = [report_to]
    elif isinstance(report_to, Iterable) and not isinstance(report_to, Mapping):
        names = list(report_to)
    else:
        raise ValidationError(
            f"report_to must be a string or a list of strings (one of {[*REPORT_TO, 'all', 'none']}); "
            f"got {report_to!r}."
        )
    out: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise ValidationError(
                f"report_to entries must be strings among {[*REPORT_TO, 'all', 'none']}; got {name!r} in "
                f"{report_to!r}."
            )
        key = name.strip().lower()
        if key == "none":
            continue
        if key == "all":
            out.extend(n for n in REPORT_TO if _installed(n))
            continue
        if key not in REPORT_TO:
            raise ValidationError(
                f"report_to: unknown integration {name!r}; expected one of {[*REPORT_TO, 'all', 'none']} "
                f"(as transformers spells them), or a list of them."
            )
        out.append(key)
    return tuple(dict.fromkeys(out))


def check_installed(names: Iterable[str]) -> None:
    """Raise :class:`~diverseevol.errors.OptionalDependencyError` naming what to install, without importing.

    Raises
    ------
    OptionalDependencyError
        For the first integration in ``names`` whose package is not installed.
    """
    for name in names:
        if not _installed(name):
            raise OptionalDependencyError(
                f"report_to={name!r} needs the {name} package, which is not installed. "
                f"Install it with: {_INSTALL[name]}"
            )


def _installed(name: str) -> bool:
    return any(is_available(module) for module in _MODULES[name])


def _import(module: str, integration: str) -> Any:
    """Import ``module`` for real: a missing package or a broken install (one that ``find_spec``
    finds but that fails to import) raises :class:`OptionalDependencyError` naming the fix."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # a broken install fails with anything: ImportError, AttributeError...
        missing = isinstance(exc, ImportError) and not is_available(module.split(".")[0])
        state = "is not installed" if missing else "is installed but fails to import"
        raise OptionalDependencyError(
            f"report_to={integration!r} needs the module {module!r}, which {state} "
            f"({type(exc).__name__}: {exc}). Install (or reinstall) it with: {_INSTALL[integration]}"
        ) from exc


def tracking_callbacks(report_to: str | Sequence[str] | None) -> list[TrackingCallback]:
    """One callback per integration of ``report_to``, with default settings.

    The defaults follow the integrations' own environment variables (``MLFLOW_TRACKING_URI``,
    ``MLFLOW_EXPERIMENT_NAME``, ``WANDB_PROJECT``, ``WANDB_MODE``...); construct the classes
    yourself for other settings.

    Raises
    ------
    ValidationError
        For an unknown name.
    OptionalDependencyError
        When an integration's package is not installed.
    """
    names = normalize_report_to(report_to)
    check_installed(names)
    classes: dict[str, type[TrackingCallback]] = {
        "tensorboard": TensorBoardCallback,
        "mlflow": MLflowCallback,
        "wandb": WandbCallback,
    }
    return [classes[name]() for name in names]


def numeric_metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of a metrics row, as floats, without ``"round"`` (it is the step).

    Booleans, None, strings, lists and mappings are left out.
    """
    out: dict[str, float] = {}
    for key, value in row.items():
        if key == "round" or isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue
        value = float(value)
        if math.isfinite(value):
            out[str(key)] = value
    return out


def run_key(run_dir: str | Path) -> str:
    """The identity of the run recorded in ``run_dir``, stable across resumes (16 hex digits).

    The ``run_id`` of its ``config.json``; for a run directory written before ``run_id`` existed,
    a digest of its path and ``created_at``; without a readable ``config.json``, a digest of the path.
    """
    run_dir = Path(run_dir).resolve()
    header: Any = None
    try:
        header = read_json(run_dir / "config.json")
    except (OSError, ValueError):
        pass
    if isinstance(header, dict) and isinstance(header.get("run_id"), str):
        return re.sub(r"[^0-9A-Za-z]", "", header["run_id"])[:32] or "run"
    created = header.get("created_at") if isinstance(header, dict) else None
    return hashlib.sha256(f"{run_dir}|{created}".encode()).hexdigest()[:16]


#: A tracker's holdings: round -> the names of the values it holds for that round.
Held = dict[int, set[str]]


class TrackingCallback:
    """Base of the tracking callbacks: one tracking run per run directory, metrics at ``step = round``.

    The loop calls ``on_run_start(run_dir, config)`` once a run directory is open (the callback
    then checks its tracker: :meth:`check`), ``on_round_replayed(round, metrics_row)`` for each
    round a resumed loop reads back from disk, ``on_round_end(round, metrics_row)`` after each
    round it runs, and ``on_run_end(result, error)`` at the end (``error`` is the exception that
    stopped the loop, else None). All on rank 0 only.

    At the first round event the callback reads what its tracker already holds for this run
    directory (:meth:`_read_held`); from then on it logs only the values the tracker does not hold,
    opening (or continuing) the tracking run at the first such value. So replaying a run directory
    whose rounds are all held opens nothing, and a resume after ``kill -9`` fills exactly the
    missing values. A tracking run left unfinished by a killed loop is closed when a later run of
    the same directory ends without error.

    Subclasses implement :meth:`_read_held`, :meth:`_open`, :meth:`_log` and :meth:`_close`, and
    may extend :meth:`check` and :meth:`_name`.

    Parameters
    ----------
    run_name : str, optional
        The tracking run's name; default: the run directory's name.
    """

    #: the integration's ``report_to`` name
    integration: str = ""

    def __init__(self, run_name: str | None = None) -> None:
        self.run_name = run_name
        self._run: tuple[Path, str, dict[str, Any], str] | None = None  # set by on_run_start
        self._open_now = False
        self._held: Held | None = None  # what the tracker holds; read at the first round event
        self._unfinished = False  # the tracker holds a run of this directory that was never closed

    # ---- loop events --------------------------------------------------------------------
    def on_run_start(self, run_dir: str | Path, config: Mapping[str, Any]) -> None:
        """Remember the loop run recorded in ``run_dir`` and check the tracker (:meth:`check`).

        Raises
        ------
        OptionalDependencyError
            When the tracker's package is missing or fails to import.
        TrackingError
            When its store is not writable or its server does not answer.
        """
        run_dir = Path(run_dir)
        self._run = (run_dir, self.run_name or run_dir.name, dict(config), run_key(run_dir))
        self._open_now, self._held, self._unfinished = False, None, False
        self._guard("check", lambda: self.check(run_dir))

    def on_round_replayed(self, round: int, metrics_row: Mapping[str, Any]) -> None:
        """Log the values of a round read back from disk that the tracker does not hold yet."""
        self._record(int(round), metrics_row)

    def on_round_end(self, round: int, metrics_row: Mapping[str, Any]) -> None:
        """Log the row's numeric values (:func:`numeric_metrics`) at step ``round``, those not held yet."""
        self._record(int(round), metrics_row)

    def on_run_end(self, result: Any, error: BaseException | None = None) -> None:
        """Close the tracking run (marked failed when ``error`` is not None).

        A run left unfinished by an earlier, killed loop is closed as finished when this run
        ended without error, even when it had nothing left to log.
        """
        run, self._run = self._run, None
        if run is not None and not self._open_now and self._unfinished and error is None:
            self._guard("open", lambda: self._open(*run))
            self._open_now = True
        if self._open_now:
            self._open_now = False
            self._guard("close", lambda: self._close(error))

    def _record(self, step: int, metrics_row: Mapping[str, Any]) -> None:
        if self._run is None:
            raise RuntimeError(
                f"{type(self).__name__} got a round event before on_run_start; pass the callback to "
                f"EvolutionLoop(callbacks=[...]) so the loop opens the run first."
            )
        run = self._run
        if self._held is None:
            self._held = self._guard("read", lambda: self._read_held(*run))
        held = self._held.setdefault(step, set())
        missing = {k: v for k, v in numeric_metrics(metrics_row).items() if self._name(k) not in held}
        if not missing:
            return
        if not self._open_now:
            self._guard("open", lambda: self._open(*run))
            self._open_now = True
        self._guard("log", lambda: self._log(step, missing))
        held.update(self._name(k) for k in missing)

    def _guard(self, what: str, action: Any) -> Any:
        """``action()``, with a failure of the tracker raised as :class:`TrackingError`."""
        try:
            return action()
        except (DiverseEvolError, KeyboardInterrupt):
            raise
        except Exception as exc:
            done = " The rounds are recorded in the run directory: resume the run to log them." if what == "log" else ""
            detail = redact_text(" ".join(str(exc).split()))[:500]
            raise TrackingError(
                f"report_to={self.integration!r}: the tracker failed to {what} ({type(exc).__name__}: {detail}).{done}"
            ) from exc

    # ---- for subclasses -------------------------------------------------------------------
    def check(self, run_dir: Path) -> None:
        """Check the tracker before round 0 (imports, store, server); raise a typed error.

        Raises
        ------
        OptionalDependencyError, TrackingError
        """

    def _name(self, key: str) -> str:
        """The tracker's name for the metric ``key``."""
        return key

    def _read_held(self, run_dir: Path, name: str, config: dict[str, Any], key: str) -> Held:
        """What the tracker holds for this run directory; may set ``self._unfinished``."""
        raise NotImplementedError

    def _open(self, run_dir: Path, name: str, config: dict[str, Any], key: str = "") -> None:
        raise NotImplementedError

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        raise NotImplementedError

    def _close(self, error: BaseException | None) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(run_name={self.run_name!r})"


def _flat_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``config`` flattened to ``{"a.b": "value"}`` strings (nested mappings joined with dots)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat_params(value, name + "."))
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value, default=str)
    return out


def _check_writable(path: Path, integration: str) -> None:
    """Raise :class:`TrackingError` unless files can be created in ``path`` (or where it would be created)."""
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    problem = None
    if not existing.is_dir():
        problem = f"{existing} is not a directory"
    else:
        try:
            with tempfile.TemporaryFile(dir=existing):
                pass
        except OSError as exc:
            problem = f"{exc.strerror or exc} in {existing}"
    if problem is not None:
        raise TrackingError(
            f"report_to={integration!r} writes to {path}, which cannot be written: {problem}. Make it a writable "
            f"directory or choose another location, before round 0 trains."
        )


# --------------------------------------------------------------------------------------------
# TensorBoard
# --------------------------------------------------------------------------------------------
_TAG_UNSAFE = re.compile(r"[^-/\w.]")  # what TensorBoard writers replace in tags
_EVENT_GLOB = "events.out.tfevents.*"


class TensorBoardCallback(TrackingCallback):
    """Write each round's metrics as TensorBoard scalars (tag = metric name, step = round).

    The writer is ``torch.utils.tensorboard.SummaryWriter`` when torch and tensorboard are
    installed, else ``tensorboardX.SummaryWriter`` (as in transformers). The run's configuration
    is written once as the text summary ``"config"``. Each loop run writes a new event file whose
    name carries the run directory's identity; a resumed run reads the earlier ones back and writes
    only the scalars they lack (a record cut by ``kill -9`` at the end of a file is cut off first).

    Parameters
    ----------
    log_dir : str or Path, optional
        Where the event files go; default ``<run_dir>/tensorboard`` (``tensorboard --logdir
        <run_dir>`` then also shows the trainer's logs written below it).
    run_name : str, optional
        Unused by TensorBoard beyond the directory; kept for a uniform signature.
    writer_factory : callable, optional
        ``writer_factory(log_dir) -> writer`` with ``add_scalar``, ``add_text``, ``flush`` and
        ``close``; default: the SummaryWriter described above. What such a writer wrote cannot be
        read back, so every loop run logs every round to it.
    """

    integration = "tensorboard"

    def __init__(
        self, log_dir: str | Path | None = None, *, run_name: str | None = None, writer_factory: Any = None
    ) -> None:
        super().__init__(run_name)
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.writer_factory = writer_factory
        self.writer: Any = None
        self._config_written = False

    def _dir(self, run_dir: Path) -> Path:
        return self.log_dir if self.log_dir is not None else run_dir / "tensorboard"

    def check(self, run_dir: Path) -> None:
        """The writer imports and the log directory is writable."""
        if self.writer_factory is None:
            _summary_writer_class()
        _check_writable(self._dir(run_dir), self.integration)

    def _name(self, key: str) -> str:
        return _TAG_UNSAFE.sub("_", key).lstrip("/")

    def _read_held(self, run_dir: Path, name: str, config: dict[str, Any], key: str) -> Held:
        self._config_written = False
        held: Held = {}
        if self.writer_factory is not None:
            return held
        files = sorted(self._dir(run_dir).glob(f"{_EVENT_GLOB}.diverseevol-{key}.*"))
        for path in files:
            for step, tag, scalar in _read_events(path):
                if scalar:
                    held.setdefault(step, set()).add(tag)
                elif tag == "config":
                    self._config_written = True
        return held

    def _open(self, run_dir: Path, name: str, config: dict[str, Any], key: str = "") -> None:
        log_dir = self._dir(run_dir)
        if self.writer_factory is not None:
            self.writer = self.writer_factory(str(log_dir))
        else:
            # tensorboardX names event files by the second: the unique suffix keeps a resume within the same
            # second from replacing the killed run's file; the run key lets a resume find its own files.
            suffix = f".diverseevol-{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            self.writer = _summary_writer_class()(str(log_dir), filename_suffix=suffix)
        if not self._config_written:
            self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```", 0)
            self._config_written = True
        self.writer.flush()

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(self._name(key), value, step)
        self.writer.flush()  # a crash loses nothing already logged

    def _close(self, error: BaseException | None) -> None:
        self.writer.close()
        self.writer = None


def _summary_writer_class() -> Any:
    """torch's SummaryWriter (needs tensorboard), else tensorboardX's."""
    if is_available("torch") and is_available("tensorboard"):
        try:
            from torch.utils.tensorboard import SummaryWriter

            return SummaryWriter
        except ImportError:
            pass
    if is_available("tensorboardX"):
        return _import("tensorboardX", "tensorboard").SummaryWriter
    raise OptionalDependencyError(
        "report_to='tensorboard' needs a TensorBoard writer: torch with the tensorboard package, or "
        f"tensorboardX. Install one with: {_INSTALL['tensorboard']}"
    )


def _event_proto() -> Any:
    """The ``Event`` protobuf class of whichever TensorBoard writer package is installed."""
    for module in ("tensorboardX.proto.event_pb2", "tensorboard.compat.proto.event_pb2"):
        if is_available(module.split(".")[0]):
            return _import(module, "tensorboard").Event
    raise OptionalDependencyError(
        f"report_to='tensorboard' cannot read its event files without tensorboardX or tensorboard. "
        f"Install one with: {_INSTALL['tensorboard']}"
    )


def _read_events(path: Path) -> list[tuple[int, str, bool]]:
    """``(step, tag, is_scalar)`` of every summary value of the event file ``path``.

    The file is a sequence of TFRecords (u64 length, u32 CRC, payload, u32 CRC). A record cut
    short by a killed writer can only be the last one: the file is truncated to the records
    before it, so that every reader sees a well-formed file.
    """
    event_class = _event_proto()
    data = path.read_bytes()
    out: list[tuple[int, str, bool]] = []
    pos = 0
    while pos < len(data):
        if pos + 12 > len(data):
            break
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        end = pos + 12 + length + 4
        if end > len(data):
            break
        event = event_class.FromString(data[pos + 12 : pos + 12 + length])
        for value in event.summary.value:
            out.append((int(event.step), value.tag, value.HasField("simple_value")))
        pos = end
    if pos < len(data):
        os.truncate(path, pos)
    return out


# --------------------------------------------------------------------------------------------
# MLflow
# --------------------------------------------------------------------------------------------
#: characters MLflow accepts in metric and parameter names
_MLFLOW_UNSAFE = re.compile(r"[^\w\-. /:]")
#: the tag that links an MLflow run to its run directory
RUN_DIR_TAG = "diverseevol.run_dir"
#: the tag that tells apart runs of the same path (config.json's run_id)
RUN_ID_TAG = "diverseevol.run_id"


class MLflowCallback(TrackingCallback):
    """Log each round's metrics to an MLflow run (step = round), the configuration as parameters.

    It uses ``mlflow.tracking.MlflowClient`` only, never the fluent ``mlflow.start_run``: no
    active run is left behind, so the Hugging Face trainer's own MLflow logging (``report_to``
    of :class:`~diverseevol.hf.HFTrainer`) opens its separate run per round. The run is tagged
    ``diverseevol.run_dir`` and ``diverseevol.run_id``: every run of the same run directory (a
    resume after a crash or ``kill -9``) continues that MLflow run, logs only the metric steps it
    lacks, and closes it as ``FINISHED``.

    Parameters
    ----------
    tracking_uri : str, optional
        Default: ``MLFLOW_TRACKING_URI``, else MLflow's default. A local folder is
        ``"file:///abs/path"`` (MLflow 3 needs ``MLFLOW_ALLOW_FILE_STORE=true`` for it).
    experiment_name : str, optional
        Created when missing. Default: ``MLFLOW_EXPERIMENT_NAME``, else MLflow's ``Default``.
    run_name : str, optional
        Default: the run directory's name.
    tags : mapping, optional
        More tags for the run.
    timeout : float, default 5.0
        Seconds to wait for an ``http(s)`` tracking server's ``/health`` before round 0.
    """

    integration = "mlflow"

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        *,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(run_name)
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.tags = dict(tags or {})
        self.timeout = float(timeout)
        self.client: Any = None
        self.run_id: str | None = None
        self._params: set[str] = set()  # the parameters the run already has

    def _uri(self) -> str | None:
        return self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None

    def check(self, run_dir: Path) -> None:
        """mlflow imports, a server answers ``/health`` within ``timeout``, the store opens."""
        _import("mlflow", self.integration)
        tracking = _import("mlflow.tracking", self.integration)
        uri = self._uri()
        scheme = urllib.parse.urlparse(uri or "").scheme
        if scheme in ("http", "https"):
            _check_server(uri, self.timeout)  # type: ignore[arg-type]
        elif scheme == "file":
            _check_writable(Path(urllib.request.url2pathname(urllib.parse.urlparse(uri).path)), self.integration)
        try:
            self.client = tracking.MlflowClient(tracking_uri=uri)
            self.client.get_experiment_by_name(self._experiment_name())
        except Exception as exc:
            raise TrackingError(
                redact_text(f"report_to='mlflow' cannot open the tracking store {uri or '(MLflow default)'} "
                f"({type(exc).__name__}: {' '.join(str(exc).split())[:400]}). Set MLFLOW_TRACKING_URI (or "
                f"MLflowCallback(tracking_uri=...)) to a server http://host:port or, with mlflow-skinny, a folder "
                f"file:///abs/path with MLFLOW_ALLOW_FILE_STORE=true.")
            ) from exc

    def _name(self, key: str) -> str:
        return _mlflow_key(key)

    def _experiment_name(self) -> str:
        return self.experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "Default"

    def _read_held(self, run_dir: Path, name: str, config: dict[str, Any], key: str) -> Held:
        self.run_id, self._params = None, set()
        found = self.client.get_experiment_by_name(self._experiment_name())
        if found is None:
            return {}
        path = str(run_dir.resolve()).replace("\\", "\\\\").replace("'", "\\'")
        runs = self.client.search_runs(
            [found.experiment_id],
            filter_string=f"tags.`{RUN_DIR_TAG}` = '{path}' and tags.`{RUN_ID_TAG}` = '{key}'",
            order_by=["start_time DESC"],
        )
        if not runs:
            return {}
        run = runs[0]
        self.run_id, self._params = str(run.info.run_id), set(run.data.params)
        self._unfinished = run.info.status != "FINISHED"
        held: Held = {}
        for metric in run.data.metrics:
            for point in self.client.get_metric_history(self.run_id, metric):
                held.setdefault(int(point.step), set()).add(metric)
        return held

    def _open(self, run_dir: Path, name: str, config: dict[str, Any], key: str = "") -> None:
        if self.run_id is not None:
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            found = self.client.get_experiment_by_name(self._experiment_name())
            experiment_id = found.experiment_id if found is not None else self.client.create_experiment(
                self._experiment_name()
            )
            tags = {RUN_DIR_TAG: str(run_dir.resolve()), RUN_ID_TAG: key, **self.tags}
            self.run_id = self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        self._log_params(config)

    def _log_params(self, config: dict[str, Any]) -> None:
        """The configuration's parameters the run does not have yet (a killed open may have left some out)."""
        from mlflow.entities import Param

        flat = {_mlflow_key(k): v[:6000] for k, v in _flat_params(config).items()}
        params = [Param(k, v) for k, v in flat.items() if k not in self._params]
        for start in range(0, len(params), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=params[start : start + 100])
        self._params.update(flat)

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(_mlflow_key(k), v, now, step) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def _close(self, error: BaseException | None) -> None:
        self.client.set_terminated(self.run_id, status="FINISHED" if error is None else "FAILED")


def _mlflow_key(key: str) -> str:
    return _MLFLOW_UNSAFE.sub("_", key)


def _check_server(uri: str, timeout: float) -> None:
    """Raise :class:`TrackingError` unless the MLflow server at ``uri`` answers ``/health`` within ``timeout`` s."""
    parts = urllib.parse.urlparse(uri)
    netloc = parts.netloc.rpartition("@")[2]  # without user:password (never shown; /health needs none)
    shown = parts._replace(netloc=netloc).geturl().rstrip("/")
    url = shown + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - http(s) only
            reply.read(64)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):  # it answers; the credentials are MLflow's business
            return
        problem = f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        problem = f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"
    else:
        return
    raise TrackingError(
        f"report_to='mlflow': the tracking server {shown} does not answer {url} within "
        f"{timeout:g} s ({problem}). Start the server (mlflow server --port ...), fix MLFLOW_TRACKING_URI, or "
        f"drop 'mlflow' from report_to; nothing was trained yet."
    )


# --------------------------------------------------------------------------------------------
# Weights & Biases
# --------------------------------------------------------------------------------------------
class WandbCallback(TrackingCallback):
    """Log each round's metrics to a W&B run, with ``round`` as the x-axis of every metric.

    The run is created with ``reinit="create_new"``, so it never becomes the global ``wandb.run``:
    the Hugging Face trainer's own W&B logging (``report_to`` of :class:`~diverseevol.hf.HFTrainer`)
    opens its separate run per round instead of writing into this one.

    W&B runs are not resumed (what a W&B run holds is not read back): each loop run that has
    something to log opens a new W&B run and logs every round of the run directory into it, the
    rounds read back from disk included, so the latest W&B run holds each round once. When it
    finishes without error the callback writes ``wandb/diverseevol-<run_id>.json`` in the W&B
    directory; a later replay of the finished run directory then opens no W&B run.

    Parameters
    ----------
    project : str, optional
        Default: ``WANDB_PROJECT``, else ``"diverseevol"``.
    run_name : str, optional
        Default: the run directory's name.
    mode : {"online", "offline", "disabled"}, optional
        Default: ``WANDB_MODE``, else W&B's default.
    dir : str or Path, optional
        Where W&B writes its local files; default the run directory.
    init_kwargs : mapping, optional
        More keyword arguments of ``wandb.init`` (``entity``, ``tags``, ``group``...).
    """

    integration = "wandb"

    def __init__(
        self,
        project: str | None = None,
        *,
        run_name: str | None = None,
        mode: str | None = None,
        dir: str | Path | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(run_name)
        self.project = project
        self.mode = mode
        self.dir = None if dir is None else Path(dir)
        self.init_kwargs = dict(init_kwargs or {})
        self.run: Any = None
        self._marker: Path | None = None

    def _dir(self, run_dir: Path) -> Path:
        return self.dir if self.dir is not None else run_dir

    def check(self, run_dir: Path) -> None:
        """wandb imports and its directory is writable."""
        _import("wandb", self.integration)
        _check_writable(self._dir(run_dir), self.integration)

    def _read_held(self, run_dir: Path, name: str, config: dict[str, Any], key: str) -> Held:
        self._marker = self._dir(run_dir) / "wandb" / f"diverseevol-{key}.json"
        try:
            stored = read_json(self._marker)
            return {int(step): set(names) for step, names in stored["held"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}  # no finished W&B run of this run directory: the next one logs every round

    def _open(self, run_dir: Path, name: str, config: dict[str, Any], key: str = "") -> None:
        wandb = _import("wandb", self.integration)
        self.run = wandb.init(
            project=self.project or os.environ.get("WANDB_PROJECT") or "diverseevol",
            name=name,
            dir=str(self._dir(run_dir)),
            config=config,
            reinit="create_new",
            **({"mode": self.mode} if self.mode else {}),
            **self.init_kwargs,
        )
        self.run.define_metric("round")
        self.run.define_metric("*", step_metric="round")

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log({"round": step, **metrics})

    def _close(self, error: BaseException | None) -> None:
        self.run.finish(exit_code=0 if error is None else 1)
        self.run = None
        if error is None and self._marker is not None and self._held is not None:
            write_json(self._marker, {"held": {str(s): sorted(n) for s, n in sorted(self._held.items())}})
