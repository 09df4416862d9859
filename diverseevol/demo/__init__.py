"""The offline demo: DiverseEvol vs random / least-confidence / margin on a synthetic task suite.

Run it with ``diverseevol demo`` or :func:`run_demo`. :mod:`.tasks` (numpy only) generates the
instruction suite; :mod:`.model` prepares the tiny base model; :mod:`.run` runs the comparison.
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__ = ["TASK_FAMILIES", "DemoResult", "DemoSettings", "DemoSuite", "make_suite", "run_demo", "task_coverage"]

_LAZY = {
    "run_demo": ".run",
    "DemoSettings": ".run",
    "DemoResult": ".run",
    "make_suite": ".tasks",
    "TASK_FAMILIES": ".tasks",
    "DemoSuite": ".tasks",
    "task_coverage": ".tasks",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
