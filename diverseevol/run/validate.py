"""Checks of what a run directory holds: every file read back is what the loop could have written.

:class:`~diverseevol.run.directory.RunDirectory` passes each parsed file through one of these
functions before anyone uses it, so that a file edited by hand, truncated or mixed up with
another run's raises :class:`~diverseevol.errors.RunDirectoryError` naming the file and a fix,
instead of resuming with wrong pools or failing later with IndexError/KeyError/TypeError.
Each check knows only the file's content and what the header says (N, k, T); checks that need
the pool a round ran on (disjointness, counts) are in :meth:`RunDirectory.check_selection
<diverseevol.run.directory.RunDirectory.check_selection>`.

Imports only numpy, :mod:`diverseevol.errors` and :mod:`diverseevol._validation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import Interval, check_index_array
from ..errors import IndexValidationError, RunDirectoryError, ValidationError

__all__ = [
    "cache_fix",
    "corrupt",
    "embeddings_array",
    "header",
    "index_list",
    "judge_info",
    "metrics_row",
    "pool_info",
    "round_fix",
    "score_array",
    "selection_info",
    "status_info",
    "train_info",
]


# ---- messages ----------------------------------------------------------------------------------
def round_fix(round_dir: Path) -> str:
    """The fix for a bad file of a round: recompute the round and those after it."""
    return (
        f"Delete {round_dir}{'/'} and the later round directories to recompute them, "
        f"or start over with overwrite=True."
    )


def cache_fix(path: Path) -> str:
    """The fix for a bad cache file (embeddings, scores): recompute it."""
    return f"Delete {path} to recompute it, or start over with overwrite=True."


def corrupt(path: Path, problem: str, fix: str) -> RunDirectoryError:
    """The error for a file that is not what the loop writes."""
    return RunDirectoryError(f"{path} {problem}; the run directory was edited or is corrupt. {fix}")


# ---- pieces ------------------------------------------------------------------------------------
_INT = Interval(int)
_NUMBER = Interval(float)  # finite


def _is_int(value: Any) -> bool:
    return value in _INT


def _is_number(value: Any) -> bool:
    return value in _NUMBER


def _object(obj: Any, path: Path, fix: str, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise corrupt(path, f"must hold a JSON object ({what}); it holds a JSON {_json_type(obj)}", fix)
    return obj


def _json_type(obj: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(obj), "number")


def _round_field(obj: Mapping[str, Any], t: int, path: Path, fix: str, *, required: bool = False) -> None:
    if "round" not in obj and not required:
        return
    if obj.get("round") != t or not _is_int(obj.get("round")):
        raise corrupt(path, f"says round {obj.get('round')!r}; it is in the directory of round {t}", fix)


def _number_field(obj: Mapping[str, Any], key: str, path: Path, fix: str) -> None:
    if key in obj and not _is_number(obj[key]):
        raise corrupt(path, f"has {key} = {obj[key]!r}; expected a finite number", fix)


def index_list(value: Any, n: int, path: Path, key: str, fix: str) -> np.ndarray:
    """A JSON list of distinct whole-number row indices in ``[0, n)`` as int64, shape (m,).

    Raises
    ------
    RunDirectoryError
        If ``value`` is not a list, holds anything but JSON integers (``1.5``, ``"7"``,
        ``true``, nested lists), or an index is out of range or repeated.
    """
    if not isinstance(value, list):
        raise corrupt(path, f"has {key} = a JSON {_json_type(value)}; expected an array of row indices", fix)
    for i, item in enumerate(value):
        if not _is_int(item):
            raise corrupt(
                path, f"has {key}[{i}] = {item!r}; expected whole-number row indices in [0, {n})", fix
            )
    try:
        return check_index_array(np.asarray(value, dtype=np.int64), n, name=key)
    except (IndexValidationError, OverflowError) as exc:
        raise corrupt(path, f"has invalid {key}: {exc}", fix) from None


def _radii(value: Any, length: int, path: Path, key: str, fix: str) -> None:
    if value is None:
        return
    if not isinstance(value, list) or len(value) != length:
        got = f"{len(value)} values" if isinstance(value, list) else f"a JSON {_json_type(value)}"
        raise corrupt(path, f"has {key} = {got}; expected null or one number per index ({length})", fix)
    for i, item in enumerate(value):
        if item is not None and not _is_number(item):  # null: a non-finite radius written as null
            raise corrupt(path, f"has {key}[{i}] = {item!r}; expected a number", fix)


# ---- one function per file -----------------------------------------------------------------------
def header(obj: Any, path: Path, fix: str) -> dict[str, Any]:
    """``config.json`` past its ``format``/``format_version`` check: ``data`` and ``config`` objects, N >= 1."""
    data = obj.get("data")
    if not isinstance(data, dict):
        raise corrupt(path, f"has data = a JSON {_json_type(data)}; expected an object with n_records", fix)
    n = data.get("n_records")
    if not _is_int(n) or n < 1:
        raise corrupt(path, f"has data.n_records = {n!r}; expected the number of records (an integer >= 1)", fix)
    config = obj.get("config", {})
    if not isinstance(config, dict):
        raise corrupt(path, f"has config = a JSON {_json_type(config)}; expected an object", fix)
    for key in ("k", "rounds", "init_size"):
        if key in config and not (_is_int(config[key]) and config[key] >= 0):
            raise corrupt(path, f"has config.{key} = {config[key]!r}; expected an integer >= 0", fix)
    return obj


def status_info(obj: Any, path: Path, fix: str) -> dict[str, Any]:
    """``status.json``: an object whose ``state`` is a string."""
    obj = _object(obj, path, fix, "state, completed_rounds")
    if not isinstance(obj.get("state", ""), str):
        raise corrupt(path, f"has state = {obj['state']!r}; expected 'running' or 'finished'", fix)
    return obj


def pool_info(obj: Any, t: int, n: int, path: Path, fix: str) -> np.ndarray:
    """``pool.json`` -> P_t as int64, shape (|P_t|,): absolute row indices into Z, pick order."""
    obj = _object(obj, path, fix, "round, pool_size, indices")
    _round_field(obj, t, path, fix)
    if "indices" not in obj:
        raise corrupt(path, "has no 'indices'", fix)
    pool = index_list(obj["indices"], n, path, "indices", fix)
    if "pool_size" in obj and obj["pool_size"] != pool.size:
        raise corrupt(path, f"says pool_size {obj['pool_size']!r} but lists {pool.size} indices", fix)
    return pool


def selection_info(obj: Any, t: int, n: int, path: Path, fix: str) -> dict[str, Any]:
    """``selection.json``: ``new_indices`` (distinct, in [0, N)), ``radii`` (null or one number
    per index), ``signals`` (object), timings (numbers), and round 0's ``one_time`` picks."""
    obj = _object(obj, path, fix, "round, new_indices, radii, signals")
    _round_field(obj, t, path, fix)
    if "new_indices" not in obj:
        raise corrupt(path, "has no 'new_indices'", fix)
    new = index_list(obj["new_indices"], n, path, "new_indices", fix)
    _radii(obj.get("radii"), new.size, path, "radii", fix)
    if not isinstance(obj.get("signals", {}), dict):
        raise corrupt(path, f"has signals = {obj['signals']!r}; expected an object", fix)
    for key in ("time_embed_s", "time_score_s", "time_select_s"):
        _number_field(obj, key, path, fix)
    if "one_time" in obj:
        one_time = obj["one_time"]
        if not isinstance(one_time, dict) or "indices" not in one_time:
            raise corrupt(path, "has a 'one_time' entry without 'indices'", fix)
        picks = index_list(one_time["indices"], n, path, "one_time.indices", fix)
        _radii(one_time.get("radii"), picks.size, path, "one_time.radii", fix)
        if not np.array_equal(picks[: new.size], new):
            raise corrupt(path, "has new_indices that are not the first of its one_time.indices", fix)
    return obj


