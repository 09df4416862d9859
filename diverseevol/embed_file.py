"""Embed a dataset into a ``.npy`` file: memory-mapped, resumable, sharded over ``torchrun`` ranks.

:func:`embed_to_file` is what ``diverseevol embed`` calls. The records are embedded in chunks of
``chunk_size`` rows; after each chunk its rows are in ``OUT.partial`` (a float32 ``.npy`` memory
map of the final shape) and ``OUT.progress.json`` beside it says how many rows are done and for
which data and model. A killed run, started again with the same data and model, goes on from the
last finished chunk; when every row is written ``OUT.partial`` takes the name ``OUT`` in one
rename and the progress file is removed, so ``OUT`` either does not exist or is complete.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the embedder shards every chunk over the ranks (each rank
embeds its share, :func:`diverseevol.comm.shard_slice`, and the rows are gathered with
:func:`diverseevol.comm.gather_rows`); rank 0 alone reads the progress file and writes the file
(:func:`diverseevol.comm.run_on_rank0`, so an error while writing reaches every rank).

Imports ``diverseevol.hf`` (through :mod:`diverseevol.assemble`) only inside the functions.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_write, fsync_directory, read_json
from ._progress import progress_bar
from ._validation import check_scalar
from .comm import resolve_communicator, run_on_rank0
from .data import InstructionRecord
from .errors import DataFormatError, ValidationError

__all__ = ["embed_file", "embed_to_file", "partial_paths", "records_fingerprint"]

#: Version of the progress file's layout.
PROGRESS_VERSION = 1

EmbedFn = Callable[[Sequence[InstructionRecord]], tuple[np.ndarray, Any]]


def partial_paths(out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The unfinished file and its progress file beside ``out``: ``(OUT.partial, OUT.progress.json)``."""
    out = Path(out)
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".progress.json")


