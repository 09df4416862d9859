"""Shared input checks: scalar parameters, embeddings, index sets, k, random_state.

Every public entry point validates through these helpers so that the same mistake gets the same
message everywhere. Messages say what was expected, what was got, and how to fix it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np

from .errors import (
    IndexValidationError,
    NonFiniteEmbeddingError,
    PoolExhaustedError,
    ValidationError,
)

RandomState = Union[None, int, np.integer, np.random.Generator, np.random.RandomState, np.random.SeedSequence]

__all__ = [
    "Interval",
    "RandomState",
    "check_scalar",
    "check_embeddings",
    "check_index_array",
    "check_disjoint",
    "check_k",
    "check_random_state",
    "check_finite_rows",
    "check_not_degenerate",
    "complement_indices",
    "identical_row_fraction",
]


Closed = Literal["both", "left", "right", "neither"]


@dataclass(frozen=True)
class Interval:
    """The values a scalar parameter may take: a kind of number and optional bounds.

    Modelled on scikit-learn's ``Interval``: ``Interval(int, 1, None)`` is "a positive int",
    ``Interval(float, 0, 1, closed="left")`` is "a number in [0, 1)". ``bool`` is never an int or
    a number here (``True`` is a flag, not a count), NaN is never in an interval, and an infinite
    value only where an open side allows it (``finite=False``).

    Parameters
    ----------
    kind : type
        ``int`` (any integral number: Python or numpy ints) or ``float`` (any real number:
        ints and floats, Python or numpy).
    low, high : number or None
        Bounds; None: unbounded on that side.
    closed : {"both", "left", "right", "neither"}, default "both"
        Which bounds belong to the interval.
    finite : bool, default True
        Refuse infinite values even where no bound excludes them.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    closed: Closed = "both"
    finite: bool = True

    def __post_init__(self) -> None:
        if self.kind not in (int, float):
            raise TypeError(f"Interval kind must be int or float; got {self.kind!r}.")
        if self.closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be 'both', 'left', 'right' or 'neither'; got {self.closed!r}.")

    def has_type(self, value: Any) -> bool:
        """Whether ``value`` is of the interval's kind (never a bool)."""
        if isinstance(value, (bool, np.bool_)):
            return False
        return isinstance(value, numbers.Integral if self.kind is int else numbers.Real)

    def __contains__(self, value: Any) -> bool:
        if not self.has_type(value):
            return False
        if self.kind is float and (math.isnan(value) or (self.finite and math.isinf(value))):
            return False
        if self.low is not None and (value < self.low or (value == self.low and self.closed in ("right", "neither"))):
            return False
        return self.high is None or not (
            value > self.high or (value == self.high and self.closed in ("left", "neither"))
        )

    def describe(self) -> str:
        """What a value must be, as a message says it: "a positive int", "a number in [0, 1)"..."""
        low_in = self.closed in ("both", "left")
        high_in = self.closed in ("both", "right")
        noun = "int" if self.kind is int else "number"
        finite = "finite " if self.kind is float and self.finite and (self.low is None or self.high is None) else ""
        article = "an" if noun == "int" else "a"
        if self.low is not None and self.high is not None:
            return (
                f"{article} {noun} in {'[' if low_in else '('}{_num(self.low)}, {_num(self.high)}{']' if high_in else ')'}"
            )
        if self.low is not None:
            if self.kind is int and ((self.low == 1 and low_in) or (self.low == 0 and not low_in)):
                return "a positive int"
            return f"{'a' if finite else article} {finite}{noun} {'>=' if low_in else '>'} {_num(self.low)}"
        if self.high is not None:
            return f"{'a' if finite else article} {finite}{noun} {'<=' if high_in else '<'} {_num(self.high)}"
        return f"{'a' if finite else article} {finite}{noun}"


def _num(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))


