"""The run package: one DiverseEvol run, from its settings to its directory on disk.

- :mod:`.settings`: :class:`LoopSettings`, the loop's arguments checked once, and the schedule.
- :mod:`.seeds`: :func:`initial_pool` and :func:`round_rng`, pure functions of the seed.
- :mod:`.directory`: :class:`RunDirectory`, the one reader/writer of a run's files, with the
  replay reader used by resume and :meth:`EvolutionResult.load`.
- :mod:`.result`: :class:`EvolutionResult` and the one metrics-row schema (:data:`METRIC_KEYS`).
- :mod:`.resume`: opening a run directory and checking what is on disk.
- :mod:`.signals`, :mod:`.selection`: a round's embeddings/scores and its selection + measurements.
- :mod:`.loop`: :class:`EvolutionLoop`, which only runs the rounds.

Nothing here imports :mod:`diverseevol.hf`. The public names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_LAZY: dict[str, str] = {
    "EvolutionLoop": ".loop",
    "EvolutionResult": ".result",
    "METRIC_KEYS": ".result",
    "metrics_row": ".result",
    "LoopSettings": ".settings",
    "RunDirectory": ".directory",
    "RoundRecord": ".directory",
    "initial_pool": ".seeds",
    "round_rng": ".seeds",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from .directory import RoundRecord, RunDirectory
    from .loop import EvolutionLoop
    from .result import METRIC_KEYS, EvolutionResult, metrics_row
    from .seeds import initial_pool, round_rng
    from .settings import LoopSettings

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
