"""The loop's event hooks: ``on_round_start``, ``on_selected`` and ``on_round_end`` each round,
``on_round_replayed`` for each finished round a resumed run reads back from disk, ``on_run_start``
and ``on_run_end`` around a run (objects only; used by :mod:`diverseevol.tracking`).

Imports nothing from diverseevol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EVENTS", "REPLAY_EVENTS", "RUN_EVENTS", "Callbacks"]

#: The events, in the order they fire within a round.
EVENTS: tuple[str, ...] = ("on_round_start", "on_selected", "on_round_end")
#: ``on_round_replayed(round, metrics_row)``: a round finished before (read back from disk, not run again).
REPLAY_EVENTS: tuple[str, ...] = ("on_round_replayed",)
#: The events around a run: ``on_run_start(run_dir, config)`` and ``on_run_end(result, error)``.
RUN_EVENTS: tuple[str, ...] = ("on_run_start", "on_run_end")


@dataclass
class Callbacks:
    """The functions to call on each event, in registration order."""

    on_round_start: list[Callable[..., Any]] = field(default_factory=list)
    on_selected: list[Callable[..., Any]] = field(default_factory=list)
    on_round_end: list[Callable[..., Any]] = field(default_factory=list)
    on_round_replayed: list[Callable[..., Any]] = field(default_factory=list)
    on_run_start: list[Callable[..., Any]] = field(default_factory=list)
    on_run_end: list[Callable[..., Any]] = field(default_factory=list)

    @classmethod
    def collect(
        cls, functions: dict[str, Callable[..., Any] | None], objects: Iterable[Any] = ()
    ) -> Callbacks:
        """Gather ``functions`` (event -> function or None), then each object's methods named after events."""
        out = cls()
        for event, fn in functions.items():
            if fn is not None:
                getattr(out, event).append(fn)
        for obj in objects:
            for event in (*EVENTS, *REPLAY_EVENTS, *RUN_EVENTS):
                fn = getattr(obj, event, None)
                if callable(fn):
                    getattr(out, event).append(fn)
        return out

    def fire(self, event: str, *args: Any) -> None:
        """Call every function registered for ``event`` with ``args``."""
        for fn in getattr(self, event):
            fn(*args)