def check_scalar(
    value: Any,
    name: str,
    target_type: type | Interval,
    *,
    min_val: float | None = None,
    max_val: float | None = None,
    include_boundaries: Closed = "both",
    allow_none: bool = False,
    finite: bool = True,
    what: str = "",
    fix: str = "",
    error: type[Exception] = ValidationError,
) -> Any:
    """Check one scalar parameter and return it as a Python ``int`` / ``float`` (or None).

    scikit-learn's ``check_scalar`` is the model: a type (``int`` or ``float``) and optional
    bounds, or an :class:`Interval` that holds both; ``bool`` is refused where a number is meant.
    The message says what was expected, what was got, and how to fix it:
    ``"<name> must be <expected>[ (<what>)]; got <value>. <fix>"``.

    Parameters
    ----------
    value : object
        The value given.
    name : str
        The parameter's name, as the user wrote it.
    target_type : {int, float} or Interval
        ``int``: any integral number (Python or numpy); ``float``: any real number.
    min_val, max_val : number, optional
        Bounds (with ``target_type`` a type).
    include_boundaries : {"both", "left", "right", "neither"}, default "both"
        Which of the bounds are allowed values.
    allow_none : bool, default False
        Accept None (returned as is); the message then reads "None or ...".
    finite : bool, default True
        Refuse infinite numbers (``float`` only).
    what : str, optional
        What the parameter means, put in brackets after the expectation.
    fix : str, optional
        How to fix it, appended to the message; by default a whole float for an int gets
        "Pass int(<value>).".
    error : exception type, default ValidationError
        Raised on a bad value (another :class:`~diverseevol.errors.DiverseEvolError`, or a builtin
        where the contract says so, e.g. ``IndexError``).

    Returns
    -------
    int, float or None
        ``int(value)`` for ``int``, ``float(value)`` for ``float``.

    Raises
    ------
    ValidationError
        (or ``error``) A value of another type or outside the interval.

    Examples
    --------
    >>> check_scalar(3, "n_neighbors", int, min_val=1)
    3
    >>> check_scalar(True, "n_neighbors", int, min_val=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    diverseevol.errors.ValidationError: n_neighbors must be a positive int; got True.
    >>> check_scalar(0.5, "eig_floor", Interval(float, 0, 1, closed="left"))
    0.5
    """
    interval = (
        target_type
        if isinstance(target_type, Interval)
        else Interval(target_type, min_val, max_val, include_boundaries, finite)
    )
    if value is None and allow_none:
        return None
    if value in interval:
        return int(value) if interval.kind is int else float(value)
    expected = ("None or " if allow_none else "") + interval.describe() + (f" ({what})" if what else "")
    if not fix and interval.kind is int and isinstance(value, float) and value.is_integer():
        fix = f"Pass int({value!r})."
    raise error(f"{name} must be {expected}; got {value!r}." + (f" {fix}" if fix else ""))


