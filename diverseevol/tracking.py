"""Experiment tracking for the loop: the per-round metrics in TensorBoard, MLflow or W&B.

``EvolutionLoop(report_to=...)`` takes the names transformers uses for ``TrainingArguments.report_to``
(``"tensorboard"``, ``"mlflow"``, ``"wandb"``, ``"all"``, ``"none"`` or a list of them) and turns
each into a loop callback of this module. Each callback opens one tracking run per
:meth:`~diverseevol.EvolutionLoop.run` call (named after the run directory), logs every numeric
value of each round's metrics row (:data:`~diverseevol.run.result.METRIC_KEYS` plus the judge's
metrics) at ``step = round``, and closes the run when the loop ends (as failed when it raised).
The callbacks are ordinary loop callbacks: pass them (configured) or your own through
``EvolutionLoop(callbacks=[...])``.

The tracking packages are imported only when a run starts; this module imports only the standard
library, :mod:`diverseevol._optional` and :mod:`diverseevol.errors`.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._optional import is_available, require
from .errors import OptionalDependencyError, ValidationError

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


class TrackingCallback:
    """Base of the tracking callbacks: one tracking run per loop run, metrics at ``step = round``.

    Subclasses implement :meth:`_open`, :meth:`_log` and :meth:`_close`. The loop calls
    ``on_run_start(run_dir, config)`` once a run directory is open, ``on_round_end(round,
    metrics_row)`` after each round it runs, and ``on_run_end(result, error)`` at the end
    (``error`` is the exception that stopped the loop, else None). All on rank 0 only. The
    tracking run is opened at the first round that ends, so replaying a finished run directory
    opens none.

    Parameters
    ----------
    run_name : str, optional
        The tracking run's name; default: the run directory's name.
    """

    #: the integration's ``report_to`` name
    integration: str = ""

    def __init__(self, run_name: str | None = None) -> None:
        self.run_name = run_name
        self._run: tuple[Path, str, dict[str, Any]] | None = None  # set by on_run_start
        self._open_now = False

    def on_run_start(self, run_dir: str | Path, config: Mapping[str, Any]) -> None:
        """Remember the loop run recorded in ``run_dir``; its tracking run opens with the first round."""
        run_dir = Path(run_dir)
        self._run = (run_dir, self.run_name or run_dir.name, dict(config))

    def on_round_end(self, round: int, metrics_row: Mapping[str, Any]) -> None:
        """Log the row's numeric values (:func:`numeric_metrics`) at step ``round``."""
        if self._run is None:
            raise RuntimeError(
                f"{type(self).__name__}.on_round_end was called before on_run_start; pass the "
                f"callback to EvolutionLoop(callbacks=[...]) so the loop opens the run first."
            )
        if not self._open_now:
            self._open(*self._run)
            self._open_now = True
        self._log(int(round), numeric_metrics(metrics_row))

    def on_run_end(self, result: Any, error: BaseException | None = None) -> None:
        """Close the tracking run (marked failed when ``error`` is not None)."""
        self._run = None
        if self._open_now:
            self._open_now = False
            self._close(error)

    # ---- for subclasses ----------------------------------------------------------------
    def _open(self, run_dir: Path, name: str, config: dict[str, Any]) -> None:
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