def train_info(obj: Any, t: int, path: Path, fix: str) -> dict[str, Any]:
    """``train.json``: an object with a numeric ``time_train_s``."""
    obj = _object(obj, path, fix, "round, finished_at, time_train_s")
    _round_field(obj, t, path, fix)
    _number_field(obj, "time_train_s", path, fix)
    return obj


def judge_info(obj: Any, t: int, path: Path, fix: str) -> dict[str, Any]:
    """``judge.json``: an object with ``metrics`` (an object) and a numeric ``time_judge_s``."""
    obj = _object(obj, path, fix, "round, metrics, time_judge_s")
    _round_field(obj, t, path, fix)
    if not isinstance(obj.get("metrics", {}), dict):
        raise corrupt(path, f"has metrics = a JSON {_json_type(obj['metrics'])}; expected an object", fix)
    _number_field(obj, "time_judge_s", path, fix)
    return obj


def metrics_row(obj: Any, t: int, path: Path, fix: str) -> dict[str, Any]:
    """A round's ``metrics.json``: an object whose ``round`` is ``t``."""
    obj = _object(obj, path, fix, "the round's metrics row")
    _round_field(obj, t, path, fix, required=True)
    return obj


def embeddings_array(arr: np.ndarray, n: int, path: Path, fix: str) -> np.ndarray:
    """A cached ``embeddings.npy``: real numbers, shape (N, d) with d >= 1 (the embedder's checks)."""
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 1:
        raise corrupt(path, f"has shape {arr.shape}; expected ({n}, d), one row per record of Z", fix)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise corrupt(path, f"has dtype {arr.dtype}; expected real numbers", fix)
    return arr


def score_array(arr: np.ndarray, n: int, path: Path, fix: str) -> np.ndarray:
    """A cached ``scores/<name>.npy`` as float64, shape (N,) (the scorer's checks)."""
    if arr.shape != (n,):
        raise corrupt(path, f"has shape {arr.shape}; expected ({n},), one score per record of Z", fix)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise corrupt(path, f"has dtype {arr.dtype}; expected real numbers", fix)
    try:
        return np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError, ValidationError) as exc:  # pragma: no cover - numeric dtypes convert
        raise corrupt(path, f"cannot be read as numbers ({exc})", fix) from None