def check_embeddings(emb: Any, *, name: str = "emb") -> np.ndarray:
    """Return ``emb`` as a 2-D floating array without copying memmaps or float arrays.

    Parameters
    ----------
    emb : array-like of shape (N, d)
        One float vector per record of Z. ``np.memmap`` is accepted and never loaded whole.

    Raises
    ------
    ValidationError
        If ``emb`` is not 2-D, is empty, or is not numeric.
    """
    if isinstance(emb, np.ndarray):
        arr = emb
    else:
        try:
            arr = np.asarray(emb)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"{name} must be a 2-D numeric array of shape (N, d); got an object of type "
                f"{type(emb).__name__} that numpy cannot convert ({exc})."
            ) from exc
    if arr.ndim != 2:
        raise ValidationError(
            f"{name} must be a 2-D array of shape (N, d), one row per record; got {arr.ndim}-D "
            f"with shape {arr.shape}. Reshape it, e.g. {name}.reshape(len({name}), -1)."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValidationError(
            f"{name} must have at least one row and one column; got shape {arr.shape}."
        )
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValidationError(
            f"{name} must hold real numbers (float32 recommended); got dtype {arr.dtype}. "
            f"Convert it with {name}.astype(np.float32)."
        )
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def check_index_array(
    idx: Any, n: int, *, name: str, allow_empty: bool = True
) -> np.ndarray:
    """Return ``idx`` as a 1-D int64 array of distinct indices in ``[0, n)``.

    Parameters
    ----------
    idx : array-like of int, shape (m,)
        Absolute row indices into Z.
    n : int
        Number of records in Z.
    name : str
        Argument name used in error messages.

    Raises
    ------
    IndexValidationError
        If ``idx`` is not integer, not 1-D, out of range or has duplicates.
    """
    if isinstance(idx, (str, bytes)):
        raise IndexValidationError(f"{name} must be a 1-D array of integer indices; got a string {idx!r}.")
    arr = np.asarray(idx)
    if arr.size == 0:
        if not allow_empty:
            raise IndexValidationError(f"{name} must not be empty.")
        return np.empty(0, dtype=np.int64)
    if arr.ndim != 1:
        raise IndexValidationError(
            f"{name} must be a 1-D array of integer indices; got {arr.ndim}-D with shape {arr.shape}. "
            f"Flatten it with np.ravel({name})."
        )
    if arr.dtype == bool:
        raise IndexValidationError(
            f"{name} must hold integer indices, not a boolean mask; convert a mask with np.flatnonzero(mask)."
        )
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            raise IndexValidationError(
                f"{name} must have an integer dtype; got {arr.dtype} (whole numbers). "
                f"Convert it with {name}.astype(np.int64)."
            )
        raise IndexValidationError(f"{name} must hold integer indices; got dtype {arr.dtype}.")
    lo, hi = int(arr.min()), int(arr.max())  # before the cast: a uint64 >= 2**63 would turn negative
    arr = arr.astype(np.int64, copy=False)
    if lo < 0 or hi >= n:
        bad = lo if lo < 0 else hi
        raise IndexValidationError(
            f"{name} must index rows of Z in [0, {n}); got {bad}. Indices are absolute row numbers of "
            f"the embeddings array (N = {n}); negative indices are not accepted."
        )
    uniq, counts = np.unique(arr, return_counts=True)
    if len(uniq) != len(arr):
        dups = uniq[counts > 1]
        raise IndexValidationError(
            f"{name} must not contain duplicates; got {len(arr) - len(uniq)} repeated entries "
            f"(e.g. {dups[:5].tolist()}). Use np.unique({name}) if repeats are intended to collapse."
        )
    return arr


def check_disjoint(pool_idx: np.ndarray, candidate_idx: np.ndarray) -> None:
    """Raise IndexValidationError if the pool and candidate index sets overlap."""
    if pool_idx.size and candidate_idx.size:
        both = np.intersect1d(pool_idx, candidate_idx, assume_unique=True)
        if both.size:
            raise IndexValidationError(
                f"pool_idx and candidate_idx must be disjoint (a record already in the training pool "
                f"cannot be selected again); {both.size} indices are in both, e.g. {both[:5].tolist()}. "
                f"Remove them from candidate_idx, e.g. np.setdiff1d(candidate_idx, pool_idx)."
            )


def complement_indices(n: int, pool_idx: np.ndarray) -> np.ndarray:
    """Return the sorted int64 indices of ``[0, n)`` not in ``pool_idx`` (Z \\ P in Z's index space)."""
    mask = np.ones(n, dtype=bool)
    mask[pool_idx] = False
    return np.flatnonzero(mask).astype(np.int64)


def check_k(k: Any, n_candidates: int, *, name: str = "k") -> int:
    """Return ``k`` as an int in ``[0, n_candidates]``: the rule every sampler's ``select`` applies.

    A custom sampler calls it (imported from :mod:`diverseevol.samplers`) at the start of
    ``select``, so that ``k`` is validated exactly as in the built-in samplers and the ``k``
    rules of :func:`diverseevol.testing.check_sampler` pass.

    Parameters
    ----------
    k : int
        Number of records to select (a Python or numpy integer; ``bool`` is refused).
    n_candidates : int
        Number of candidates, usually ``len(ctx.candidate_idx)``.
    name : str, default "k"
        Name of the argument in error messages.

    Returns
    -------
    int
        ``k`` as a Python int.

    Raises
    ------
    ValidationError
        If ``k`` is not an integer or is negative.
    PoolExhaustedError
        If ``k`` exceeds the number of candidates.

    Examples
    --------
    >>> import numpy as np
    >>> from diverseevol.samplers import check_k
    >>> check_k(np.int64(3), 5)
    3
    >>> check_k(6, 5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    diverseevol.errors.PoolExhaustedError: Cannot select k=6 records: only 5 candidates are left. ...
    """
    k = check_scalar(k, name, int, min_val=0, what="the number of records to select")
    if k > n_candidates:
        raise PoolExhaustedError(
            f"Cannot select {name}={k} records: only {n_candidates} candidates are left. "
            f"Lower {name} to at most {n_candidates} or widen candidate_idx."
        )
    return k


def check_random_state(random_state: RandomState) -> np.random.Generator:
    """Turn ``random_state`` into a ``np.random.Generator``.

    ``None`` gives fresh OS entropy, an int (or SeedSequence) seeds a new PCG64 generator, a
    Generator is used as is (shared, not copied), a legacy RandomState seeds a new Generator from
    its stream.
    """
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.SeedSequence)):
        if isinstance(random_state, bool):
            raise ValidationError(f"random_state must be None, an int or a numpy Generator; got {random_state!r}.")
        if isinstance(random_state, numbers.Integral) and int(random_state) < 0:
            raise ValidationError(f"random_state must be a non-negative int; got {random_state}.")
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**63 - 1, dtype=np.int64))
    raise ValidationError(
        f"random_state must be None, an int, a np.random.Generator or np.random.RandomState; "
        f"got {random_state!r} of type {type(random_state).__name__}."
    )


