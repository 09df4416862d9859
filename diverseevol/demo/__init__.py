"""The offline demo: DiverseEvol vs random / least-confidence / margin on a synthetic task suite.

Run it with ``diverseevol demo`` or :func:`run_demo`. :mod:`.tasks` (numpy only) generates the
instruction suite; :mod:`.model` prepares the tiny base model; :mod:`.run` runs the comparison.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TASK_FAMILIES", "DemoResult", "DemoSettings", "DemoSuite", "make_suite", "run_demo", "task_coverage"]

_LAZY = {
    "run_demo": "run",
    "DemoSettings": "run",
    "DemoResult": "run",
    "make_suite": "tasks",
    "TASK_FAMILIES": "tasks",
    "DemoSuite": "tasks",
    "task_coverage": "tasks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
