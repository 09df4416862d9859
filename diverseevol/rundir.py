"""The run directory: the one place that writes and reads an EvolutionLoop's files on disk.

Every file is written atomically: the bytes go to a temporary file in the same directory, which
is flushed and ``fsync``-ed, then renamed over the target with ``os.replace``, and the directory
itself is ``fsync``-ed. A reader therefore sees either the old file or the complete new one,
never a torn write, even after ``kill -9`` or a power cut. (The environment variable
``DIVERSEEVOL_FSYNC=0`` skips the two fsyncs, e.g. for tests on slow disks: writes stay atomic
against a killed process, but not against a power cut.) Only JSON and ``.npy`` (loaded with
``allow_pickle=False``) are used: nothing on disk can run code when read.

Layout (``docs/run_directory.md`` describes every field)::

    run_dir/
      config.json                 format version, library version, data fingerprint, config
      status.json                 state ("running" | "finished"), rounds completed (summary)
      metrics.json                every completed metrics row (summary, rewritten per round)
      rounds/round_000/
        pool.json                 P_t, absolute row indices into Z, in pick order
        train.json                written when the trainer returned: training finished
        model/                    the trainer's out_dir
        embeddings.npy            M_t's (N, d) embeddings (only with cache_embeddings=True)
        scores/<name>.npy         M_t's (N,) scores (when the sampler needs them)
        selection.json            the records added to make P_{t+1}, pick radii, signal metrics
        judge.json                the judge's metrics for M_t
        metrics.json              the round's metrics row: the round is complete
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import math
import os
import re
import secrets as _secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import RunDirectoryError, RunDirectoryMismatchError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "RunDirectory",
    "atomic_write",
    "read_json",
    "read_npy",
    "redact_secrets",
    "to_jsonable",
    "write_json",
    "write_npy",
]

logger = logging.getLogger(__name__)

FORMAT = "diverseevol-run"
FORMAT_VERSION = 1

_TMP_MARK = ".tmp."
_SECRET_KEY = re.compile(
    r"(^|[_\-.])(api[_\-]?key|apikey|token|access[_\-]?token|secret|password|passwd|credentials?)($|[_\-.])",
    re.IGNORECASE,
)
REDACTED = "<redacted>"


# --------------------------------------------------------------------------------------------
# atomic file primitives
# --------------------------------------------------------------------------------------------
def _fsync_enabled() -> bool:
    """``DIVERSEEVOL_FSYNC=0`` skips fsync (faster tests); renames stay atomic, power-loss safety goes."""
    return os.environ.get("DIVERSEEVOL_FSYNC", "1").lower() not in ("0", "false", "no", "off")


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix" or not _fsync_enabled():  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Write a file atomically: ``write(fh)`` fills a temp file that then replaces ``path``.

    Parameters
    ----------
    path : path-like
        The target file; its parent directory is created if needed.
    write : callable
        Receives a binary file handle open on the temporary file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}{_TMP_MARK}{os.getpid()}.{_secrets.token_hex(4)}"
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            if _fsync_enabled():
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return path


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths, tuples and sets to JSON types; non-finite floats to None."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v) for v in items]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return repr(obj)


def redact_secrets(obj: Any) -> Any:
    """Return ``obj`` with the value of every key that names a secret replaced by ``"<redacted>"``.

    A key is secret when one of its ``_``/``-``/``.``-separated parts is ``api_key``/``apikey``,
    ``token``, ``secret``, ``password``/``passwd`` or ``credential(s)``, in any case (``hf_token``,
    ``OPENAI_API_KEY``, ``client_secret``; not ``max_tokens`` or ``tokenizer``). Applied at every
    nesting level.
    """
    if isinstance(obj, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else redact_secrets(v))
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [redact_secrets(v) for v in obj]
    return obj


def _dumps(obj: Any, level: int = 0) -> str:
    """Indented JSON whose lists of scalars stay on one line (index lists are read by people)."""
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(obj, dict) and obj:
        items = ",\n".join(
            f"{inner}{json.dumps(k, ensure_ascii=False)}: {_dumps(v, level + 1)}" for k, v in obj.items()
        )
        return "{\n" + items + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        return "[\n" + ",\n".join(inner + _dumps(v, level + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically (numpy values converted, NaN/Inf as null)."""
    data = (_dumps(to_jsonable(obj)) + "\n").encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data))


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by :func:`write_json`.

    Raises
    ------
    RunDirectoryError
        If the file is not valid JSON (it was not written by this library, or was edited).
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise RunDirectoryError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); the run directory is corrupt. "
            f"Delete that file to redo its step, or start over with overwrite=True."
        ) from exc


