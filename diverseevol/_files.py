"""Small shared file I/O: atomic writes, JSON and ``.npy`` read/write, secret redaction.

Every write is atomic: the bytes go to a temporary file in the target's directory, which is
flushed and ``fsync``-ed, then renamed over the target with ``os.replace``, and the directory
itself is ``fsync``-ed. A reader therefore sees either the old file or the complete new one,
never a torn write, even after ``kill -9`` or a power cut. The environment variable
``DIVERSEEVOL_FSYNC=0`` skips the two fsyncs (e.g. for tests on slow disks): writes stay atomic
against a killed process, but not against a power cut. Only JSON and ``.npy`` (loaded with
``allow_pickle=False``) are written: nothing read back can run code.

A base module: imports only numpy and :mod:`diverseevol.errors`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import secrets as _secrets
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import DiverseEvolError, FileWriteError, RunDirectoryError

__all__ = [
    "REDACTED",
    "TMP_MARK",
    "atomic_write",
    "fsync_directory",
    "fsync_enabled",
    "is_temp_name",
    "temp_name",
    "load_npy",
    "parse_json",
    "read_json",
    "read_npy",
    "redact_secrets",
    "redact_text",
    "to_jsonable",
    "write_figure",
    "write_json",
    "write_npy",
]

#: Marks the name of a temporary file of an unfinished atomic write
#: (``.<name>.diverseevol.tmp.<pid>.<8 hex digits>``); :func:`is_temp_name` matches the whole name.
TMP_MARK = ".diverseevol.tmp."
_TMP_NAME = re.compile(r"\..+" + re.escape(TMP_MARK) + r"[0-9]+\.[0-9a-f]{8}")
#: What :func:`redact_secrets` puts in place of a secret value.
REDACTED = "<redacted>"

#: The names of secrets (a part of a key between ``_``/``-``/``.`` separators, any case).
_SECRET_NAMES = (
    r"api[_\-]?key|apikey|token|access[_\-]?token|secret|password|passwd|credentials?|authorization|auth|cookie"
    r"|private[_\-]?key"
)
_SECRET_KEY = re.compile(r"(^|[_\-.])(" + _SECRET_NAMES + r")($|[_\-.])", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------------
def fsync_enabled() -> bool:
    """Whether writes fsync (``DIVERSEEVOL_FSYNC=0``/``false``/``no``/``off`` turns it off)."""
    return os.environ.get("DIVERSEEVOL_FSYNC", "1").lower() not in ("0", "false", "no", "off")


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """``fsync`` a directory so that renames inside it survive a power cut (POSIX; no-op elsewhere)."""
    if os.name != "posix" or not fsync_enabled():  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(name: str) -> str:
    """The name of the temporary file that an atomic write of ``name`` fills before its rename."""
    return f".{name}{TMP_MARK}{os.getpid()}.{_secrets.token_hex(4)}"


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file of :func:`atomic_write` (and of no other writer).

    Only ``.<name>.diverseevol.tmp.<pid>.<8 hex digits>`` matches; a trainer's ``.foo.tmp.1`` or
    ``x.tmp`` does not.
    """
    return _TMP_NAME.fullmatch(name) is not None


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

    Raises
    ------
    FileWriteError
        For an OSError of the write (disk full, read-only file system, quota...): the message
        names ``path`` and the fix, ``errno`` is kept and ``filename`` is ``path``. The previous
        file, if any, is unchanged and the temporary file is removed. Errors of this library
        raised by ``write`` pass unchanged.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / temp_name(path.name)
        try:
            with open(tmp, "wb") as fh:
                write(fh)
                fh.flush()
                if fsync_enabled():
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_directory(path.parent)
    except OSError as exc:
        if isinstance(exc, DiverseEvolError):
            raise
        raise _write_error(path, exc) from exc
    return path


def write_figure(fig: Any, path: str | os.PathLike[str], **savefig_kwargs: Any) -> Path:
    """Save a matplotlib figure atomically: rendered into a temporary file beside ``path``, then renamed.

    The one way the library writes figures (report, compare, demo): on a full disk, a read-only
    file system or any other write error nothing is left under ``path`` but its previous version.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        Anything with ``savefig(file_object, format=..., **kwargs)``.
    path : path-like
        The image file; its suffix (``.png``, ``.svg``, ``.pdf``...) is the format unless
        ``format=`` is given.
    **savefig_kwargs
        Passed to ``fig.savefig`` (``dpi``...).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    FileWriteError
        When the write fails (see :func:`atomic_write`): the message names ``path``.
    """
    path = Path(path)
    savefig_kwargs.setdefault("format", path.suffix.lstrip(".").lower() or None)
    return atomic_write(path, lambda fh: fig.savefig(fh, **savefig_kwargs))