def check_finite_rows(
    emb: np.ndarray, rows: np.ndarray | None = None, *, name: str = "emb", block_rows: int = 65536
) -> None:
    """Raise NonFiniteEmbeddingError if any used row of ``emb`` holds NaN or Inf.

    Works blockwise so memmapped arrays are never loaded whole.

    Parameters
    ----------
    emb : ndarray of shape (N, d)
    rows : ndarray of int, shape (m,), optional
        Row indices into ``emb`` (Z's index space) to check; all rows when None.
    """
    n = emb.shape[0]
    if rows is None:
        for start in range(0, n, block_rows):
            block = emb[start : start + block_rows]
            if not np.isfinite(block).all():
                bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
                _raise_nonfinite(name, bad)
        return
    for start in range(0, len(rows), block_rows):
        sel = rows[start : start + block_rows]
        block = emb[sel]
        if not np.isfinite(block).all():
            bad = int(sel[np.flatnonzero(~np.isfinite(block).all(axis=1))[0]])
            _raise_nonfinite(name, bad)


def _raise_nonfinite(name: str, row: int) -> None:
    raise NonFiniteEmbeddingError(
        f"{name} must be finite in the rows used for selection; row {row} contains NaN or Inf. "
        f"Check the embedder (e.g. fp16 overflow) or drop that record from candidate_idx."
    )



#: Default relative distance under which two embedding rows count as the same row.
DEGENERATE_RTOL = 1e-2
#: Default share of rows equal to one common row from which embeddings count as degenerate.
DEGENERATE_FRACTION = 0.9


