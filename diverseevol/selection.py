"""One-shot selection: pick k records once from embeddings (and/or scores), outside the loop.

:func:`select_subset` builds the :class:`~diverseevol.samplers.SelectionContext` (the pool, the
candidates, the signals the sampler requires), runs the sampler through
:func:`~diverseevol.samplers.run_sampler` and returns its :class:`~diverseevol.samplers.Selection`;
:func:`write_selected_records` exports the picked records as the user's own objects
(:mod:`diverseevol.export`). ``diverseevol select``
is a thin caller of both.

Given an ``embedder`` instead of embeddings, :func:`select_subset` embeds the records itself
(:func:`embed_records`) and is then sharded under ``torchrun`` / ``accelerate launch``
(``WORLD_SIZE > 1``): each rank embeds (and scores) its share of the records, the rows are
gathered on every rank (:func:`diverseevol.comm.gather_rows`), the sampler runs once, on rank 0,
and every rank receives its picks (:func:`diverseevol.comm.run_on_rank0`), identical to a
one-process run. Writing the outputs is the caller's, on rank 0 alone.

Every index here is an absolute row index into the dataset Z (row i of the embeddings is
record i). Importing this module needs numpy only.

Examples
--------
>>> import numpy as np
>>> from diverseevol.selection import select_subset
>>> emb = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [9.0, 0.0]], dtype=np.float32)
>>> select_subset(2, embeddings=emb, pool=[0]).indices.tolist()
[3, 2]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._files import atomic_write, load_npy, parse_json, write_npy
from ._validation import check_index_array, complement_indices
from .errors import IndexValidationError, PoolExhaustedError, ValidationError
from ._validation import check_scalar

if TYPE_CHECKING:
    from .data import InstructionRecord
    from .samplers.base import Sampler, Selection, SelectionContext
    from .samplers.spec import SamplerSpec

__all__ = [
    "build_context",
    "embed_records",
    "read_index_file",
    "select_subset",
    "selected_rows",
    "write_index_file",
    "write_selected_records",
]


def _n_records(n_records: int | None, embeddings: Any, scores: Mapping[str, Any]) -> int:
    if n_records is not None:
        return check_scalar(n_records, "n_records", int, min_val=0)
    if embeddings is not None:
        return int(np.shape(embeddings)[0])
    if scores:
        return int(len(next(iter(scores.values()))))
    raise ValidationError(
        "select_subset needs the number of records N: pass embeddings of shape (N, d), scores of shape (N,) "
        "or n_records=N."
    )


def build_context(
    n_records: int | None = None,
    *,
    embeddings: Any = None,
    scores: Mapping[str, Any] | None = None,
    pool: Any = None,
    candidates: Any = None,
    seed: int | np.random.Generator | None = 0,
) -> SelectionContext:
    """A checked :class:`~diverseevol.samplers.SelectionContext` for one selection.

    Parameters
    ----------
    n_records : int, optional
        N, the number of records; inferred from ``embeddings`` or ``scores`` when omitted.
    embeddings : array-like of shape (N, d), optional
        Row i embeds record i. Kept as given (an ``np.memmap`` is not read into memory).
    scores : Mapping of str to array-like of shape (N,), optional
        Per-record signals (``"confidence"``, ``"margin"``, ``"entropy"``...).
    pool : array-like of int, shape (|P|,), optional
        Records already selected (absolute row indices); never picked again, and distance-based
        samplers measure coverage from them. Default: empty.
    candidates : array-like of int, shape (|Q|,), optional
        Records that may be picked (absolute row indices, disjoint from ``pool``). Default: every
        record not in ``pool``.
    seed : int, numpy.random.Generator or None, default 0
        Source of the sampler's random choices (e.g. K-Center's first center on an empty pool).

    Returns
    -------
    SelectionContext
        ``pool_idx`` and ``candidate_idx`` as int64 arrays; ``candidate_idx`` sorted when derived.

    Raises
    ------
    ValidationError
        When the shapes disagree with N.
    IndexValidationError
        When ``pool`` or ``candidates`` hold duplicates, indices outside ``[0, N)``, or overlap.
    """
    from .samplers.base import SelectionContext

    scores = dict(scores or {})
    n = _n_records(n_records, embeddings, scores)
    if embeddings is not None:
        shape = np.shape(embeddings)
        if len(shape) != 2 or shape[0] != n:
            raise ValidationError(
                f"embeddings must have shape (N, d) = ({n}, d), one row per record; got shape {shape}."
            )
    for name, values in scores.items():
        if np.ndim(values) != 1 or len(values) != n:
            raise ValidationError(
                f"scores[{name!r}] must have shape ({n},), one value per record; got shape {np.shape(values)}."
            )
    pool_idx = check_index_array(np.zeros(0, dtype=np.int64) if pool is None else pool, n, name="pool indices")
    if candidates is None:
        candidate_idx = complement_indices(n, pool_idx)
    else:
        candidate_idx = check_index_array(candidates, n, name="candidate indices")
        overlap = np.intersect1d(pool_idx, candidate_idx)
        if overlap.size:
            raise IndexValidationError(
                f"candidates and pool must be disjoint; {overlap.size} indices are in both "
                f"(e.g. {overlap[:5].tolist()}). Leave out candidates to use every record not in the pool."
            )
    return SelectionContext(
        pool_idx=pool_idx,
        candidate_idx=candidate_idx,
        rng=np.random.default_rng(seed),
        embeddings=embeddings,
        scores=scores,
        n_records=n,
    )


def select_subset(
    k: int,
    *,
    sampler: str | SamplerSpec | Sampler = "kcenter",
    params: Mapping[str, Any] | None = None,
    embeddings: Any = None,
    scores: Mapping[str, Any] | None = None,
    pool: Any = None,
    candidates: Any = None,
    n_records: int | None = None,
    seed: int | np.random.Generator | None = 0,
    records: Sequence[InstructionRecord] | None = None,
    embedder: Any = None,
    model: Any = None,
    comm: Any = None,
) -> Selection:
    """Select ``k`` records once with any registered sampler (K-Center by default).

    Which sampler: no recipe has been shown to beat random on fresh seeds with a real model in this
    library (SmolLM2-135M + LoRA on Dolly, 5 fresh seeds: K-Center, k-means with proportional
    budgets and category-balanced random all level with or behind random; docs/results.md), so
    ``sampler="balanced_random"`` (with labels) or ``"random"`` is the recommended choice and
    ``"kcenter"`` (the default, the paper's recipe) the one to compare against; check on your own
    data with ``diverseevol bakeoff`` (docs/samplers.md#which-recipe-should-i-use).

    Parameters
    ----------
    k : int
        Number of records to pick, ``1 <= k <= |candidates|``.
    sampler : str, SamplerSpec or Sampler, default "kcenter"
        A sampler spec (a registered name, optionally with parameters:
        ``"kcenter:metric=cosine,transform=normalize"``; docs/samplers.md#sampler-specs; no ``mode``)
        or a sampler instance.
    params : Mapping, optional
        More constructor parameters when ``sampler`` is a spec (e.g. ``{"metric": "cosine"}``); a key
        given in both must have the same value.
    embeddings : array-like of shape (N, d), optional
        Row i embeds record i (an ``np.memmap`` is not read into memory).
    scores : Mapping of str to array-like of shape (N,), optional
        Per-record signals for uncertainty samplers (e.g. ``{"margin": ...}``).
    pool : array-like of int, shape (|P|,), optional
        Records already selected (absolute row indices); never picked.
    candidates : array-like of int, shape (|Q|,), optional
        Records that may be picked; default every record not in ``pool``.
    n_records : int, optional
        N, when neither embeddings nor scores give it.
    seed : int, numpy.random.Generator or None, default 0
    records : sequence of InstructionRecord, length N, optional
        The dataset Z, embedded with ``embedder`` (needed with it, ignored without it).
    embedder : callable, optional
        ``embedder(model, records) -> (N, d)`` (an :class:`~diverseevol.hf.HFEmbedder`, a
        :class:`~diverseevol.hf.SentenceTransformerEmbedder`...), used instead of ``embeddings``;
        a sampler that needs scores needs its ``embed_and_score`` too. With an embedder the call is
        collective under ``torchrun`` / ``accelerate launch``: every rank must make it, the
        embedding is sharded (:func:`embed_records`) and the sampler runs on rank 0 only.
    model : object, optional
        Passed to ``embedder`` (a :class:`~diverseevol.hf.ModelHandle`; None for an encoder that
        loads its own model).
    comm : Communicator, optional
        With ``embedder``: the ranks the sampler's result is sent to; default
        :func:`~diverseevol.comm.resolve_communicator` (the world group under a launcher, which it
        initialises, else one process). Unused without ``embedder``: a call with embeddings runs
        where it is made, with no collective.

    Returns
    -------
    Selection
        ``indices``: int64, shape (k,), absolute row indices into Z in pick order; ``radii``:
        float64, shape (k,), each pick's distance to the nearest earlier center, or None when
        the sampler does not report them. With ``embedder``, the same on every rank.

    Raises
    ------
    UnknownSamplerError
        When ``sampler`` names no registered sampler.
    MissingSignalError
        When the sampler requires embeddings or a score that was not given.
    PoolExhaustedError
        When ``k`` is larger than the number of candidates.
    ValidationError
        For shapes that disagree, invalid indices, ``params`` with a sampler instance, or a
        sampler whose output is not ``k`` distinct candidates.

    See Also
    --------
    write_selected_records : export the picked records.
    diverseevol.kcenter_select : the K-Center kernel alone, on an array.
    """
    from .samplers.spec import SamplerSpec

    if isinstance(sampler, (str, SamplerSpec)):
        sampler = selection_spec(sampler, params).build()
    elif params:
        raise ValidationError(
            f"params are constructor parameters of a named sampler; {type(sampler).__name__} is already built. "
            f"Pass sampler=<name> with params, or build the sampler with its parameters."
        )
    k = check_scalar(k, "k", int, min_val=1)
    if embedder is None:
        return _run_selection(k, sampler, n_records, embeddings, scores, pool, candidates, seed)
    if embeddings is not None:
        raise ValidationError(
            "select_subset got both embeddings and an embedder; pass embeddings (precomputed) or embedder with "
            "records (embedded here), not both."
        )
    if records is None:
        raise ValidationError("select_subset(embedder=...) needs the records to embed: pass records=<the dataset Z>.")
    from .comm import resolve_communicator, run_on_rank0
    from .samplers import requirements_of

    comm = resolve_communicator(comm)
    emb, found = embed_records(records, embedder, model=model, scores=bool(requirements_of(sampler).scores))
    signals = {**found, **dict(scores or {})}
    return run_on_rank0(
        comm, lambda: _run_selection(k, sampler, len(emb), emb, signals, pool, candidates, seed)
    )


def embed_records(
    records: Sequence[InstructionRecord], embedder: Any, *, model: Any = None, scores: bool = False
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Embed (and score) the records once; sharded over the ranks of a ``torchrun`` / ``accelerate launch`` job.

    Under a launcher (``WORLD_SIZE > 1``) the ``torch.distributed`` process group is initialised
    here when it is not yet (:func:`diverseevol.comm.resolve_communicator`), so the library's
    embedders (:class:`~diverseevol.hf.HFEmbedder`,
    :class:`~diverseevol.hf.SentenceTransformerEmbedder`) each embed their share of the records
    and gather the rows on every rank. Every rank must call it. An embedder that does not shard
    gives the same rows, computed by every rank.

    Parameters
    ----------
    records : sequence of InstructionRecord, length N
        The dataset Z, in row order.
    embedder : callable
        ``embedder(model, records) -> (N, d)``; with ``scores``, ``embedder.embed_and_score(model,
        records) -> ((N, d), {name: (N,)})``.
    model : object, optional
        Passed to the embedder.
    scores : bool, default False
        Also compute the uncertainty scores in the same pass.

    Returns
    -------
    embeddings : ndarray of shape (N, d)
        Row i embeds ``records[i]``, on every rank.
    scores : dict of str to ndarray of shape (N,)
        Empty unless ``scores``; row i is ``records[i]``.

    Raises
    ------
    ValidationError
        When ``scores`` is asked of an embedder without ``embed_and_score``, or the embedder's
        output is not one row per record.
    """
    from .comm import resolve_communicator

    records = list(records)
    resolve_communicator(None)
    if scores:
        embed_and_score = getattr(embedder, "embed_and_score", None)
        if not callable(embed_and_score):
            raise ValidationError(
                f"the sampler needs uncertainty scores, but {type(embedder).__name__} only embeds (it has no "
                f"embed_and_score); use a causal-LM embedder (HFEmbedder), or a sampler that needs only embeddings."
            )
        emb, found = embed_and_score(model, records)
    else:
        emb, found = embedder(model, records), {}
    if np.ndim(emb) != 2 or np.shape(emb)[0] != len(records):
        raise ValidationError(
            f"{type(embedder).__name__} returned embeddings of shape {np.shape(emb)} for {len(records)} records; an "
            f"embedder must return one row per record, shape (N, d)."
        )
    return emb, dict(found or {})


def _run_selection(
    k: int, sampler: Any, n_records: int | None, embeddings: Any, scores: Mapping[str, Any] | None, pool: Any,
    candidates: Any, seed: Any,
) -> Selection:
    """The selection proper (in one process): context, sampler, checks of its output."""
    from .samplers import run_sampler

    ctx = build_context(n_records, embeddings=embeddings, scores=scores, pool=pool, candidates=candidates, seed=seed)
    if k > ctx.candidate_idx.size:
        raise PoolExhaustedError(
            f"k={k} is larger than the {ctx.candidate_idx.size} candidate records; lower k or enlarge the candidates."
        )
    selection = run_sampler(sampler, ctx, int(k))
    picks = selection.indices
    label = type(sampler).__name__
    if picks.size != k:
        raise ValidationError(f"sampler {label} returned {picks.size} indices for k={k}; a sampler must return k.")
    if np.unique(picks).size != k:
        raise ValidationError(f"sampler {label} returned duplicate indices; each record may be picked once.")
    outside = picks[~np.isin(picks, ctx.candidate_idx)]
    if outside.size:
        raise ValidationError(
            f"sampler {label} returned indices that are not candidates (e.g. {outside[:5].tolist()}); "
            f"it must pick from ctx.candidate_idx."
        )
    return selection


def selection_spec(sampler: Any, params: Mapping[str, Any] | None = None) -> Any:
    """The :class:`~diverseevol.samplers.spec.SamplerSpec` of a one-shot selection: ``sampler`` (a spec
    string or SamplerSpec) with ``params`` added, one value per key, no ``mode`` (one selection has no rounds).

    Raises
    ------
    ValidationError
        For a malformed spec, a ``mode``, or a key given twice with different values.
    """
    from .samplers.spec import SamplerSpec, format_param_value, parse_sampler_spec

    spec = parse_sampler_spec(sampler)
    if spec.mode is not None:
        raise ValidationError(
            f"Sampler {str(spec)!r} gives mode={spec.mode}; a one-shot selection has no rounds, so mode does not "
            f"apply. Drop mode= (it is for runs of the loop)."
        )
    merged = spec.kwargs
    for key, value in dict(params or {}).items():
        if key in merged and format_param_value(merged[key]) != format_param_value(value):
            raise ValidationError(
                f"Sampler parameter {key!r} is given twice: {format_param_value(merged[key])} in {str(spec)!r} and "
                f"{format_param_value(value)} in params; give it once."
            )
        merged[key] = value
    return SamplerSpec(spec.name, merged)


_INT64_MAX = int(np.iinfo(np.int64).max)
_INT64_MIN = int(np.iinfo(np.int64).min)


def _whole_number(value: Any, path: Path, name: str, position: int) -> int:
    """``value`` as an int when it is a whole number that fits int64 (``3.0`` is 3), else an error."""
    def refuse(why: str) -> IndexValidationError:
        return IndexValidationError(
            f"{path}: {name} must hold whole numbers (row indices); the value at position {position}, "
            f"{value!r}, {why}. Indices are never rounded or truncated: fix the file."
        )

    if isinstance(value, (bool, np.bool_)):
        raise refuse("is a boolean")
    if isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            raise refuse("is not finite")
        if value != np.floor(value):
            raise refuse("is not a whole number")
        number = int(value)
    else:
        raise refuse(f"is a {type(value).__name__}, not a number")
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise refuse("does not fit a 64-bit row index")
    return number


def read_index_file(path: str | Path, *, name: str = "indices") -> np.ndarray:
    """Read row indices from a file: a JSON list, one number per line, or a ``.npy`` array.

    The one reader of index files of the command line (``select --pool``, ``vendi --indices``).
    Whole numbers written as floats (``3.0``) are accepted; any other value is refused, never
    rounded or truncated. The range ``[0, N)`` and duplicates are not checked here: pass the
    result to :func:`~diverseevol._validation.check_index_array` with N.

    Parameters
    ----------
    path : str or Path
        ``.npy`` (integer, or float holding whole numbers), or text: a JSON list, or numbers
        separated by white space (one per line). An empty text file holds no index.
    name : str, default "indices"
        What the indices are, for messages (e.g. ``"--pool"``).

    Returns
    -------
    ndarray of int64, shape (m,)
        Absolute row indices into Z, in file order.

    Raises
    ------
    IndexValidationError
        A value that is not a whole number (``1.5``, NaN, ``true``, a string), does not fit int64
        (a uint64 is reported as its real value), or an array that is not 1-D. The message names
        the file, the value and its position.
    ValidationError
        A ``.npy`` file that is empty, truncated or not ``.npy``.
    FileNotFoundError
        When ``path`` does not exist.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        arr = load_npy(path, error=ValidationError, fix=f" ({name}: write the indices with numpy.save.)")
        if arr.ndim != 1:
            raise IndexValidationError(f"{path}: {name} must be a 1-D array of row indices; got shape {arr.shape}.")
        if arr.dtype == bool:
            raise IndexValidationError(
                f"{path}: {name} must hold row indices, not a boolean mask; convert it with np.flatnonzero(mask)."
            )
        if np.issubdtype(arr.dtype, np.signedinteger):
            return arr.astype(np.int64)
        values: list[Any] = arr.tolist() if arr.dtype.kind in "uf" else list(arr)
    else:
        try:
            text = path.read_bytes().decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise IndexValidationError(
                f"{path}: {name} must be a UTF-8 text file (a JSON list, or one whole number per line) or a .npy "
                f"file; byte {exc.start} is not UTF-8."
            ) from None
        if not text:
            return np.zeros(0, dtype=np.int64)
        try:
            if text.startswith("["):
                values = parse_json(text)
            else:
                values = [parse_json(token) for token in text.split()]
        except ValueError as exc:
            raise IndexValidationError(
                f"{path}: {name} must be a JSON list of whole numbers or one whole number per line ({exc})."
            ) from None
        if not isinstance(values, list):
            raise IndexValidationError(f"{path}: {name} must be a JSON list of row indices; got a {type(values).__name__}.")
    return np.array([_whole_number(v, path, name, i) for i, v in enumerate(values)], dtype=np.int64)


def selected_rows(records: Sequence[InstructionRecord], indices: Any) -> list[dict[str, Any]]:
    """The picked records as JSON-ready rows, in pick order.

    Parameters
    ----------
    records : sequence of InstructionRecord
        The dataset Z.
    indices : array-like of int, shape (k,)
        Absolute row indices into ``records``, in pick order.

    Returns
    -------
    list of dict, length k
        ``{"index", "instruction", "input", "output"}`` plus each record's ``meta`` fields (those
        that do not clash with the four).
    """
    rows = []
    for i in np.asarray(indices, dtype=np.int64).reshape(-1):
        rec = records[int(i)]
        row: dict[str, Any] = {"index": int(i), "instruction": rec.instruction, "input": rec.input,
                               "output": rec.output}
        meta = getattr(rec, "meta", None)
        if meta:
            row.update({key: v for key, v in meta.items() if key not in row})
        rows.append(row)
    return rows


def write_selected_records(
    path: str | Path, records: Sequence[InstructionRecord], indices: Any, *, source: str | Path | None = None
) -> Path:
    """Write the picked records to ``path`` as the user's original objects, in pick order, atomically.

    Parameters
    ----------
    path : str or Path
        Output file, replaced whole (a crash never leaves a partial file); its suffix names the
        container: ``.json`` (a JSON array), ``.jsonl`` / ``.ndjson`` (one record per line),
        either with ``.gz``, or ``.parquet``.
    records : sequence of InstructionRecord
        The dataset Z.
    indices : array-like of int, shape (k,)
        Absolute row indices into ``records``, in pick order (e.g. ``select_subset(...).indices``).
    source : str or Path, optional
        The file ``records`` were loaded from (a Parquet input gives a Parquet output its schema).

    Returns
    -------
    Path
        ``path``. Record j is ``records[indices[j]].original`` unchanged (for records built in
        Python, their fields as a dict); :func:`selected_rows` gives the old flat rows.
    """
    from .export import write_subset

    return write_subset(path, records, indices, source=source)


def write_index_file(path: str | Path, indices: Any) -> Path:
    """Write row indices atomically: ``.npy`` (int64) for that suffix, otherwise one integer per line.

    :func:`read_index_file` reads both back.

    Parameters
    ----------
    path : str or Path
    indices : array-like of int, shape (k,)
        Absolute row indices into Z, in pick order.

    Returns
    -------
    Path
        ``path``.
    """
    values = np.asarray(indices, dtype=np.int64).reshape(-1)
    if Path(path).suffix == ".npy":
        return write_npy(path, values)
    text = "".join(f"{int(i)}\n" for i in values)
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
