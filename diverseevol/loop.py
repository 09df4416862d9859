"""Deprecated old home of :class:`EvolutionLoop` and :class:`EvolutionResult`; import from :mod:`diverseevol.run`.

Importing it warns (:class:`DeprecationWarning`); it will be removed in the next release. Its
names are the objects of :mod:`diverseevol.run` (``COMPARED_CONFIG_KEYS``: :mod:`diverseevol.run.settings`).
"""

from __future__ import annotations

from ._deprecation import warn_old_home
from .run.loop import EvolutionLoop
from .run.result import METRIC_KEYS, EvolutionResult
from .run.seeds import initial_pool, round_rng
from .run.settings import COMPARED_CONFIG_KEYS

__all__ = [
    "COMPARED_CONFIG_KEYS",
    "METRIC_KEYS",
    "EvolutionLoop",
    "EvolutionResult",
    "initial_pool",
    "round_rng",
]

warn_old_home(
    "diverseevol.loop",
    "diverseevol.run",
    "EvolutionLoop, EvolutionResult, METRIC_KEYS, initial_pool and round_rng "
    "(COMPARED_CONFIG_KEYS from diverseevol.run.settings)",
)
