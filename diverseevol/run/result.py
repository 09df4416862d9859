"""What a run produced (:class:`EvolutionResult`) and the one schema of its metrics rows.

:data:`METRIC_KEYS` and :func:`metrics_row` are the only place the loop's metrics row is spelled
out: the loop builds every row with :func:`metrics_row`, the per-round signals in
``selection.json`` use :data:`SIGNAL_KEYS`, and :mod:`diverseevol.report` imports
:data:`METRIC_KEYS` to tell bookkeeping from judge metrics.

Imports only numpy, :mod:`diverseevol._files`, :mod:`diverseevol._optional`,
:mod:`diverseevol.measurements` (:data:`SIGNAL_KEYS`, declared beside the functions that measure
them) and :mod:`diverseevol.run.directory` (and, when records are exported, :mod:`diverseevol.data` and
:mod:`diverseevol.export`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._files import to_jsonable
from .._optional import require
from .._validation import Interval, check_scalar
from ..measurements import SIGNAL_KEYS
from .directory import RunDirectory

__all__ = ["METRIC_KEYS", "SIGNAL_KEYS", "TIME_KEYS", "EvolutionResult", "metrics_row"]

# SIGNAL_KEYS (imported above): the measurements of P_t in M_t's (and the reference) embedding space,
# declared with the functions that measure them in diverseevol.measurements; None when not computed.
#: Seconds spent in each phase of a round.
TIME_KEYS: tuple[str, ...] = ("time_train_s", "time_embed_s", "time_score_s", "time_select_s", "time_judge_s")
#: Keys every metrics row has, in order (the judge's keys follow).
METRIC_KEYS: tuple[str, ...] = ("round", "pool_size", "n_new", *SIGNAL_KEYS, *TIME_KEYS)


def metrics_row(
    t: int,
    *,
    pool_size: int,
    n_new: int,
    signals: Mapping[str, Any],
    times: Mapping[str, float],
    judge_metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build round ``t``'s metrics row: the keys of :data:`METRIC_KEYS` in order, then the judge's.

    Parameters
    ----------
    t : int
        The round.
    pool_size, n_new : int
        |P_t| and |S_t| (0 in the last round).
    signals : Mapping
        Values for :data:`SIGNAL_KEYS` (missing keys: None).
    times : Mapping
        Values for :data:`TIME_KEYS` (missing keys: 0.0).
    judge_metrics : Mapping, optional
        The judge's metrics; a key that clashes with an earlier key gets the prefix ``"judge/"``.

    Returns
    -------
    dict
        JSON-ready (numpy values converted, non-finite floats as None).
    """
    row: dict[str, Any] = {"round": t, "pool_size": int(pool_size), "n_new": int(n_new)}
    row.update({key: signals.get(key) for key in SIGNAL_KEYS})
    row.update({key: float(times.get(key, 0.0)) for key in TIME_KEYS})
    for key, value in (judge_metrics or {}).items():
        row[f"judge/{key}" if key in row else key] = value
    return to_jsonable(row)