def records_fingerprint(records: Sequence[InstructionRecord], model: str = "") -> str:
    """A SHA-256 of the records (every field, in order) and the model's name: what a resume must match.

    Parameters
    ----------
    records : sequence of InstructionRecord, length N
    model : str
        The model and embedder settings, as text.

    Returns
    -------
    str
        64 hex digits.
    """
    h = hashlib.sha256(model.encode("utf-8"))
    h.update(str(len(records)).encode())
    for r in records:
        h.update(b"\x00")
        h.update(repr(r).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def embed_to_file(
    records: Sequence[InstructionRecord],
    out: str | os.PathLike[str],
    embed: EmbedFn,
    *,
    fingerprint: str | None = None,
    chunk_size: int = 256,
    progress: bool = True,
    comm: Any = None,
) -> Path:
    """Embed ``records`` with ``embed`` into the ``.npy`` file ``out``, chunk by chunk, resumably.

    Parameters
    ----------
    records : sequence of InstructionRecord, length N
        Row i of the file embeds ``records[i]``.
    out : path
        The ``.npy`` file to write (float32, shape (N, d)); replaced when it exists.
    embed : callable
        ``embed(chunk) -> (rows, _)`` with rows of shape (len(chunk), d); under several processes
        every rank calls it with the same chunk and every rank gets all of the chunk's rows
        (:func:`diverseevol.assemble.model_embedder` does).
    fingerprint : str, optional
        What a resume must match (default: :func:`records_fingerprint` of the records).
    chunk_size : int, default 256
        Rows per chunk: the unit of progress, of resuming and of the embedder's call.
    progress : bool, default True
        A progress bar over the records (rank 0).
    comm : Communicator, optional
        Default: :func:`diverseevol.comm.resolve_communicator` (a ``torch.distributed`` group
        under ``torchrun``, else one process).

    Returns
    -------
    Path
        ``out``, complete.

    Raises
    ------
    ValidationError
        When ``records`` is empty, ``chunk_size`` < 1, or the embedder's rows do not fit (a row
        count other than the chunk's, a width other than the file's).
    DataFormatError
        When a progress file exists but cannot be read as one.
    """
    check_scalar(chunk_size, "chunk_size", int, min_val=1, what="records per chunk")
    records = list(records)
    n = len(records)
    if n == 0:
        raise ValidationError("there are no records to embed; pass a data file with at least one record.")
    out = Path(out)
    partial, progress_file = partial_paths(out)
    fingerprint = fingerprint or records_fingerprint(records)
    comm = resolve_communicator(comm)
    state = run_on_rank0(comm, lambda: _start(partial, progress_file, n, fingerprint))
    done, d = int(state["rows_done"]), state.get("d")
    holder: dict[str, np.memmap] = {}
    bar = progress_bar(total=n, initial=done, disable=not progress or comm.rank != 0, desc="embedding", unit="rec")
    try:
        while done < n:
            stop = min(n, done + chunk_size)
            rows = np.asarray(embed(records[done:stop])[0])
            if rows.ndim != 2 or rows.shape[0] != stop - done or (d is not None and rows.shape[1] != d):
                raise ValidationError(
                    f"the embedder returned rows of shape {rows.shape} for records {done}..{stop - 1}; expected "
                    f"({stop - done}, {d if d is not None else 'd'}). Use the model the run started with, or remove "
                    f"{partial} and {progress_file} to start again."
                )
            d = int(rows.shape[1])
            start = done
            run_on_rank0(comm, lambda: _write_chunk(holder, partial, progress_file, (n, d), start, rows, fingerprint))
            done = stop
            bar.update(stop - start)
    finally:
        bar.close()
        mm = holder.pop("mm", None)
        if mm is not None:
            mm.flush()
            del mm
    run_on_rank0(comm, lambda: _finish(partial, progress_file, out))
    return out


def embed_file(
    data: str | os.PathLike[str],
    model: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    format: str | None = None,
    chunk_size: int = 256,
    progress: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    **embedder: Any,
) -> Path:
    """Embed the records of a data file with a local model into ``out`` (see :func:`embed_to_file`).

    Parameters
    ----------
    data : path
        Instruction records (:func:`diverseevol.data.load_instructions`).
    model : path
        A local causal-LM directory or ``.gguf`` file (:class:`~diverseevol.hf.HFEmbedder`) or a
        sentence-transformers directory (:class:`~diverseevol.hf.SentenceTransformerEmbedder`),
        detected as ``select --embedder`` does (:func:`diverseevol.assemble.model_embedder`).
    out : path
        The ``.npy`` file, float32 of shape (N, d).
    format : str, optional
        Record format of ``data`` when detection is not wanted.
    chunk_size, progress
        As :func:`embed_to_file`.
    cache_dir : path, optional
        Conversion cache of a ``.gguf`` file.
    **embedder
        Keyword arguments of the embedder (``batch_size``, ``max_length``...).

    Returns
    -------
    Path
        ``out``.
    """
    from .assemble import model_embedder
    from .data import load_instructions

    records = load_instructions(data, format=format)
    comm = resolve_communicator(None)
    embed = model_embedder(model, progress=False, cache_dir=cache_dir, comm=comm, **embedder)
    settings = json.dumps({"model": str(Path(model).resolve()), **{k: str(v) for k, v in sorted(embedder.items())}})
    return embed_to_file(records, out, embed, fingerprint=records_fingerprint(records, settings),
                         chunk_size=chunk_size, progress=progress, comm=comm)


def _start(partial: Path, progress_file: Path, n: int, fingerprint: str) -> dict[str, Any]:
    """Rank 0: where to begin. A progress file of the same data and model resumes; anything else starts at 0."""
    if not (partial.is_file() and progress_file.is_file()):
        return {"rows_done": 0}
    state = read_json(progress_file, fix=f" Remove {progress_file} and {partial} to start again.")
    if not isinstance(state, dict) or "rows_done" not in state:
        raise DataFormatError(f"{progress_file} is not a progress file of `diverseevol embed`; remove it and "
                              f"{partial} to start again.")
    if state.get("fingerprint") != fingerprint or state.get("n") != n or state.get("version") != PROGRESS_VERSION:
        return {"rows_done": 0}  # another data file or model: the old rows are of no use
    mm = np.load(partial, mmap_mode="r")
    if mm.shape != (n, state.get("d")) or mm.dtype != np.float32:
        return {"rows_done": 0}
    return {"rows_done": int(state["rows_done"]), "d": int(state["d"])}


def _write_chunk(holder: dict[str, np.memmap], partial: Path, progress_file: Path, shape: tuple[int, int],
                 start: int, rows: np.ndarray, fingerprint: str) -> None:
    """Rank 0: rows ``start ..`` into the partial memmap, flushed, then the progress file (atomically)."""
    mm = holder.get("mm")
    if mm is None:
        if start == 0:
            partial.parent.mkdir(parents=True, exist_ok=True)
            mm = np.lib.format.open_memmap(str(partial), mode="w+", dtype=np.float32, shape=shape)
        else:
            mm = np.lib.format.open_memmap(str(partial), mode="r+")
        holder["mm"] = mm
    mm[start:start + rows.shape[0]] = rows
    mm.flush()
    state = {"version": PROGRESS_VERSION, "n": shape[0], "d": shape[1], "rows_done": start + rows.shape[0],
             "fingerprint": fingerprint}
    atomic_write(progress_file, lambda f: f.write(json.dumps(state).encode("utf-8")))


def _finish(partial: Path, progress_file: Path, out: Path) -> None:
    """Rank 0: the complete partial file takes the name ``out``; the progress file goes."""
    os.replace(partial, out)
    progress_file.unlink(missing_ok=True)
    fsync_directory(out.parent)
