"""Registry of K-Center compute backends and the "auto" choice.

Each backend module exposes ``farthest_first(emb, pool_idx, candidate_idx, k, *, metric, first_pick, **options)``
returning ``(picks, radii)``; see :mod:`diverseevol.kernels.kcenter` for the contract.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ..errors import ValidationError

_MODULES: dict[str, str] = {
    "numpy": "diverseevol.kernels._numpy",
}


def available_backends() -> list[str]:
    """Names accepted by ``backend=`` (besides ``"auto"``)."""
    return sorted(_MODULES)


def resolve_backend(requested: str, **sizes: Any) -> tuple[str, Callable[..., Any]]:
    """Return ``(name, farthest_first)`` for ``requested`` (``"auto"`` picks by what is installed and sizes)."""
    name = "numpy" if requested == "auto" else requested
    if name not in _MODULES:
        raise ValidationError(
            f"backend must be 'auto' or one of {available_backends()}; got {requested!r}."
        )
    return name, importlib.import_module(_MODULES[name]).farthest_first
