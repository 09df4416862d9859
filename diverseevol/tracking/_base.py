"""The base of the tracking callbacks: what each integration needs, the run identity, the callback
class that makes logging idempotent by step, and the checks shared by the integrations.

Imports only the standard library and the base modules (:mod:`diverseevol._optional`,
:mod:`diverseevol._files`, :mod:`diverseevol.errors`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import numbers
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._files import read_json, redact_text
from .._optional import is_available
from ..errors import DiverseEvolError, OptionalDependencyError, TrackingError

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
    """The identity of the run recorded in ``run_dir``, stable across resumes (letters and digits).

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

    Subclasses implement :meth:`_open`, :meth:`_log` and :meth:`_close`, and should implement
    :meth:`_read_held`; they may extend :meth:`check` and :meth:`_name`.

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
        """What the tracker holds for this run directory; may set ``self._unfinished``.

        Default: nothing (every loop run logs every round, replayed ones included); override it
        to make logging idempotent across resumes.
        """
        return {}

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