def write_npy(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write ``array`` as ``.npy``, atomically (memmaps are streamed, not loaded whole)."""
    array = np.asanyarray(array)
    if array.dtype.hasobject:
        raise RunDirectoryError(
            f"refusing to write an object array to {path}: .npy files here never hold pickles."
        )
    return atomic_write(path, lambda fh: np.save(fh, array, allow_pickle=False))


def read_npy(path: str | os.PathLike[str], *, mmap: bool = False) -> np.ndarray:
    """Read a ``.npy`` file without pickle support; ``mmap=True`` returns a read-only memmap."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:
        raise RunDirectoryError(
            f"{path} is not a valid .npy file ({exc}); delete it to recompute it."
        ) from exc


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# the run directory
# --------------------------------------------------------------------------------------------
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

    def is_empty(self) -> bool:
        """Whether the directory is missing or holds nothing but lock and temporary files."""
        if not self.path.exists():
            return True
        return all(p.name == ".lock" or _TMP_MARK in p.name for p in self.path.iterdir())

    def read_header(self) -> dict[str, Any]:
        """Return the parsed ``config.json`` (keys ``format``, ``format_version``, ``data``, ``config``...).

        Raises
        ------
        RunDirectoryError
            If the directory is not a diverseevol run directory or was written by a newer format.
        """
        cfg = self.path / self.CONFIG
        if not cfg.is_file():
            raise RunDirectoryError(
                f"{self.path} is not a diverseevol run directory: {self.CONFIG} is missing."
            )
        header = read_json(cfg)
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise RunDirectoryError(f"{cfg} was not written by diverseevol (no 'format': {FORMAT!r}).")
        version = header.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise RunDirectoryError(
                f"{cfg} has format_version {version!r}; this diverseevol reads versions <= {FORMAT_VERSION}. "
                f"Upgrade diverseevol to read it."
            )
        return header

    def create(self, *, config: Mapping[str, Any], data: Mapping[str, Any], library_version: str) -> None:
        """Write ``config.json`` for a new run (secrets redacted)."""
        self.path.mkdir(parents=True, exist_ok=True)
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library_version": library_version,
            "created_at": _now(),
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
        for child in self.path.iterdir():
            if child.name == ".lock":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        _fsync_dir(self.path)

    def remove_temp_files(self) -> int:
        """Delete temporary files left by writes interrupted before their rename; return how many."""
        if not self.path.exists():
            return 0
        n = 0
        for p in self.path.rglob(f"*{_TMP_MARK}*"):
            if p.is_file() and p.name.startswith("."):
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
        return read_json(path) if path.is_file() else {}

    def write_metrics_summary(self, rows: list[Mapping[str, Any]]) -> None:
        """Rewrite ``metrics.json`` with every completed row."""
        write_json(self.path / self.METRICS, rows)

    def read_metrics_summary(self) -> list[dict[str, Any]] | None:
        """Return the rows in ``metrics.json``, or None when it is missing."""
        path = self.path / self.METRICS
        return read_json(path) if path.is_file() else None

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

    def _read_opt(self, t: int, name: str) -> Any:
        path = self.round_dir(t) / name
        return read_json(path) if path.is_file() else None

    def write_pool(self, t: int, pool_idx: np.ndarray) -> None:
        """Write P_t (absolute row indices into Z, pick order) to ``pool.json``."""
        idx = np.asarray(pool_idx, dtype=np.int64)
        write_json(self.round_dir(t) / "pool.json", {"round": t, "pool_size": int(idx.size), "indices": idx})

    def read_pool(self, t: int) -> np.ndarray | None:
        """Return P_t as int64, or None when ``pool.json`` is missing."""
        obj = self._read_opt(t, "pool.json")
        return None if obj is None else np.asarray(obj["indices"], dtype=np.int64).reshape(-1)

    def write_train(self, t: int, info: Mapping[str, Any]) -> None:
        """Record that training of round ``t`` finished (``train.json``)."""
        write_json(self.round_dir(t) / "train.json", {"round": t, "finished_at": _now(), **info})

    def read_train(self, t: int) -> dict[str, Any] | None:
        """Return ``train.json`` or None when training of round ``t`` did not finish."""
        return self._read_opt(t, "train.json")

    def write_selection(self, t: int, info: Mapping[str, Any]) -> None:
        """Write ``selection.json`` (new indices in pick order, radii, signal metrics, timings)."""
        write_json(self.round_dir(t) / "selection.json", {"round": t, **info})

    def read_selection(self, t: int) -> dict[str, Any] | None:
        """Return ``selection.json`` or None."""
        return self._read_opt(t, "selection.json")

    def write_judge(self, t: int, info: Mapping[str, Any]) -> None:
        """Write the judge's metrics for round ``t`` (``judge.json``)."""
        write_json(self.round_dir(t) / "judge.json", {"round": t, **info})

    def read_judge(self, t: int) -> dict[str, Any] | None:
        """Return ``judge.json`` or None."""
        return self._read_opt(t, "judge.json")

    def write_round_metrics(self, t: int, row: Mapping[str, Any]) -> None:
        """Write the complete metrics row of round ``t``; marks the round complete."""
        write_json(self.round_dir(t) / "metrics.json", row)

    def read_round_metrics(self, t: int) -> dict[str, Any] | None:
        """Return the metrics row of round ``t``, or None when the round is not complete."""
        return self._read_opt(t, "metrics.json")

    def embeddings_path(self, t: int) -> Path:
        """``embeddings.npy`` of round ``t``."""
        return self.round_dir(t) / "embeddings.npy"

    def write_embeddings(self, t: int, emb: np.ndarray) -> None:
        """Cache M_t's (N, d) embeddings as ``.npy``."""
        write_npy(self.embeddings_path(t), emb)

    def read_embeddings(self, t: int) -> np.ndarray | None:
        """Return the cached embeddings as a read-only memmap, or None."""
        path = self.embeddings_path(t)
        return read_npy(path, mmap=True) if path.is_file() else None

    def write_scores(self, t: int, scores: Mapping[str, np.ndarray]) -> None:
        """Write each (N,) score array as ``scores/<name>.npy``."""
        for name, values in scores.items():
            if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
                raise RunDirectoryError(f"score name {name!r} cannot be used as a file name.")
            write_npy(self.round_dir(t) / "scores" / f"{name}.npy", np.asarray(values))

    def read_scores(self, t: int, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
        """Return the named scores of round ``t``, or None when any is missing."""
        out = {}
        for name in names:
            path = self.round_dir(t) / "scores" / f"{name}.npy"
            if not path.is_file():
                return None
            out[name] = read_npy(path)
        return out
