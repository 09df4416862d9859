"""Opening a run directory for a run, and checking what is already on disk against the settings.

:func:`open_run` refuses foreign directories, deletes (``overwrite``), refuses (``resume=False``),
checks compatibility of and resumes, or creates a run; :func:`recorded_round` reads one round's
files and checks its pool; :func:`completed_rounds` replays the finished rounds a resumed run
skips. Rank 0 calls these; the loop shares their results with the other ranks.

Imports numpy, the base modules and the run package's directory and seeds modules.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import RunDirectoryError
from .directory import RoundRecord, RunDirectory
from .seeds import initial_pool
from .settings import COMPARED_CONFIG_KEYS, LoopSettings
from .validate import round_fix

__all__ = ["completed_rounds", "open_run", "recorded_round", "refuse_foreign"]

logger = logging.getLogger("diverseevol.loop")  # the loop's documented logger (docs/loop.md)


def refuse_foreign(rd: RunDirectory) -> None:
    """Raise :class:`RunDirectoryError` if ``rd`` is a non-empty directory that is not a run directory,
    or one whose ``config.json`` is unreadable (corrupt: never deleted, not even with ``overwrite``), or if
    the path is a regular file (or lies below one)."""
    rd.check_location()
    problem = rd.config_problem()
    if problem is not None:
        raise RunDirectoryError(
            f"The run directory {rd.path} is corrupt: {problem}. Without {rd.CONFIG} the run cannot be resumed, "
            f"and diverseevol does not delete a directory it cannot identify (not even with overwrite=True). "
            f"Restore {rd.CONFIG} from a copy, or delete {rd.path} yourself, or choose another run_dir."
        )
    if not rd.is_run_directory() and not rd.is_empty():
        raise RunDirectoryError(
            f"{rd.path} is not empty and is not a diverseevol run directory (no config.json); refusing to "
            f"write into it (or delete it, even with overwrite=True). Choose a new or empty run_dir."
        )


def open_run(rd: RunDirectory, settings: LoopSettings, fingerprint: dict[str, Any]) -> dict[str, Any]:
    """Make ``rd`` ready for the run ``settings`` describe and return its header (``config.json``).

    A run found there is deleted (``overwrite``), refused (``resume=False``) or checked and
    resumed; otherwise a new run is created. Temporary files of interrupted writes are removed.

    Raises
    ------
    RunDirectoryMismatchError
        If the stored run was made with other data or another config.
    RunDirectoryError
        If the directory holds a run and ``resume=False``, or is foreign.
    """
    config = settings.to_config()
    if rd.is_run_directory():
        if settings.overwrite:
            logger.info("overwrite=True: deleting the run in %s", rd.path)
            rd.clear()
        elif not settings.resume:
            raise RunDirectoryError(
                f"{rd.path} already holds a run. Pass resume=True to continue it, overwrite=True to delete "
                f"it and start over, or choose another run_dir."
            )
        else:
            header = rd.check_compatible(config=config, data=fingerprint, compare_keys=COMPARED_CONFIG_KEYS)
            rd.remove_temp_files()
            logger.info("resuming the run in %s", rd.path)
            return header
    else:
        refuse_foreign(rd)
    rd.remove_temp_files()
    rd.create(config=config, data=fingerprint, library_version=__version__)
    return rd.read_header()


def _check_pool(rd: RunDirectory, t: int, pool: np.ndarray, stored: np.ndarray | None) -> None:
    """Write P_t to ``pool.json`` when missing; raise if the stored one differs from ``pool``."""
    if stored is None:
        rd.write_pool(t, pool)
    elif not np.array_equal(stored, pool):
        raise RunDirectoryError(
            f"{rd.round_dir(t) / 'pool.json'} holds a pool of {stored.size} records that differs from the "
            f"one derived from P_0 and the earlier rounds' selection.json ({pool.size} records); the run "
            f"directory was edited or is corrupt. {round_fix(rd.round_dir(t))}"
        )


def recorded_round(rd: RunDirectory, t: int, pool: np.ndarray) -> RoundRecord:
    """What is on disk for round ``t``, which runs on ``pool`` (P_t, absolute row indices into Z).

    ``pool.json`` is written if missing and must equal ``pool`` otherwise.
    """
    _check_pool(rd, t, pool, rd.read_pool(t))
    record = rd.read_round(t)
    rd.check_selection(t, pool, record.selection, int(rd.read_header()["config"].get("rounds", t)))
    return record


def completed_rounds(rd: RunDirectory, settings: LoopSettings) -> list[RoundRecord]:
    """The rounds already complete on disk, in order, each with its pool (from P_0 of the seed).

    Stops at the first incomplete round. Each round's ``pool.json`` is checked as in
    :func:`recorded_round`.
    """
    first = initial_pool(settings.n_records, settings.init_size, settings.seed)
    done: list[RoundRecord] = []
    for record in rd.replay(settings.rounds, first_pool=first):
        _check_pool(rd, record.round, record.pool, record.stored_pool)  # type: ignore[arg-type]
        if not record.complete:
            break
        if record.selection is None and record.round < settings.rounds:
            raise RunDirectoryError(
                f"{rd.round_dir(record.round)} has a metrics row but no selection.json; the run directory "
                f"was edited or is corrupt. Start over with overwrite=True."
            )
        done.append(record)
    return done