def identical_row_fraction(
    emb: np.ndarray, *, rtol: float = DEGENERATE_RTOL, sample_rows: int = 1024, block_values: int = 1 << 22
) -> float:
    """Share of the rows of ``emb`` that equal one common row, up to a relative distance ``rtol``.

    The common row is the coordinate-wise median of up to ``sample_rows`` evenly spaced rows (when
    more than half the rows agree, the median lies among them). Row ``i`` counts as identical when
    ``||emb[i] - common|| <= rtol * max(||common||, median row norm)``; every row is then identical
    when all rows are zero. Rows with NaN or Inf never count. Reads ``emb`` in row blocks (about
    ``block_values`` values at once, so a memmap is never loaded whole) after dividing by the
    largest finite magnitude, so rows of 1e200 do not overflow.

    Parameters
    ----------
    emb : ndarray of shape (N, d)
        One row per record (Z's index space).

    Returns
    -------
    float
        In [0, 1]; 1.0 for N <= 1.
    """
    n, d = emb.shape
    if n <= 1:
        return 1.0
    picks = np.unique(np.linspace(0, n - 1, min(n, sample_rows)).astype(np.int64))
    sample = np.asarray(emb[picks], dtype=np.float64)
    finite = np.isfinite(sample)
    scale = float(np.abs(sample[finite]).max()) if finite.any() else 0.0
    scale = scale if scale > 0 else 1.0
    sample = np.where(finite, sample, np.nan) / scale
    with np.errstate(invalid="ignore"):
        common = np.nanmedian(sample, axis=0) if finite.any() else np.zeros(d)
    common = np.nan_to_num(common, nan=0.0)
    row_norms = np.sqrt(np.einsum("ij,ij->i", sample, sample))
    typical = float(np.nanmedian(row_norms)) if np.isfinite(row_norms).any() else 0.0
    threshold = rtol * max(float(np.sqrt(common @ common)), typical)
    block = max(1, block_values // max(d, 1))
    same = 0
    for start in range(0, n, block):
        x = np.asarray(emb[start : start + block], dtype=np.float64) / scale - common
        with np.errstate(invalid="ignore", over="ignore"):
            dist = np.sqrt(np.einsum("ij,ij->i", x, x))
        same += int(np.count_nonzero(dist <= threshold))
    return same / n


def check_not_degenerate(
    emb: Any,
    *,
    name: str = "embeddings",
    rtol: float = DEGENERATE_RTOL,
    max_fraction: float = DEGENERATE_FRACTION,
    action: str = "warn",
    stacklevel: int = 2,
) -> float:
    """Warn (or raise) when all or nearly all rows of ``emb`` are the same row.

    Degenerate embeddings make selection meaningless: K-Center then picks records in index order
    with covering radius 0 and the Vendi score is 1. The usual cause is an embedder whose token
    limit is shorter than the prompt template, so every record is cut before its own text.

    Parameters
    ----------
    emb : array-like of shape (N, d)
        One row per record (Z's index space); a memmap is read in blocks.
    name : str, default "embeddings"
        How the message names the array.
    rtol : float, default 1e-2
        Relative distance under which rows count as identical; see :func:`identical_row_fraction`.
    max_fraction : float, default 0.9
        Degenerate when at least this share of the rows (and at least 2 rows) are identical.
    action : {"warn", "raise"}, default "warn"
        ``"warn"`` issues a :class:`~diverseevol.errors.DegenerateEmbeddingsWarning`; ``"raise"``
        raises :class:`~diverseevol.errors.DegenerateEmbeddingError`.

    Returns
    -------
    float
        The share of identical rows, in [0, 1].
    """
    import warnings

    from .errors import DegenerateEmbeddingError, DegenerateEmbeddingsWarning

    if action not in ("warn", "raise"):
        raise ValidationError(f"action must be 'warn' or 'raise'; got {action!r}.")
    arr = check_embeddings(emb, name=name)
    n = arr.shape[0]
    fraction = identical_row_fraction(arr, rtol=rtol)
    if n < 2 or fraction < max_fraction:
        return fraction
    count = int(round(fraction * n))
    zero = not np.any(np.asarray(arr[: min(n, 4096)]))
    what = "every row is zero" if zero and fraction == 1.0 else (
        f"{count} of {n} rows ({fraction:.0%}) are the same row (within a relative distance of {rtol:g})"
    )
    message = (
        f"{name} are degenerate: {what}. Selection on them is meaningless (K-Center picks records in "
        f"index order with covering radius 0; the Vendi score is 1). Likely cause: the embedder cuts "
        f"every record before its own text, because its max_length (in tokens) is shorter than the "
        f"prompt template that precedes the instruction. Fix: raise the embedder's max_length "
        f"(HFEmbedder(max_length=...), model.embedder.max_length in a config file) to cover the "
        f"template and the record, e.g. 512; also check that the data fields are mapped (empty "
        f"instruction/input/output fields embed alike)."
    )
    if action == "raise":
        raise DegenerateEmbeddingError(message)
    warnings.warn(message, DegenerateEmbeddingsWarning, stacklevel=stacklevel)
    return fraction
