"""The run directory: the one place that writes and reads an EvolutionLoop's files on disk.

Every file is written atomically with :mod:`diverseevol._files` (temporary file, fsync, rename,
directory fsync): a reader sees either the old file or the complete new one, never a torn write.
Only JSON and ``.npy`` (loaded with ``allow_pickle=False``) are used: nothing on disk can run
code when read.

Layout (``docs/run_directory.md`` describes every field)::

    run_dir/
      config.json                 format version, library version, run_id, data fingerprint, config
      status.json                 state ("running" | "finished"), rounds completed (summary)
      metrics.json                every completed metrics row (summary, rewritten per round)
      rounds/round_000/
        pool.json                 P_t, absolute row indices into Z, in pick order
        train.json                written when the trainer returned: training finished
        model/                    the trainer's out_dir
        embeddings.npy            M_t's (N, d) embeddings (only with cache_embeddings=True)
        embeddings.json           its shape, dtype and SHA-256, written after it (checked on resume)
        scores/<name>.npy         M_t's (N,) scores (when the sampler needs them)
        scores/<name>.json        their shape, dtype and SHA-256
        selection.json            the records added to make P_{t+1}, pick radii, signal metrics
        judge.json                the judge's metrics for M_t
        metrics.json              the round's metrics row: the round is complete

:meth:`RunDirectory.read_round` reads everything recorded for one round into a
:class:`RoundRecord`, and :meth:`RunDirectory.replay` walks the recorded rounds in order, each
with the pool it was run on: resuming a run and :meth:`EvolutionResult.load
<diverseevol.run.result.EvolutionResult.load>` both read the disk through these two.

Every file read back is checked (:mod:`diverseevol.run.validate`): a file that is not what the
loop writes raises :class:`~diverseevol.errors.RunDirectoryError` naming the file and the fix.

Imports only numpy, :mod:`diverseevol.errors`, :mod:`diverseevol._files` and
:mod:`diverseevol.run.validate`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from .._files import (
    TMP_MARK,
    fsync_directory,
    is_temp_name,
    load_npy,
    read_json,
    redact_secrets,
    to_jsonable,
    write_json,
    write_npy,
)
from ..errors import RunDirectoryError, RunDirectoryMismatchError
from . import validate

__all__ = ["FORMAT", "FORMAT_VERSION", "RoundRecord", "RunDirectory", "selection_indices", "selection_radii"]

logger = logging.getLogger(__name__)

FORMAT = "diverseevol-run"
FORMAT_VERSION = 1


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RoundRecord:
    """Everything recorded on disk for round t (each file's parsed content, or None when missing).

    Attributes
    ----------
    round : int
        t.
    pool : ndarray of int64, shape (|P_t|,) or None
        The pool the round was run on: absolute row indices into Z, pick order. Set by
        :meth:`RunDirectory.replay` (derived from P_0 and the earlier selections); None from
        :meth:`RunDirectory.read_round`.
    stored_pool : ndarray of int64 or None
        ``pool.json`` as written when the round started.
    train, selection, judge, metrics : dict or None
        ``train.json`` (training finished), ``selection.json``, ``judge.json`` and the round's
        ``metrics.json`` (the round is complete).
    model_dir : pathlib.Path
        The trainer's ``out_dir`` of the round.
    """

    round: int
    stored_pool: np.ndarray | None
    train: dict[str, Any] | None
    selection: dict[str, Any] | None
    judge: dict[str, Any] | None
    metrics: dict[str, Any] | None
    model_dir: Path
    pool: np.ndarray | None = None

    @property
    def complete(self) -> bool:
        """Whether the round's metrics row was written (nothing of the round is left to do)."""
        return self.metrics is not None

    @property
    def new_indices(self) -> np.ndarray:
        """S_t: the records the round added, row indices into Z in pick order (empty without a selection)."""
        return selection_indices(self.selection)

    @property
    def radii(self) -> np.ndarray | None:
        """The covering radius at each pick of :attr:`new_indices` (float64), or None."""
        return selection_radii(self.selection)


# ---- cached arrays with a checksum record ---------------------------------------------------------
def _digest(arr: np.ndarray) -> tuple[str, int | None]:
    """SHA-256 of ``arr``'s shape, dtype and C-order bytes, and its first row holding NaN/Inf (or None).

    Reads the array once, in blocks of rows (a memmap is never loaded whole).
    """
    h = hashlib.sha256(json.dumps([list(arr.shape), arr.dtype.str]).encode())
    rows = max(1, (1 << 24) // max(1, arr[:1].nbytes))
    bad: int | None = None
    for start in range(0, arr.shape[0], rows):
        block = np.ascontiguousarray(arr[start : start + rows])
        h.update(memoryview(block).cast("B"))
        if bad is None and np.issubdtype(block.dtype, np.inexact) and not np.isfinite(block).all():
            finite = np.isfinite(block).reshape(block.shape[0], -1).all(axis=1)
            bad = start + int(np.flatnonzero(~finite)[0])
    return h.hexdigest(), bad


def _record_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _write_recorded_npy(path: Path, arr: np.ndarray) -> None:
    """Write ``arr`` as ``path``, then its checksum record.

    In this order each write is progress on its own: a process killed between the two leaves an
    array without a record, read like a run directory written before records existed. A record
    left by an earlier array (deleted by the user to recompute it) is removed first.
    """
    digest, _ = _digest(arr)
    _record_path(path).unlink(missing_ok=True)
    write_npy(path, arr)
    write_json(_record_path(path), {"file": path.name, "shape": list(arr.shape), "dtype": arr.dtype.str,
                                    "sha256": digest})


def _check_recorded(path: Path, arr: np.ndarray, fix: str) -> int | None:
    """Compare ``arr`` (read from ``path``) with its checksum record; return its first NaN/Inf row (or None).

    A missing record (a run directory written before records existed) is not an error; without one,
    NaN/Inf rows are reported to the caller. With one, a row of NaN/Inf that matches it is the
    producer's own output and is not reported.
    """
    record_path = _record_path(path)
    digest, bad = _digest(arr)
    if not record_path.is_file():
        return bad
    record = read_json(record_path, fix=fix)
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str):
        raise validate.corrupt(record_path, "is not the checksum record the loop writes (no 'sha256')", fix)
    if record["sha256"] != digest:
        raise validate.corrupt(
            path,
            f"does not match the checksum recorded in {record_path.name} when the loop wrote it (shape "
            f"{record.get('shape')}, dtype {record.get('dtype')}; the file has shape {list(arr.shape)}, dtype "
            f"{arr.dtype.str}): it was replaced or edited since, and resuming with it would select other records",
            fix,
        )
    return None


def selection_indices(selection: Mapping[str, Any] | None) -> np.ndarray:
    """The ``new_indices`` of a ``selection.json`` content as int64, shape (|S_t|,); empty for None."""
    if selection is None:
        return np.empty(0, dtype=np.int64)
    return np.asarray(selection.get("new_indices", []), dtype=np.int64).reshape(-1)


def selection_radii(selection: Mapping[str, Any] | None) -> np.ndarray | None:
    """The ``radii`` of a ``selection.json`` content as float64, shape (|S_t|,), or None."""
    radii = None if selection is None else selection.get("radii")
    return None if radii is None else np.asarray(radii, dtype=np.float64)


class RunDirectory:
    """Reader and writer of one run directory (see the module docstring for the layout).

    Parameters
    ----------
    path : path-like
        The directory. It need not exist yet.

    Notes
    -----
    Only one process may write a run directory at a time; :meth:`lock` takes an exclusive
    ``flock`` on ``run_dir/.lock`` (released automatically when the process dies).
    """

    CONFIG = "config.json"
    STATUS = "status.json"
    METRICS = "metrics.json"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock_fh: IO[str] | None = None
        self._header: dict[str, Any] | None = None  # config.json, read once; reset by create/clear

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    # ---- whole directory ----------------------------------------------------------------
    def is_run_directory(self) -> bool:
        """Whether ``config.json`` exists and declares this file format."""
        cfg = self.path / self.CONFIG
        if not cfg.is_file():
            return False
        try:
            return read_json(cfg).get("format") == FORMAT
        except (RunDirectoryError, AttributeError):
            return False

    def check_location(self) -> None:
        """Raise :class:`RunDirectoryError` if the path, or a folder above it, is a regular file.

        Raises
        ------
        RunDirectoryError
            Naming the file and saying what to pass instead (not ``NotADirectoryError``).
        """
        for candidate in (self.path, *self.path.parents):
            if not candidate.exists():
                continue
            if candidate.is_dir():
                return
            where = "" if candidate == self.path else f", a folder on the path of {self.path}"
            raise RunDirectoryError(
                f"run_dir {self.path}: {candidate} is a file{where}, not a directory. Pass the path of a directory "
                f"for the run: a new one (it is created), an empty one, or a run directory to resume, e.g. "
                f"run_dir={str(candidate.with_name(candidate.stem + '_run'))!r}."
            )

    def config_problem(self) -> str | None:
        """Why ``config.json`` cannot be read (not UTF-8, not JSON, nested too deeply), or None.

        None also when it is missing or readable (whether it is this library's is
        :meth:`is_run_directory`'s question).
        """
        cfg = self.path / self.CONFIG
        if not cfg.is_file():
            return None
        try:
            read_json(cfg, fix="")
        except OSError as exc:  # RunDirectoryError is an OSError too
            return str(exc).split("; the run directory is corrupt")[0].strip()
        return None

    def is_empty(self) -> bool:
        """Whether the directory is missing or holds nothing but lock and temporary files."""
        if not self.path.exists():
            return True
        return all(p.name == ".lock" or is_temp_name(p.name) for p in self.path.iterdir())

    def read_header(self) -> dict[str, Any]:
        """Return the parsed ``config.json`` (keys ``format``, ``format_version``, ``data``, ``config``...).

        Raises
        ------
        RunDirectoryError
            If the directory is not a diverseevol run directory or was written by a newer format.
        """
        cfg = self.path / self.CONFIG
        if not cfg.is_file():
            self.check_location()
            raise RunDirectoryError(
                f"{self.path} is not a diverseevol run directory: {self.CONFIG} is missing."
            )
        if self._header is not None:
            return self._header
        fix = self._header_fix()
        header = read_json(cfg, fix=fix)
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise RunDirectoryError(f"{cfg} was not written by diverseevol (no 'format': {FORMAT!r}).")
        version = header.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise RunDirectoryError(
                f"{cfg} has format_version {version!r}; this diverseevol reads versions <= {FORMAT_VERSION}. "
                f"Upgrade diverseevol to read it."
            )
        self._header = validate.header(header, cfg, fix)
        return header

    def _header_fix(self) -> str:
        return (
            f"Restore {self.CONFIG} from a copy, or start over with overwrite=True or in a new run_dir "
            f"(the rounds cannot be checked without it)."
        )

    @property
    def n_records(self) -> int:
        """N, the number of records of Z the run was made with (``config.json``)."""
        return int(self.read_header()["data"]["n_records"])

    def create(self, *, config: Mapping[str, Any], data: Mapping[str, Any], library_version: str) -> None:
        """Write ``config.json`` for a new run (secrets redacted)."""
        self.path.mkdir(parents=True, exist_ok=True)
        self._header = None
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library_version": library_version,
            "created_at": _now(),
            "run_id": uuid.uuid4().hex,  # tells this run apart from earlier ones at the same path (trackers)
            "data": dict(data),
            "config": redact_secrets(to_jsonable(config)),
        }
        write_json(self.path / self.CONFIG, header)
        write_json(self.path / self.STATUS, {"state": "running", "completed_rounds": 0, "updated_at": _now()})

    def check_compatible(
        self, *, config: Mapping[str, Any], data: Mapping[str, Any], compare_keys: tuple[str, ...]
    ) -> dict[str, Any]:
        """Raise :class:`RunDirectoryMismatchError` unless the stored data and config match.

        Parameters
        ----------
        config : Mapping
            The new run's config (before redaction).
        data : Mapping
            The new data's fingerprint (``n_records``, ``sha256``).
        compare_keys : tuple of str
            Config keys that must be equal (those that change the pools).

        Returns
        -------
        dict
            The stored header.
        """
        header = self.read_header()
        problems: list[str] = []
        stored_data = header.get("data", {})
        if stored_data.get("n_records") != data.get("n_records"):
            problems.append(
                f"data: the run was made with {stored_data.get('n_records')} records, the data given has "
                f"{data.get('n_records')}"
            )
        elif stored_data.get("sha256") != data.get("sha256"):
            problems.append(
                f"data: same record count ({data.get('n_records')}) but different content or order "
                f"(sha256 {str(stored_data.get('sha256'))[:12]}... vs {str(data.get('sha256'))[:12]}...)"
            )
        stored_cfg = header.get("config", {})
        new_cfg = redact_secrets(to_jsonable(config))
        for key in compare_keys:
            if stored_cfg.get(key) != new_cfg.get(key):
                problems.append(f"{key}: stored {stored_cfg.get(key)!r}, given {new_cfg.get(key)!r}")
        if problems:
            raise RunDirectoryMismatchError(
                f"The run directory {self.path} belongs to a different run:\n  - "
                + "\n  - ".join(problems)
                + "\nUse another run_dir, pass overwrite=True to delete it and start over, or restore the "
                "original data and settings to resume it."
            )
        return header

    def clear(self) -> None:
        """Delete the contents of a run directory (refuses directories that are not run directories)."""
        if not self.path.exists():
            return
        if not (self.is_run_directory() or self.is_empty()):
            raise RunDirectoryError(
                f"Refusing to delete {self.path}: it is not empty and not a diverseevol run directory "
                f"(no {self.CONFIG}). Choose an empty or new run_dir."
            )
        self._header = None
        for child in self.path.iterdir():
            if child.name == ".lock":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        fsync_directory(self.path)

    def remove_temp_files(self) -> int:
        """Delete temporary files left by writes interrupted before their rename; return how many.

        Only the temporary files of :func:`diverseevol._files.atomic_write` are deleted (their
        names match :func:`~diverseevol._files.is_temp_name`), anywhere under the directory;
        other files, such as a trainer's own temporary files under ``model/``, are left alone.
        """
        if not self.path.exists():
            return 0
        n = 0
        for p in self.path.rglob(f"*{TMP_MARK}*"):
            if is_temp_name(p.name) and p.is_file() and not p.is_symlink():
                with contextlib.suppress(OSError):
                    p.unlink()
                    n += 1
        if n:
            logger.info("removed %d temporary files left by an interrupted write in %s", n, self.path)
        return n

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the run directory (POSIX ``flock``; a no-op elsewhere).

        Raises
        ------
        RunDirectoryError
            If another live process holds the lock.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        fh = open(self.path / ".lock", "w")  # noqa: SIM115 - held for the context's duration
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                raise RunDirectoryError(
                    f"{self.path} is in use by another running process (its .lock is held). Wait for it to "
                    f"finish, or use another run_dir."
                ) from exc
            yield
        finally:
            fh.close()

    # ---- summaries ----------------------------------------------------------------------
    def write_status(self, *, state: str, completed_rounds: int, rounds: int) -> None:
        """Rewrite ``status.json``."""
        write_json(
            self.path / self.STATUS,
            {"state": state, "completed_rounds": completed_rounds, "rounds": rounds, "updated_at": _now()},
        )

    def read_status(self) -> dict[str, Any]:
        """Return ``status.json``, or ``{}`` when it is missing."""
        path = self.path / self.STATUS
        if not path.is_file():
            return {}
        fix = "Resume the run to rewrite it (it summarises the rounds), or delete it."
        return validate.status_info(read_json(path, fix=fix), path, fix)

    def write_metrics_summary(self, rows: list[Mapping[str, Any]]) -> None:
        """Rewrite ``metrics.json`` with every completed row."""
        write_json(self.path / self.METRICS, rows)

    def read_metrics_summary(self) -> list[dict[str, Any]] | None:
        """Return the rows in ``metrics.json``, or None when it is missing."""
        path = self.path / self.METRICS
        return read_json(path) if path.is_file() else None

    def complete_round(self, t: int, row: Mapping[str, Any], *, rounds: int) -> None:
        """Write round ``t``'s metrics row (the round is then complete), then the two summaries."""
        self.write_round_metrics(t, row)
        done = [self.read_round_metrics(i) for i in range(t + 1)]
        self.write_metrics_summary([r for r in done if r is not None])
        state = "running" if t < rounds else "finished"
        self.write_status(state=state, completed_rounds=t + 1, rounds=rounds)

    def finish(self, rows: list[Mapping[str, Any]], *, rounds: int) -> None:
        """Bring the summaries up to date with a finished run (they may lag the rounds after a crash,
        or be unreadable: they are derived from the rounds and rewritten)."""
        try:
            summary = self.read_metrics_summary()
        except RunDirectoryError:
            summary = None
        if summary != to_jsonable(rows):
            self.write_metrics_summary(rows)
        try:
            state = self.read_status().get("state")
        except RunDirectoryError:
            state = None
        if state != "finished":
            self.write_status(state="finished", completed_rounds=rounds + 1, rounds=rounds)

    # ---- per round ----------------------------------------------------------------------
    def round_dir(self, t: int) -> Path:
        """``rounds/round_{t:03d}``."""
        return self.path / "rounds" / f"round_{t:03d}"

    def model_dir(self, t: int) -> Path:
        """The trainer's ``out_dir`` for round ``t`` (created)."""
        out = self.round_dir(t) / "model"
        out.mkdir(parents=True, exist_ok=True)
        return out

    def rounds_on_disk(self) -> list[int]:
        """Round numbers with a directory, ascending."""
        base = self.path / "rounds"
        if not base.is_dir():
            return []
        out = []
        for p in base.iterdir():
            m = re.fullmatch(r"round_(\d+)", p.name)
            if m and p.is_dir():
                out.append(int(m.group(1)))
        return sorted(out)

    def _read_checked(self, t: int, name: str, check: Callable[[Any, Path, str], Any]) -> Any:
        """Round ``t``'s file ``name`` parsed and passed through ``check(obj, path, fix)``; None when missing."""
        path = self.round_dir(t) / name
        if not path.is_file():
            return None
        fix = validate.round_fix(self.round_dir(t))
        return check(read_json(path, fix=fix), path, fix)

    def write_pool(self, t: int, pool_idx: np.ndarray) -> None:
        """Write P_t (absolute row indices into Z, pick order) to ``pool.json``."""
        idx = np.asarray(pool_idx, dtype=np.int64)
        write_json(self.round_dir(t) / "pool.json", {"round": t, "pool_size": int(idx.size), "indices": idx})

    def read_pool(self, t: int) -> np.ndarray | None:
        """Return P_t as int64, or None when ``pool.json`` is missing."""
        return self._read_checked(t, "pool.json", lambda o, p, f: validate.pool_info(o, t, self.n_records, p, f))

    def write_train(self, t: int, info: Mapping[str, Any]) -> None:
        """Record that training of round ``t`` finished (``train.json``)."""
        write_json(self.round_dir(t) / "train.json", {"round": t, "finished_at": _now(), **info})

    def read_train(self, t: int) -> dict[str, Any] | None:
        """Return ``train.json`` or None when training of round ``t`` did not finish."""
        return self._read_checked(t, "train.json", lambda o, p, f: validate.train_info(o, t, p, f))

    def write_selection(self, t: int, info: Mapping[str, Any]) -> None:
        """Write ``selection.json`` (new indices in pick order, radii, signal metrics, timings)."""
        write_json(self.round_dir(t) / "selection.json", {"round": t, **info})

    def read_selection(self, t: int) -> dict[str, Any] | None:
        """Return ``selection.json`` or None (indices checked against N; see :meth:`check_selection`)."""
        return self._read_checked(
            t, "selection.json", lambda o, p, f: validate.selection_info(o, t, self.n_records, p, f)
        )

    def write_judge(self, t: int, info: Mapping[str, Any]) -> None:
        """Write the judge's metrics for round ``t`` (``judge.json``; secrets redacted)."""
        write_json(self.round_dir(t) / "judge.json", redact_secrets({"round": t, **to_jsonable(info)}))

    def read_judge(self, t: int) -> dict[str, Any] | None:
        """Return ``judge.json`` or None."""
        return self._read_checked(t, "judge.json", lambda o, p, f: validate.judge_info(o, t, p, f))

    def write_round_metrics(self, t: int, row: Mapping[str, Any]) -> None:
        """Write the complete metrics row of round ``t`` (secrets redacted); marks the round complete."""
        write_json(self.round_dir(t) / "metrics.json", redact_secrets(to_jsonable(row)))

    def read_round_metrics(self, t: int) -> dict[str, Any] | None:
        """Return the metrics row of round ``t``, or None when the round is not complete."""
        return self._read_checked(t, "metrics.json", lambda o, p, f: validate.metrics_row(o, t, p, f))

    def embeddings_path(self, t: int) -> Path:
        """``embeddings.npy`` of round ``t``."""
        return self.round_dir(t) / "embeddings.npy"

    def write_embeddings(self, t: int, emb: np.ndarray) -> None:
        """Cache M_t's (N, d) embeddings as ``.npy``, with their checksum record (``embeddings.json``)."""
        _write_recorded_npy(self.embeddings_path(t), np.asarray(emb))

    def read_embeddings(self, t: int, *, verify: bool = True) -> np.ndarray | None:
        """Return the cached embeddings as a read-only memmap of shape (N, d), or None.

        Parameters
        ----------
        t : int
        verify : bool, default True
            Compare the file with the checksum recorded when it was written (one read of it) and
            refuse NaN/Inf; False right after this process wrote it.

        Raises
        ------
        RunDirectoryError
            If the file is not an (N, d) array of real numbers, differs from its checksum record
            (replaced or edited since it was written), or holds NaN/Inf; the message names the file
            and says to delete it to recompute it.
        """
        path = self.embeddings_path(t)
        if not path.is_file():
            return None
        fix = validate.cache_fix(path)
        arr = load_npy(path, mmap=True, error=RunDirectoryError, fix=" " + fix)
        arr = validate.embeddings_array(arr, self.n_records, path, fix)
        if verify:
            bad_row = _check_recorded(path, arr, fix)
            if bad_row is not None:
                raise validate.corrupt(path, f"holds NaN or Inf in row {bad_row}, which the loop never caches", fix)
        return arr

    def write_scores(self, t: int, scores: Mapping[str, np.ndarray]) -> None:
        """Write each (N,) score array as ``scores/<name>.npy``, with its checksum record ``scores/<name>.json``."""
        for name, values in scores.items():
            if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
                raise RunDirectoryError(f"score name {name!r} cannot be used as a file name.")
            _write_recorded_npy(self.round_dir(t) / "scores" / f"{name}.npy", np.asarray(values))

    def read_scores(self, t: int, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
        """Return the named scores of round ``t``, or None when any is missing."""
        out = {}
        for name in names:
            path = self.round_dir(t) / "scores" / f"{name}.npy"
            if not path.is_file():
                return None
            fix = validate.cache_fix(path)
            arr = load_npy(path, error=RunDirectoryError, fix=" " + fix)
            checked = validate.score_array(arr, self.n_records, path, fix)
            _check_recorded(path, arr, fix)  # NaN scores are the scorer's business: not refused here
            out[name] = checked
        return out

    def check_selection(
        self, t: int, pool: np.ndarray, selection: Mapping[str, Any] | None, rounds: int
    ) -> None:
        """Check round ``t``'s ``selection.json`` against the pool it was made from.

        Parameters
        ----------
        t : int
        pool : ndarray of int64, shape (|P_t|,)
            P_t, absolute row indices into Z.
        selection : Mapping or None
            What :meth:`read_selection` returned (None: nothing to check).
        rounds : int
            T. Round t < T adds ``k`` records (``config.json``); round T adds none.

        Raises
        ------
        RunDirectoryError
            If S_t overlaps P_t, or holds another number of records than the run adds per round;
            or if round 0's one-time picks overlap P_0 or are not ``k * T`` records.
        """
        if selection is None:
            return
        path, fix = self.round_dir(t) / "selection.json", validate.round_fix(self.round_dir(t))
        new = selection_indices(selection)
        in_pool = new[np.isin(new, pool)]
        if in_pool.size:
            raise validate.corrupt(
                path,
                f"lists new_indices already in the pool P_{t} it was selected from (e.g. "
                f"{in_pool[:5].tolist()}); a round adds records that are not in the pool yet",
                fix,
            )
        k = self.read_header().get("config", {}).get("k")
        if isinstance(k, int):
            expected = k if t < rounds else 0
            if new.size != expected:
                raise validate.corrupt(
                    path,
                    f"lists {new.size} new_indices; round {t} of this run adds {expected} records "
                    f"(k = {k}, rounds = {rounds} in {self.CONFIG})",
                    fix,
                )
            one_time = selection.get("one_time")
            if one_time is not None:
                picks = np.asarray(one_time["indices"], dtype=np.int64)
                if picks.size != k * rounds or np.isin(picks, pool).any():
                    raise validate.corrupt(
                        path,
                        f"lists {picks.size} one_time.indices ({int(np.isin(picks, pool).sum())} of them in "
                        f"P_0); a one-time run picks k * rounds = {k * rounds} records outside P_0",
                        fix,
                    )

    # ---- replay -------------------------------------------------------------------------
    def read_round(self, t: int) -> RoundRecord:
        """Read everything recorded for round ``t`` (files not written yet are None)."""
        return RoundRecord(
            round=t,
            stored_pool=self.read_pool(t),
            train=self.read_train(t),
            selection=self.read_selection(t),
            judge=self.read_judge(t),
            metrics=self.read_round_metrics(t),
            model_dir=self.round_dir(t) / "model",
        )

    def replay(self, rounds: int, first_pool: np.ndarray | None = None) -> Iterator[RoundRecord]:
        """Yield the recorded rounds ``0..rounds`` in order, each with the pool it was run on.

        Parameters
        ----------
        rounds : int
            T, the run's number of selection rounds (its last round is T).
        first_pool : ndarray of int64, optional
            P_0 (absolute row indices into Z). ``None``: round 0's ``pool.json``.

        Yields
        ------
        RoundRecord
            With :attr:`RoundRecord.pool` set: P_0, then P_{t+1} = P_t followed by S_t (the
            ``new_indices`` of ``selection.json``). Stops after round ``rounds``, or after the
            first round without ``selection.json`` (the next pool is not decided yet); yields
            nothing when P_0 is unknown. Reads lazily: a round's files are read when it is reached.
        """
        pool = self.read_pool(0) if first_pool is None else np.asarray(first_pool, dtype=np.int64)
        for t in range(rounds + 1):
            if pool is None:
                return
            record = replace(self.read_round(t), pool=pool)
            self.check_selection(t, pool, record.selection, rounds)
            yield record
            if record.selection is None:
                return
            pool = np.concatenate([pool, record.new_indices])