@dataclass
class EvolutionResult:
    """What a run produced: the pools, one metrics row per trained model, the models.

    Attributes
    ----------
    pools : list of ndarray of int64
        ``[P_0, ..., P_T]``: absolute row indices into Z, each in pick order (P_{t+1} starts
        with P_t). A partial run lists every pool decided so far.
    metrics : list of dict
        One row per completed round t (model M_t); keys :data:`METRIC_KEYS` plus the judge's.
    models : list
        Per round with a finished training: what the trainer returned in this process, or the
        round's ``out_dir`` (a :class:`pathlib.Path`) for rounds read from disk.
    radii : list of (ndarray of float or None)
        Per selection round t: the covering radius at each pick of ``new_indices[t]`` (K-Center
        samplers), else None.
    config : dict
        The run's configuration as stored in ``config.json`` (includes ``"sampler"``).
    data : dict
        Fingerprint of Z: ``{"n_records": N, "sha256": ...}``.
    run_dir : pathlib.Path or None
        Where the run is recorded.
    finished : bool
        Whether the final training (and its metrics) completed.
    """

    pools: list[np.ndarray]
    metrics: list[dict[str, Any]]
    models: list[Any] = field(default_factory=list)
    radii: list[np.ndarray | None] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    finished: bool = False

    @property
    def new_indices(self) -> list[np.ndarray]:
        """``[S_0, ..., S_{T-1}]``: the records added in each round, in pick order (P_{t+1} \\ P_t)."""
        return [self.pools[t + 1][len(self.pools[t]) :] for t in range(len(self.pools) - 1)]

    @property
    def final_pool(self) -> np.ndarray:
        """The last pool decided (P_T for a finished run)."""
        return self.pools[-1]

    def subset_indices(self, round: int | None = None) -> np.ndarray:
        """P_round, the pool the model of round ``round`` trains on (default: the last pool decided).

        Returns
        -------
        ndarray of int64, shape (|P_round|,)
            Absolute row indices into Z, in pick order.
        """
        if round is None:
            return self.final_pool
        decided = Interval(int, 0, len(self.pools) - 1)
        return self.pools[check_scalar(round, "round", decided, what="the pools decided", error=IndexError)]

    def subset(self, round: int | None = None, *, records: Sequence[Any]) -> list[Any]:
        """The records of P_round in pick order, each as the user's original object.

        Parameters
        ----------
        round : int, optional
            Which pool (see :meth:`subset_indices`); default the last.
        records : sequence of InstructionRecord
            The run's dataset Z (checked against the run's data fingerprint).

        Returns
        -------
        list
            ``records[i].as_original()`` for i in P_round: the loaded object, unchanged.

        Raises
        ------
        RunDirectoryMismatchError
            When ``records`` are not the data the run selected from.
        """
        from ..export import original_rows

        self._check_records(records)
        return original_rows(records, self.subset_indices(round))

    def export(self, path: str | Path, round: int | None = None, *, records: Sequence[Any],
               source: str | Path | None = None) -> Path:
        """Write :meth:`subset` to ``path`` (``.json``, ``.jsonl``, ``.parquet``; see :mod:`diverseevol.export`)."""
        from ..export import write_subset

        self._check_records(records)
        return write_subset(path, records, self.subset_indices(round), source=source)

    def _check_records(self, records: Sequence[Any]) -> None:
        from ..data import data_fingerprint
        from ..errors import RunDirectoryMismatchError

        if not self.data:
            return
        found = data_fingerprint(records)
        if found != {k: self.data.get(k) for k in found}:
            raise RunDirectoryMismatchError(
                f"these {found['n_records']} records are not the data of the run "
                f"({self.data.get('n_records')} records, sha256 {str(self.data.get('sha256'))[:12]}...); pass the "
                f"dataset the run selected from, loaded the same way (same file, same limit)."
            )

    def to_pandas(self) -> Any:
        """Return the metrics as a ``pandas.DataFrame``, one row per round (needs pandas)."""
        pd = require("pandas", feature="EvolutionResult.to_pandas()")
        return pd.DataFrame(self.metrics)

    @classmethod
    def load(cls, run_dir: str | Path) -> EvolutionResult:
        """Read a finished or partial run from its directory, without any model.

        Raises
        ------
        RunDirectoryError
            If ``run_dir`` is not a diverseevol run directory.
        """
        rd = RunDirectory(run_dir)
        header = rd.read_header()
        rounds = int(header.get("config", {}).get("rounds", 0))
        records = list(rd.replay(rounds))
        return cls(
            pools=[rec.pool for rec in records],  # type: ignore[misc]
            metrics=[rec.metrics for rec in records if rec.metrics is not None],
            models=[rec.model_dir for rec in records if rec.train is not None],
            radii=[rec.radii for rec in records[:-1]],  # each round that decided the next pool
            config=header.get("config", {}),
            data=header.get("data", {}),
            run_dir=rd.path,
            finished=rd.read_status().get("state") == "finished",
        )

    def __repr__(self) -> str:
        sizes = [len(p) for p in self.pools]
        return (
            f"EvolutionResult(sampler={self.config.get('sampler')!r}, pool_sizes={sizes}, "
            f"rounds_completed={len(self.metrics)}, finished={self.finished}, run_dir={str(self.run_dir)!r})"
        )
