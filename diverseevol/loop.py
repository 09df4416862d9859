"""Old home of :class:`EvolutionLoop` and :class:`EvolutionResult`; they live in :mod:`diverseevol.run`.

Kept so that ``from diverseevol.loop import EvolutionLoop, EvolutionResult, METRIC_KEYS,
initial_pool, round_rng`` keeps working; new code imports from :mod:`diverseevol` or
:mod:`diverseevol.run`.
"""

from __future__ import annotations

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
