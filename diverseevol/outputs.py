"""The output rule of every command that writes: no output replaces an input; folders are replaced whole.

:func:`check_outputs` refuses, with :class:`~diverseevol.errors.OutputPathError` (a ``ValueError``;
exit code 2 on the command line), an output that

* is an input, or a file inside an input folder (a run directory being read, a model folder), under
  any spelling: relative or absolute, ``..``, symbolic links, hard links. Paths that exist are
  compared by device and inode (what ``os.path.samefile`` compares), the others by their resolved
  spelling (``os.path.realpath``);
* is another output of the same command, or lies inside an output folder;
* is the wrong kind of path: an existing folder where a file goes, an existing file where a folder
  goes;
* is a folder replaced as a whole (:class:`OutputFolder`) that contains an input or holds entries
  the command does not write: replacing the folder would delete them.

:func:`replace_folder` writes a command's output folder as a whole or not at all: the files go to a
temporary folder beside the target, which then takes the target's place in one step (an atomic
exchange of the two names where the system offers it; otherwise two renames, with the old folder
kept under a recognisable name until the new one is in place). :func:`remove_stale_temps` removes
what a killed writer left beside an output (temporary files and folders of this library's naming
whose process is gone) and puts a previous output folder back if the kill came between the two
renames. :func:`claim_outputs` is the one call a command makes before it writes: the check, then
the clean-up.

A base module: imports the standard library, :mod:`diverseevol.errors` and :mod:`diverseevol._files`.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import logging
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, Union

from ._files import TMP_MARK, fsync_directory, temp_name
from .errors import OutputPathError

__all__ = [
    "OutputFile",
    "OutputFolder",
    "check_outputs",
    "claim_outputs",
    "remove_stale_temps",
    "replace_folder",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Marks the name under which :func:`replace_folder` keeps the previous folder while it renames the
#: new one into place, when the system cannot exchange two names atomically.
OLD_MARK = ".diverseevol.old."


@dataclass(frozen=True)
class OutputFile:
    """A file a command writes (atomically: :func:`diverseevol._files.atomic_write`).

    Attributes
    ----------
    label : str
        How the command names it in messages (``"--out"``, ``"--indices-out"``).
    path : Path
    """

    label: str
    path: Path


@dataclass(frozen=True)
class OutputFolder:
    """A folder a command writes its files into.

    Attributes
    ----------
    label : str
        How the command names it in messages (``"--out"``).
    path : Path
    writes : tuple of str
        ``fnmatch`` patterns of the names the command writes in the folder (``"compare.csv"``,
        ``"*.png"``). With ``whole``, an existing folder may hold nothing else.
    whole : bool, default True
        The folder is replaced as a whole (:func:`replace_folder`). False: it is updated in place
        (the demo's folder of resumable run directories); only its files named by ``writes`` are
        checked against the inputs.
    """

    label: str
    path: Path
    writes: tuple[str, ...] = ("*",)
    whole: bool = True

    def own(self, name: str) -> bool:
        """Whether ``name`` is an entry the command writes in the folder."""
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.writes)


#: An output of :func:`check_outputs`: a ``(label, path)`` pair is an :class:`OutputFile`.
Output = Union[OutputFile, OutputFolder, tuple[str, Union[str, "os.PathLike[str]", None]]]


# --------------------------------------------------------------------------------------------
# the check
# --------------------------------------------------------------------------------------------
def check_outputs(
    outputs: Sequence[Output],
    inputs: Sequence[tuple[str, str | os.PathLike[str] | None]],
) -> None:
    """Refuse outputs that would replace an input, a file of an input folder, or another output.

    Nothing is written or deleted: call it before any work, so a refused command changes nothing.

    Parameters
    ----------
    outputs : sequence of OutputFile, OutputFolder or (label, path)
        What the command writes; a ``(label, path)`` pair is an :class:`OutputFile` (skipped when
        ``path`` is None: an optional output that was not asked for).
    inputs : sequence of (label, path)
        What the command reads: files, or folders (every file under a folder is an input, except
        those inside an :class:`OutputFolder` replaced as a whole, which the folder's own rules
        cover). ``label`` names the argument in messages (``"DATA"``, ``"RUN_DIR"``); pairs whose
        path is None are skipped.

    Raises
    ------
    OutputPathError
        Naming the output, the input it would replace and what to do instead.
    """
    outs = [o for o in map(_as_output, outputs) if o is not None]
    ins = [(label, Path(p)) for label, p in inputs if p is not None]
    for out in outs:
        _check_kind(out)
    _check_outputs_differ(outs)
    wholes = [o for o in outs if isinstance(o, OutputFolder) and o.whole]
    for folder in wholes:
        _check_folder_holds_no_input(folder, ins)
        _check_folder_holds_only_own_entries(folder)
    targets = list(_targets(outs))
    skip = [_real(f.path) for f in wholes]
    for in_label, inp in ins:
        for label, path in _files_of(in_label, inp, skip):
            for out_label, out in targets:
                if _same_file(out, path):
                    raise OutputPathError(
                        f"{out_label} {str(out)!r} is the same file as the input {label} {str(path)!r}; writing "
                        f"it would destroy that input. Choose another output path."
                    )


def claim_outputs(
    outputs: Sequence[Output],
    inputs: Sequence[tuple[str, str | os.PathLike[str] | None]],
) -> None:
    """:func:`check_outputs`, then :func:`remove_stale_temps` beside every output: call it before writing.

    Parameters and exceptions as :func:`check_outputs`.
    """
    check_outputs(outputs, inputs)
    for out in filter(None, map(_as_output, outputs)):
        remove_stale_temps(out.path)


def _as_output(out: Output) -> OutputFile | OutputFolder | None:
    if isinstance(out, (OutputFile, OutputFolder)):
        return out
    label, path = out
    return OutputFile(label, Path(path)) if path is not None else None


def _real(path: Path) -> str:
    return os.path.realpath(path)


def _within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it, after resolving both."""
    p, f = _real(path), _real(folder)
    return p == f or p.startswith(os.path.join(f, ""))


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: device and inode when both exist, else the resolved spelling."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return _real(a) == _real(b)


def _check_kind(out: OutputFile | OutputFolder) -> None:
    path = out.path
    if isinstance(out, OutputFile) and path.is_dir():
        raise OutputPathError(
            f"{out.label} {str(path)!r} is an existing folder, but {out.label} names a file to write; give a "
            f"file path (e.g. {str(path / 'selected.jsonl')!r})."
        )
    if isinstance(out, OutputFolder) and (path.exists() or path.is_symlink()) and not path.is_dir():
        raise OutputPathError(
            f"{out.label} {str(path)!r} is an existing file, but {out.label} names the folder the command "
            f"writes its files into; give a new folder (or one this command wrote before)."
        )


def _check_outputs_differ(outs: list[OutputFile | OutputFolder]) -> None:
    for i, a in enumerate(outs):
        for b in outs[i + 1:]:
            inside = next(((x, y) for x, y in ((a, b), (b, a))
                           if isinstance(y, OutputFolder) and y.whole and _within(x.path, y.path)), None)
            if _same_file(a.path, b.path) or inside is not None:
                raise OutputPathError(
                    f"{a.label} {str(a.path)!r} and {b.label} {str(b.path)!r} "
                    + ("are the same path" if inside is None else "overlap (one lies inside the other)")
                    + "; give the outputs different paths."
                )


def _check_folder_holds_no_input(folder: OutputFolder, ins: list[tuple[str, Path]]) -> None:
    for label, inp in ins:
        if _within(inp, folder.path):
            raise OutputPathError(
                f"{folder.label} {str(folder.path)!r} contains the input {label} {str(inp)!r}; the folder is "
                f"replaced as a whole, so the input would be deleted. Choose another output folder."
            )


def _check_folder_holds_only_own_entries(folder: OutputFolder) -> None:
    if not folder.path.is_dir():
        return
    foreign = sorted(e.name for e in folder.path.iterdir() if not folder.own(e.name))
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputPathError(
            f"{folder.label} {str(folder.path)!r} holds entries this command does not write ({shown}); the "
            f"folder is replaced as a whole, so they would be deleted. Give a new or empty folder, or move "
            f"them out."
        )


def _targets(outs: list[OutputFile | OutputFolder]) -> Iterator[tuple[str, Path]]:
    """The output paths that may already exist: each file, and the command's own entries of each folder."""
    for out in outs:
        if isinstance(out, OutputFile):
            yield out.label, out.path
        elif out.path.is_dir():
            for entry in sorted(out.path.iterdir()):
                if out.own(entry.name):
                    yield f"{out.label} file {entry.name}", entry


def _files_of(label: str, inp: Path, skip: list[str]) -> Iterator[tuple[str, Path]]:
    """The input itself, or every file under an input folder (not following links to folders)."""
    if not inp.is_dir():
        yield label, inp
        return
    for root, dirs, files in os.walk(inp):
        dirs[:] = [d for d in dirs if not any(_within(Path(root, d), Path(s)) for s in skip)]
        for name in files:
            path = Path(root, name)
            yield f"{label} file {path.relative_to(inp).as_posix()}", path


# --------------------------------------------------------------------------------------------
# writing a folder as a whole, and the clean-up of killed writes
# --------------------------------------------------------------------------------------------
def replace_folder(path: str | os.PathLike[str], fill: Callable[[Path], T]) -> T:
    """Write a folder as a whole or not at all: ``fill(tmp)`` writes into a temporary folder beside
    ``path``, which then takes ``path``'s place.

    A reader of ``path`` sees the old folder or the complete new one, never a mix: the two names
    are exchanged atomically (Linux ``renameat2(RENAME_EXCHANGE)``), or, where the system cannot,
    ``path`` is renamed aside (``.<name>.diverseevol.old.<pid>.<8 hex>``) and the new folder renamed
    into place, with the old one put back if the second rename fails. The old folder is deleted
    afterwards. When ``fill`` raises, the temporary folder is deleted and ``path`` is unchanged.
    After a ``kill -9``, the next call (or :func:`remove_stale_temps`) deletes what was left and, if
    the kill came between the two renames, puts the old folder back.

    Parameters
    ----------
    path : path-like
        The output folder; created with its parents if needed. Check it first with
        :func:`check_outputs` (an :class:`OutputFolder`): everything in it is replaced.
    fill : callable
        ``fill(tmp) -> T`` writes the folder's files into ``tmp`` (an empty folder).

    Returns
    -------
    T
        What ``fill`` returned (paths it returns point into the temporary folder, which no longer
        exists: use their names under ``path``).

    Raises
    ------
    OutputPathError
        When ``path`` is an existing file.
    """
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not path.is_dir():
        raise OutputPathError(f"{str(path)!r} is an existing file; the output folder cannot replace it.")
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = parent / temp_name(path.name)
    tmp.mkdir()
    try:
        result = fill(tmp)
        fsync_directory(tmp)
        old = _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_directory(parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return result


def _swap_in(new: Path, path: Path) -> Path | None:
    """Put the folder ``new`` in ``path``'s place; return where the old folder is now (or None)."""
    if not path.exists():
        os.rename(new, path)
        return None
    if _exchange(new, path):
        return new  # the temporary name now holds the old folder
    old = path.parent / f".{path.name}{OLD_MARK}{os.getpid()}.{secrets.token_hex(4)}"
    os.rename(path, old)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(old, path)
        raise
    return old


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Exchange the names ``a`` and ``b`` atomically (Linux ``renameat2``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # no libc symbol (old glibc, musl): two renames instead
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):  # file system without exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _leftover(name: str) -> re.Pattern[str]:
    """What a killed write of ``name`` leaves beside it: ``.<name>.diverseevol.{tmp,old}.<pid>.<8 hex>``."""
    marks = "|".join(re.escape(m) for m in (TMP_MARK, OLD_MARK))
    return re.compile(r"\." + re.escape(name) + f"({marks})" + r"([0-9]+)\.[0-9a-f]{8}")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` may still be writing (always True where that cannot be asked safely)."""
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: a process of another user
        return True
    return True


def remove_stale_temps(path: str | os.PathLike[str]) -> int:
    """Remove what killed writes of ``path`` left beside it; return how many entries were removed.

    Only entries named ``.<name>.diverseevol.tmp.<pid>.<8 hex>`` (a temporary file or folder) or
    ``.<name>.diverseevol.old.<pid>.<8 hex>`` (a previous folder renamed aside), whose process
    ``pid`` is gone, are touched: a previous folder is put back when ``path`` is missing (the kill
    came between :func:`replace_folder`'s two renames) and deleted otherwise; temporaries are
    deleted. Other files, and the temporaries of a writer that is still running, are left alone.
    Where a process cannot be asked about safely (not POSIX), nothing is removed.

    Parameters
    ----------
    path : path-like
        An output file or folder (it need not exist).
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        return 0
    pattern = _leftover(path.name)
    removed = 0
    for entry in sorted(parent.iterdir()):
        match = pattern.fullmatch(entry.name)
        if match is None or _alive(int(match.group(2))):
            continue
        with contextlib.suppress(OSError):
            if match.group(1) == OLD_MARK and not (path.exists() or path.is_symlink()):
                os.rename(entry, path)
                logger.warning("put back %s, left aside by a write that was killed", path)
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
    if removed:
        logger.info("removed %d entries left beside %s by a write that was killed", removed, path)
    return removed
