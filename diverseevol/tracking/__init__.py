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

The package: ``_base`` (the callback base class, the run identity, shared checks) and one module
per integration (``_tensorboard``, ``_mlflow``, ``_wandb``); the public names are exported here.
The tracking packages are imported only when a run starts; these modules import only the standard
library and the base modules :mod:`diverseevol._optional`, :mod:`diverseevol._files` and
:mod:`diverseevol.errors`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._optional import is_available
from ..errors import OptionalDependencyError, ValidationError
from ._base import _INSTALL, _MODULES, REPORT_TO, TrackingCallback, numeric_metrics, run_key
from ._mlflow import RUN_DIR_TAG, RUN_ID_TAG, MLflowCallback  # noqa: F401 - the tags, importable from here
from ._tensorboard import TensorBoardCallback, _summary_writer_class  # noqa: F401
from ._wandb import WandbCallback

__all__ = [
    "REPORT_TO",
    "MLflowCallback",
    "TensorBoardCallback",
    "TrackingCallback",
    "WandbCallback",
    "normalize_report_to",
    "numeric_metrics",
    "run_key",
    "tracking_callbacks",
]

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