# --------------------------------------------------------------------------------------------
# TensorBoard
# --------------------------------------------------------------------------------------------
class TensorBoardCallback(TrackingCallback):
    """Write each round's metrics as TensorBoard scalars (tag = metric name, step = round).

    The writer is ``torch.utils.tensorboard.SummaryWriter`` when torch and tensorboard are
    installed, else ``tensorboardX.SummaryWriter`` (as in transformers). The run's configuration
    is written once as the text summary ``"config"``.

    Parameters
    ----------
    log_dir : str or Path, optional
        Where the event files go; default ``<run_dir>/tensorboard`` (``tensorboard --logdir
        <run_dir>`` then also shows the trainer's logs written below it).
    run_name : str, optional
        Unused by TensorBoard beyond the directory; kept for a uniform signature.
    writer_factory : callable, optional
        ``writer_factory(log_dir) -> writer`` with ``add_scalar``, ``add_text``, ``flush`` and
        ``close``; default: the SummaryWriter described above.
    """

    integration = "tensorboard"

    def __init__(
        self, log_dir: str | Path | None = None, *, run_name: str | None = None, writer_factory: Any = None
    ) -> None:
        super().__init__(run_name)
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.writer_factory = writer_factory
        self.writer: Any = None

    def _open(self, run_dir: Path, name: str, config: dict[str, Any]) -> None:
        log_dir = self.log_dir if self.log_dir is not None else run_dir / "tensorboard"
        if self.writer_factory is not None:
            self.writer = self.writer_factory(str(log_dir))
        else:
            # tensorboardX names event files by the second: without a unique suffix a resume within the same
            # second would replace the crashed run's file and lose its rounds.
            suffix = f".{os.getpid()}.{uuid.uuid4().hex[:8]}"
            self.writer = _summary_writer_class()(str(log_dir), filename_suffix=suffix)
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```", 0)
        self.writer.flush()

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
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
        return require("tensorboardX", feature="report_to='tensorboard'").SummaryWriter
    raise OptionalDependencyError(
        "report_to='tensorboard' needs a TensorBoard writer: torch with the tensorboard package, or "
        f"tensorboardX. Install one with: {_INSTALL['tensorboard']}"
    )


# --------------------------------------------------------------------------------------------
# MLflow
# --------------------------------------------------------------------------------------------
#: characters MLflow accepts in metric and parameter names
_MLFLOW_UNSAFE = re.compile(r"[^\w\-. /:]")
#: the tag that links an MLflow run to its run directory
RUN_DIR_TAG = "diverseevol.run_dir"


class MLflowCallback(TrackingCallback):
    """Log each round's metrics to an MLflow run (step = round), the configuration as parameters.

    It uses ``mlflow.tracking.MlflowClient`` only, never the fluent ``mlflow.start_run``: no
    active run is left behind, so the Hugging Face trainer's own MLflow logging (``report_to``
    of :class:`~diverseevol.hf.HFTrainer`) opens its separate run per round. The run is tagged
    ``diverseevol.run_dir``; resuming a loop whose MLflow run did not finish continues that run.

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
    """

    integration = "mlflow"

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        *,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(run_name)
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.tags = dict(tags or {})
        self.client: Any = None
        self.run_id: str | None = None

    def _open(self, run_dir: Path, name: str, config: dict[str, Any]) -> None:
        require("mlflow", feature="report_to='mlflow'")
        from mlflow.tracking import MlflowClient

        uri = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
        self.client = MlflowClient(tracking_uri=uri)
        experiment_id = self._experiment_id()
        previous = self._unfinished_run(experiment_id, run_dir)
        if previous is not None:
            self.run_id = previous
            self.client.update_run(previous, status="RUNNING")
            return
        tags = {RUN_DIR_TAG: str(run_dir.resolve()), **self.tags}
        run = self.client.create_run(experiment_id, run_name=name, tags=tags)
        self.run_id = run.info.run_id
        self._log_params(config)

    def _experiment_id(self) -> str:
        name = self.experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "Default"
        found = self.client.get_experiment_by_name(name)
        return found.experiment_id if found is not None else self.client.create_experiment(name)

    def _unfinished_run(self, experiment_id: str, run_dir: Path) -> str | None:
        """The latest run of this run directory that did not finish (a crashed loop being resumed)."""
        path = str(run_dir.resolve()).replace("'", "\\'")
        runs = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`{RUN_DIR_TAG}` = '{path}'", order_by=["start_time DESC"]
        )
        if runs and runs[0].info.status != "FINISHED":
            return str(runs[0].info.run_id)
        return None

    def _log_params(self, config: dict[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(_mlflow_key(k), v[:6000]) for k, v in _flat_params(config).items()]
        for start in range(0, len(params), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=params[start : start + 100])

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(_mlflow_key(k), v, now, step) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def _close(self, error: BaseException | None) -> None:
        self.client.set_terminated(self.run_id, status="FINISHED" if error is None else "FAILED")


def _mlflow_key(key: str) -> str:
    return _MLFLOW_UNSAFE.sub("_", key)


# --------------------------------------------------------------------------------------------
# Weights & Biases
# --------------------------------------------------------------------------------------------
class WandbCallback(TrackingCallback):
    """Log each round's metrics to a W&B run, with ``round`` as the x-axis of every metric.

    The run is created with ``reinit="create_new"``, so it never becomes the global ``wandb.run``:
    the Hugging Face trainer's own W&B logging (``report_to`` of :class:`~diverseevol.hf.HFTrainer`)
    opens its separate run per round instead of writing into this one.

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

    def _open(self, run_dir: Path, name: str, config: dict[str, Any]) -> None:
        wandb = require("wandb", feature="report_to='wandb'")
        self.run = wandb.init(
            project=self.project or os.environ.get("WANDB_PROJECT") or "diverseevol",
            name=name,
            dir=str(self.dir if self.dir is not None else run_dir),
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
