"""The kernel contract in one place: the metrics, the backends and each backend's options.

Every K-Center entry point checks its ``metric`` and backend options here, once, before any work;
the backends then receive checked values and do not check them again.

A backend's options fall in two groups (see :data:`BACKENDS`):

* ``options``: accepted and used. Any other name is refused with
  :class:`~diverseevol.errors.UnknownOptionError`, which lists the accepted names and suggests the
  closest one.
* ``inert``: accepted but without effect on that backend (e.g. ``lazy`` on torch, which computes
  every distance). Giving one a value other than its default emits
  :class:`~diverseevol.errors.IgnoredOptionWarning`, and the option is not passed on.

With ``backend="auto"``, an option of a backend that "auto" did not choose warns the same way
instead of failing, since the user could not know which backend would run.

This module imports numpy only (no torch, no faiss).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._optional import is_available
from .._validation import check_scalar
from ..errors import IgnoredOptionWarning, UnknownOptionError, ValidationError

__all__ = [
    "BACKENDS",
    "METRICS",
    "OPTIONS",
    "BackendSpec",
    "Option",
    "applicable_options",
    "available_backends",
    "check_backend_name",
    "check_metric",
    "check_options",
    "installed_backends",
]

#: Distances accepted by ``metric=`` by every K-Center entry point.
METRICS: tuple[str, ...] = ("euclidean", "cosine")


# ----------------------------------------------------------------------------- value checks
def _tristate(name: str, value: Any) -> bool | str:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value == "auto":
        return value
    raise ValidationError(f"{name} must be 'auto', True or False; got {value!r}.")


def _int_at_least(low: int) -> Callable[[str, Any], int | None]:
    def check(name: str, value: Any) -> int | None:
        return check_scalar(value, name, int, min_val=low, allow_none=True)  # type: ignore[no-any-return]

    return check


def _optional_bool(name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    raise ValidationError(f"{name} must be None, True or False; got {value!r}.")


def _optional_dict(name: str, value: Any) -> Any:
    if value is None or isinstance(value, MutableMapping):
        return value
    raise ValidationError(f"{name} must be None or a dict to fill; got {type(value).__name__}.")


def _device(name: str, value: Any) -> Any:
    # Resolved (and refused when unusable) by the backend, which needs torch or faiss to tell.
    return value


@dataclass(frozen=True)
class Option:
    """One backend option: its default, its value check and a one-line description."""

    name: str
    default: Any
    check: Callable[[str, Any], Any] = field(repr=False)
    doc: str


#: Every backend option, declared once (each backend lists which it uses).
OPTIONS: dict[str, Option] = {
    o.name: o
    for o in (
        Option("prune", "auto", _tristate, "exact triangle-inequality pruning ('auto' keeps it while it pays)"),
        Option("lazy", "auto", _tristate, "exact lazy evaluation of new centers ('auto' while it pays)"),
        Option("blas_filter", "auto", _tristate, "BLAS rules out the rows a center cannot lower (exact; 'auto' where it pays)"),
        Option("block_rows", None, _int_at_least(1), "rows per work block"),
        Option("n_threads", None, _int_at_least(1), "CPU threads for the per-pick products"),
        Option("max_copy_bytes", None, _int_at_least(0), "largest contiguous copy of the candidate rows"),
        Option("progress", None, _optional_bool, "progress bar over the picks (None: large problems only)"),
        Option("stats", None, _optional_dict, "a dict filled with work counters and timings"),
        Option("device", None, _device, "where the distances are computed (None: a GPU when usable)"),
        Option("max_device_bytes", None, _int_at_least(0), "device memory for a resident copy of the candidates"),
        Option("pool_chunk_rows", 1024, _int_at_least(1), "pool rows per product in the initial distances"),
    )
}

_NUMPY_OPTIONS = ("prune", "lazy", "blas_filter", "block_rows", "n_threads", "max_copy_bytes", "progress", "stats")


@dataclass(frozen=True)
class BackendSpec:
    """What a K-Center backend is and accepts.

    Attributes
    ----------
    name : str
        The ``backend=`` value.
    module : str
        Module exposing ``farthest_first`` (imported only when the backend runs).
    package, extra : str or None
        Optional package the backend needs and the extra that installs it (None: numpy only).
    options : tuple of str
        Options the backend uses (names in :data:`OPTIONS`).
    inert : tuple of str
        Options it accepts without effect (a warning when set to a non-default value).
    """

    name: str
    module: str
    package: str | None
    extra: str | None
    options: tuple[str, ...]
    inert: tuple[str, ...] = ()

    def accepted(self) -> list[str]:
        """Every option name the backend accepts (used or inert), sorted."""
        return sorted(self.options + self.inert)


#: The exact K-Center backends, by name.
BACKENDS: dict[str, BackendSpec] = {
    s.name: s
    for s in (
        BackendSpec("numpy", "diverseevol.kernels._numpy", None, None, _NUMPY_OPTIONS),
        BackendSpec("faiss", "diverseevol.kernels._faiss", "faiss", "faiss", ("device",) + _NUMPY_OPTIONS),
        BackendSpec(
            "torch",
            "diverseevol.kernels._torch",
            "torch",
            "gpu",
            ("device", "block_rows", "max_device_bytes", "pool_chunk_rows", "n_threads", "progress"),
            inert=("prune", "lazy", "blas_filter", "max_copy_bytes", "stats"),
        ),
    )
}

_ALL_OPTIONS = frozenset(OPTIONS)


def available_backends() -> list[str]:
    """Names accepted by ``backend=`` (besides ``"auto"``), whether or not their package is installed."""
    return sorted(BACKENDS)


def installed_backends() -> list[str]:
    """Backends whose optional package is importable here (checked without importing it)."""
    return sorted(name for name, spec in BACKENDS.items() if spec.package is None or is_available(spec.package))


# ----------------------------------------------------------------------------- checks
def check_metric(metric: Any) -> str:
    """Return ``metric`` if it is one of :data:`METRICS`; raise :class:`ValidationError` otherwise."""
    if not isinstance(metric, str) or metric not in METRICS:
        raise ValidationError(f"metric must be one of {list(METRICS)}; got {metric!r}.")
    return metric


def check_backend_name(backend: Any) -> str:
    """Return ``backend`` if it is ``"auto"`` or a name in :data:`BACKENDS`; raise :class:`ValidationError` otherwise."""
    if not isinstance(backend, str) or (backend != "auto" and backend not in BACKENDS):
        raise ValidationError(
            f"backend must be 'auto' or one of {sorted(BACKENDS)}; got {backend!r}. "
            f"Installed here: {installed_backends()}."
        )
    return backend


def check_options(backend: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Check option names and values for ``backend`` (a name or ``"auto"``) before any work.

    Parameters
    ----------
    backend : str
        A name in :data:`BACKENDS`, or ``"auto"`` (then any backend's option is accepted here and
        sorted out by :func:`applicable_options` once the backend is chosen).
    options : mapping
        Option name -> value, as the user passed them.

    Returns
    -------
    dict
        The options with checked, normalised values (e.g. ``np.bool_`` -> ``bool``).

    Raises
    ------
    UnknownOptionError
        A name the backend does not accept; the message lists the accepted names and the closest match.
    ValidationError
        A value the option cannot take.
    """
    check_backend_name(backend)
    accepted = sorted(_ALL_OPTIONS) if backend == "auto" else BACKENDS[backend].accepted()
    unknown = sorted(name for name in options if name not in accepted)
    if unknown:
        raise UnknownOptionError(_unknown_message(backend, unknown, accepted))
    return {name: OPTIONS[name].check(name, value) for name, value in options.items()}