_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DENIED = {errno.EROFS, errno.EACCES, errno.EPERM}


def _write_error(path: Path, exc: OSError) -> FileWriteError:
    """``exc`` as a :class:`FileWriteError` naming ``path`` and the fix."""
    what = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in _FULL:
        fix = (
            "The disk (or your quota) is full: free some space, or put the output on a larger disk, and "
            "run again"
        )
    elif exc.errno in _DENIED:
        fix = "The location is not writable: make it writable or choose another location, and run again"
    else:
        fix = "Check the disk and the path, and run again"
    message = f"{what}: cannot write {path}. {fix}; the previous version of {path.name}, if any, is unchanged."
    err = FileWriteError(exc.errno, message)
    err.filename = str(path)
    return err


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------
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
    """Return ``obj`` with every secret replaced by ``"<redacted>"``, at every nesting level.

    The value of a key that names a secret is replaced: a key whose ``_``/``-``/``.``-separated
    parts include ``api_key``/``apikey``, ``token``, ``access_token``, ``secret``,
    ``password``/``passwd``, ``credential(s)``, ``authorization``, ``auth``, ``cookie`` or
    ``private_key``, in any case (``hf_token``, ``OPENAI_API_KEY``, ``client_secret``, the headers
    ``Authorization``, ``Proxy-Authorization``, ``X-Api-Key``, ``Cookie``; not ``max_tokens`` or
    ``tokenizer``). In every other string the password of a URL (``scheme://user:<redacted>@host``),
    the credential after ``Bearer``/``Basic`` and ``sk-...``/``hf_...`` keys are replaced.
    """
    if isinstance(obj, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else redact_secrets(v))
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [redact_secrets(v) for v in obj]
    if isinstance(obj, str):
        return _redact_value(obj)
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


def read_json(path: str | os.PathLike[str], *, fix: str | None = None) -> Any:
    """Read a JSON file written by :func:`write_json`.

    Parameters
    ----------
    path : path-like
    fix : str, optional
        What the error message tells the user to do (default: delete the file to redo its step,
        or start over with ``overwrite=True``).

    Raises
    ------
    RunDirectoryError
        If the file is not valid JSON (it was not written by this library, or was edited).
    """
    path = Path(path)
    if fix is None:
        fix = "Delete that file to redo its step, or start over with overwrite=True."
    try:
        with open(path, encoding="utf-8") as fh:
            return parse_json(fh.read())
    except json.JSONDecodeError as exc:
        raise RunDirectoryError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); the run directory is corrupt. {fix}"
        ) from None
    except UnicodeDecodeError as exc:
        raise RunDirectoryError(
            f"{path} is not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} at offset {exc.start}), so "
            f"not a JSON file written by diverseevol; the run directory is corrupt. {fix}"
        ) from None


