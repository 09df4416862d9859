"""MLflow: one run per run directory (tagged with it), continued by every resume; only missing steps logged."""

from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._files import redact_text
from ..errors import TrackingError
from ._base import Held, TrackingCallback, _check_writable, _flat_params, _import

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
