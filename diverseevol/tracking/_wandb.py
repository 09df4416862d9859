"""Weights & Biases: a new W&B run per loop run that has something to log, holding every round."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._files import read_json, write_json
from ._base import Held, TrackingCallback, _check_writable, _import


class WandbCallback(TrackingCallback):
    """Log each round's metrics to a W&B run, with ``round`` as the x-axis of every metric.

    The run is created with ``reinit="create_new"``, so it never becomes the global ``wandb.run``:
    the Hugging Face trainer's own W&B logging (``report_to`` of :class:`~diverseevol.hf.HFTrainer`)
    opens its separate run per round instead of writing into this one.

    W&B runs are not resumed (what a W&B run holds is not read back): each loop run that has
    something to log opens a new W&B run and logs every round of the run directory into it, the
    rounds read back from disk included, so the latest W&B run holds each round once. When it
    finishes without error the callback writes ``wandb/diverseevol-<run_id>.json`` in the W&B
    directory; a later replay of the finished run directory then opens no W&B run.

    Parameters
    ----------
    project : str, optional
        Default: ``WANDB_PROJECT``, else ``"diverseevol"``.
    run_name : str, optional
        Default: the run directory's name.
    mode : {"online", "offline", "disabled"}, optional
        Default: ``WANDB_MODE``, else W&B's default.
    dir : str or Path, optional
        Where W&B writes its local files; default the run directory.
    init_kwargs : mapping, optional
        More keyword arguments of ``wandb.init`` (``entity``, ``tags``, ``group``...).
    """

    integration = "wandb"

    def __init__(
        self,
        project: str | None = None,
        *,
        run_name: str | None = None,
        mode: str | None = None,
        dir: str | Path | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(run_name)
        self.project = project
        self.mode = mode
        self.dir = None if dir is None else Path(dir)
        self.init_kwargs = dict(init_kwargs or {})
        self.run: Any = None
        self._marker: Path | None = None

    def _dir(self, run_dir: Path) -> Path:
        return self.dir if self.dir is not None else run_dir

    def check(self, run_dir: Path) -> None:
        """wandb imports and its directory is writable."""
        _import("wandb", self.integration)
        _check_writable(self._dir(run_dir), self.integration)

    def _read_held(self, run_dir: Path, name: str, config: dict[str, Any], key: str) -> Held:
        self._marker = self._dir(run_dir) / "wandb" / f"diverseevol-{key}.json"
        try:
            stored = read_json(self._marker)
            return {int(step): set(names) for step, names in stored["held"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}  # no finished W&B run of this run directory: the next one logs every round

    def _open(self, run_dir: Path, name: str, config: dict[str, Any], key: str = "") -> None:
        wandb = _import("wandb", self.integration)
        self.run = wandb.init(
            project=self.project or os.environ.get("WANDB_PROJECT") or "diverseevol",
            name=name,
            dir=str(self._dir(run_dir)),
            config=config,
            reinit="create_new",
            **({"mode": self.mode} if self.mode else {}),
            **self.init_kwargs,
        )
        self.run.define_metric("round")
        self.run.define_metric("*", step_metric="round")

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log({"round": step, **metrics})

    def _close(self, error: BaseException | None) -> None:
        self.run.finish(exit_code=0 if error is None else 1)
        self.run = None
        if error is None and self._marker is not None and self._held is not None:
            write_json(self._marker, {"held": {str(s): sorted(n) for s, n in sorted(self._held.items())}})