def parse_json(text: str) -> Any:
    """``json.loads``, reporting nesting too deep for Python's parser as ``json.JSONDecodeError``.

    ``json.loads`` raises RecursionError on arrays/objects nested thousands of levels deep; such a
    file is no data this library reads, so callers treat it like any other invalid JSON.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError(
            f"arrays/objects nested too deeply (more than about {sys.getrecursionlimit()} levels)", text, 0
        ) from None


# --------------------------------------------------------------------------------------------
# .npy
# --------------------------------------------------------------------------------------------
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
    return load_npy(path, mmap=mmap, error=RunDirectoryError, fix=" Delete it to recompute it.")


# --------------------------------------------------------------------------------------------
# redaction of free text (error messages, log lines)
# --------------------------------------------------------------------------------------------
#: Key-shaped strings: OpenAI/Anthropic-style ``sk-...`` keys and Hugging Face ``hf_...`` tokens of
#: 20+ characters, the credential after ``Bearer``/``Basic``, and the value of a secret-named
#: ``key=value`` / ``"key": "value"`` pair.
_KEY_SHAPED = re.compile(
    r"\b(?:sk|hf)[-_][A-Za-z0-9_\-]{20,}"
    r"|(?<=\bBearer )[A-Za-z0-9._~+/=\-]+|(?<=\bBasic )[A-Za-z0-9+/=]{8,}"
)
#: The password of a URL's ``user:password@``: group 1 is everything before it.
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@]*:)[^\s/@]+(?=@)")
#: A secret-named pair: the name with its quote and separator (group 1; group 2 the opening quote of
#: the name, group 3 the separator, group 4 the opening quote of the value), then the value (group 5).
_SECRET_PAIR = re.compile(
    r"""((?:""" + _SECRET_NAMES + r""")(["']?)\s*([:=])\s*(["']?))([^\s"',;}]+)""",
    re.IGNORECASE,
)
_MIN_SECRET_LENGTH = 4


def _redact_value(text: str) -> str:
    """``text`` with URL passwords and key-shaped strings replaced (the value rules of :func:`redact_secrets`)."""
    return _KEY_SHAPED.sub(REDACTED, _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED, text))


def _redact_pair(match: re.Match[str]) -> str:
    """A secret-named pair with its value redacted; kept when it reads as prose: ``name: word``,
    unquoted, with a lowercase or capitalised word of letters (``"api_key: the judge's key"``)."""
    quoted = match.group(2) or match.group(4)
    value = match.group(5)
    if not quoted and match.group(3) == ":" and value.isalpha() and (value.islower() or value.istitle()):
        return match.group(0)
    return match.group(1) + REDACTED


def redact_text(text: str, secrets: Any = ()) -> str:
    """Return ``text`` with every secret and key-shaped string replaced by ``"<redacted>"``.

    For error messages and log lines that may quote a server's reply. Removed: each string of
    ``secrets`` (e.g. the configured API key) of at least 4 characters, wherever it appears;
    ``sk-...``/``hf_...`` keys of 20+ characters; the credential after ``Bearer`` or ``Basic``; the
    value of a secret-named pair (``api_key=...``, ``"password": "..."``; the names of
    :func:`redact_secrets`), except an unquoted ``name: word`` whose word is lowercase or capitalised
    letters only (prose such as an error message saying ``api_key: the key is ...``); the password of
    a URL (``scheme://user:<redacted>@host``). Other text is kept as is.

    Parameters
    ----------
    text : str
    secrets : iterable of str, optional
        Known secret values; None and short entries are ignored.
    """
    text = str(text)
    for secret in sorted((s for s in secrets or () if isinstance(s, str)), key=len, reverse=True):
        if len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    return _SECRET_PAIR.sub(_redact_pair, _redact_value(text))


# --------------------------------------------------------------------------------------------
# .npy reading with messages that name the file and the problem
# --------------------------------------------------------------------------------------------
_NPY_MAGIC = b"\x93NUMPY"


def load_npy(
    path: str | os.PathLike[str],
    *,
    mmap: bool = False,
    error: type[Exception] = RunDirectoryError,
    fix: str = "",
) -> np.ndarray:
    """Load a ``.npy`` array without pickle support; every failure is ``error`` naming the file.

    A 0-byte file, a file that is not ``.npy`` (text, CSV...), a truncated file and an object
    array each get their own message (never numpy's advice to load pickles "unsafely").

    Parameters
    ----------
    path : str or PathLike
    mmap : bool, default False
        Return a read-only memmap.
    error : exception class, default RunDirectoryError
        What to raise (e.g. ValidationError for a user's input file).
    fix : str, optional
        Appended to every message (e.g. " Delete it to recompute it.").
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise error(f"{path} cannot be read ({exc.strerror or exc}).{fix}") from exc
    if not head:
        raise error(f"{path} is empty (0 bytes), not a .npy array (an interrupted write?).{fix}")
    if head != _NPY_MAGIC:
        raise error(
            f"{path} is not a .npy file: it does not start with the .npy header (it starts with {head!r}); "
            f"write arrays with numpy.save.{fix}"
        )
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        text = str(exc)
        if "pickle" in text or "Python objects" in text:
            raise error(f"{path} holds Python objects (an object array), which are never loaded.{fix}") from None
        raise error(f"{path} is truncated or corrupt ({type(exc).__name__}: {text}).{fix}") from exc