def applicable_options(name: str, options: Mapping[str, Any], *, requested: str) -> dict[str, Any]:
    """The checked ``options`` that backend ``name`` uses; warn about the others that were set.

    Parameters
    ----------
    name : str
        The backend that runs.
    options : mapping
        Output of :func:`check_options` for ``requested``.
    requested : str
        What the user asked for (``name`` or ``"auto"``).

    Warns
    -----
    IgnoredOptionWarning
        For each option set to a non-default value that has no effect on ``name``.
    """
    spec = BACKENDS[name]
    used: dict[str, Any] = {}
    for opt, value in options.items():
        if opt in spec.options:
            used[opt] = value
        elif not _is_default(opt, value):
            why = (
                f"backend {name!r} accepts it without effect"
                if opt in spec.inert
                else f"backend='auto' chose {name!r}, which does not use it ("
                f"it is an option of {[b for b, s in BACKENDS.items() if opt in s.options]})"
            )
            warnings.warn(
                f"option {opt}={value!r} is ignored: {why}. Options used by {name!r}: {list(spec.options)}.",
                IgnoredOptionWarning,
                stacklevel=3,
            )
    return used


def _is_default(name: str, value: Any) -> bool:
    default = OPTIONS[name].default
    return value is default or (type(value) is type(default) and value == default)


def _unknown_message(backend: str, unknown: list[str], accepted: list[str]) -> str:
    where = "any backend (backend='auto')" if backend == "auto" else f"backend {backend!r}"
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.6)
        if close:
            hints.append(f" Did you mean {close[0]!r} instead of {name!r}?")
    elsewhere = ""
    for name in unknown:
        owners = [b for b, spec in BACKENDS.items() if name in spec.accepted()]
        if owners:
            elsewhere += f" {name!r} is an option of backend {' and '.join(map(repr, owners))}."
    return (
        f"unknown option(s) {unknown} for {where}; it accepts {accepted}.{''.join(hints)}{elsewhere} "
        f"Check the spelling, or pass an option only to the backend that uses it."
    )
