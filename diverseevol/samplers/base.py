"""The sampler contract: the read-only context, the Sampler protocol, what a sampler requires and
what it returns, and :func:`run_sampler`, the one way callers run a sampler.

Index space: every index array here holds absolute row indices into Z, the whole data set.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from ..errors import MissingSignalError, SamplerOutputError, ValidationError

__all__ = [
    "Requirements",
    "Sampler",
    "Selection",
    "SelectionContext",
    "requirements_of",
    "run_sampler",
]

_EMBEDDINGS = "embeddings"
_LABELS = "labels"
_LENGTHS = "lengths"
_SCORES_PREFIX = "scores:"


@dataclass(frozen=True)
class SelectionContext:
    """Everything a sampler may look at when it selects records; built by the caller, read-only.

    Attributes
    ----------
    pool_idx : ndarray of int64, shape (|P_t|,)
        The training pool P_t, as absolute row indices into Z.
    candidate_idx : ndarray of int64, shape (|Q_t|,)
        The records that may be selected (by default Z \\ P_t), absolute row indices into Z.
    rng : numpy.random.Generator
        The only source of randomness a sampler may use; owned by the caller and derived from
        (seed, round) by :class:`~diverseevol.EvolutionLoop`.
    round : int
        The iteration t.
    embeddings : ndarray of shape (N, d), optional
        Model M_t's embedding of every record of Z, rows in Z's index space.
    scores : Mapping[str, ndarray of shape (N,)]
        Per-record signals in Z's index space, e.g. ``"confidence"``, ``"margin"``, ``"entropy"``.
    n_records : int, optional
        |Z|; inferred from ``embeddings``, the scores, ``labels`` or ``lengths`` when omitted.
    labels : ndarray of shape (N,), optional
        One label per record of Z (e.g. Dolly's ``category``), rows in Z's index space; any
        dtype whose values compare and sort (strings, ints). :class:`~diverseevol.EvolutionLoop`
        fills it from ``label_field=`` for samplers that require ``labels``.
    lengths : ndarray of float64, shape (N,), optional
        Each record's length, rows in Z's index space, finite and >= 0. The unit is the
        caller's: :class:`~diverseevol.EvolutionLoop` gives tokens of the rendered record when its
        scorer has ``record_lengths`` (as :class:`diverseevol.hf.HFScorer` does), else whitespace
        words of the Alpaca-rendered record. Samplers use lengths only through their order and
        ratios, never their unit.
    """

    pool_idx: np.ndarray
    candidate_idx: np.ndarray
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    round: int = 0
    embeddings: np.ndarray | None = None
    scores: Mapping[str, np.ndarray] = field(default_factory=dict)
    n_records: int | None = None
    labels: np.ndarray | None = None
    lengths: np.ndarray | None = None

    def __post_init__(self) -> None:
        pool = np.asarray(self.pool_idx, dtype=np.int64).reshape(-1)
        cand = np.asarray(self.candidate_idx, dtype=np.int64).reshape(-1)
        pool.setflags(write=False)
        cand.setflags(write=False)
        object.__setattr__(self, "pool_idx", pool)
        object.__setattr__(self, "candidate_idx", cand)
        object.__setattr__(self, "scores", MappingProxyType(dict(self.scores)))
        if self.labels is not None:
            object.__setattr__(self, "labels", _per_record(self.labels, "labels", self.n_records))
        if self.lengths is not None:
            object.__setattr__(self, "lengths", _checked_lengths(self.lengths, self.n_records))
        if self.n_records is None:
            n = None
            if self.embeddings is not None:
                n = int(self.embeddings.shape[0])
            elif self.scores:
                n = int(len(next(iter(self.scores.values()))))
            elif self.labels is not None:
                n = int(self.labels.shape[0])
            elif self.lengths is not None:
                n = int(self.lengths.shape[0])
            object.__setattr__(self, "n_records", n)

    def signals(self) -> frozenset[str]:
        """The signals this context carries, in the string form of :meth:`Requirements.to_strings`."""
        return self.provides().to_strings()

    def provides(self) -> Requirements:
        """The signals this context carries, as :class:`Requirements`."""
        return Requirements(
            embeddings=self.embeddings is not None,
            scores=frozenset(self.scores),
            labels=self.labels is not None,
            lengths=self.lengths is not None,
        )


def _per_record(values: Any, name: str, n_records: int | None) -> np.ndarray:
    """``values`` as a read-only 1-D array of one entry per record (``n_records`` of them when known)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValidationError(
            f"SelectionContext.{name} must be a 1-D array of shape (N,), one entry per record of Z; got "
            f"shape {arr.shape}."
        )
    if n_records is not None and arr.shape[0] != n_records:
        raise ValidationError(
            f"SelectionContext.{name} has {arr.shape[0]} entries but n_records is {n_records}; give one "
            f"entry per record of Z, in Z's index space."
        )
    view = arr.view()
    view.setflags(write=False)
    return view


def _checked_lengths(values: Any, n_records: int | None) -> np.ndarray:
    """Record lengths as a read-only float64 (N,) array; finite and >= 0, else :class:`ValidationError`."""
    arr = _per_record(values, "lengths", n_records)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValidationError(
            f"SelectionContext.lengths must hold real numbers (tokens or words per record); got dtype "
            f"{arr.dtype}."
        )
    out = np.array(arr, dtype=np.float64)
    bad = ~(np.isfinite(out) & (out >= 0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValidationError(
            f"SelectionContext.lengths must be finite and >= 0; record {first} has length {out[first]!r}. "
            f"Count the record's tokens or words."
        )
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Requirements:
    """The signals a sampler needs in its :class:`SelectionContext`; the caller computes only these.

    Parameters
    ----------
    embeddings : bool, default False
        The sampler reads ``ctx.embeddings``, shape (N, d), rows in Z's index space.
    scores : frozenset of str, default frozenset()
        Keys the sampler reads from ``ctx.scores`` (each an array of shape (N,) in Z's index
        space), e.g. ``frozenset({"margin"})``. Any iterable of names is accepted and stored as
        a frozenset.
    labels : bool, default False
        The sampler reads ``ctx.labels``, shape (N,): one label per record (the loop's
        ``label_field``).
    lengths : bool, default False
        The sampler reads ``ctx.lengths``, shape (N,): each record's length (tokens or words).

    Notes
    -----
    For code written against the older string form, a ``Requirements`` behaves like the set of
    strings ``"embeddings"`` / ``"labels"`` / ``"lengths"`` / ``"scores:<name>"`` it stands for:
    ``"embeddings" in req``, iteration, ``len`` and ``==`` against such a set all work (see
    :meth:`to_strings`). :meth:`parse` is the one place that reads the string form. ``a | b``
    is what either needs.

    Examples
    --------
    >>> from diverseevol.samplers import Requirements
    >>> req = Requirements(scores={"margin"})
    >>> "scores:margin" in req, req.embeddings
    (True, False)
    >>> Requirements.parse({"embeddings", "scores:margin"}) == Requirements(True, frozenset({"margin"}))
    True
    >>> Requirements(lengths=True) | Requirements(embeddings=True)
    Requirements(embeddings=True, lengths=True)
    """

    embeddings: bool = False
    scores: frozenset[str] = frozenset()
    labels: bool = False
    lengths: bool = False

    def __post_init__(self) -> None:
        for flag in ("embeddings", "labels", "lengths"):
            value = getattr(self, flag)
            if not isinstance(value, (bool, np.bool_)):
                raise ValidationError(
                    f"Requirements.{flag} must be True or False; got {value!r} of type "
                    f"{type(value).__name__}."
                )
            object.__setattr__(self, flag, bool(value))
        scores = self.scores
        if isinstance(scores, (str, bytes)) or not isinstance(scores, Iterable):
            raise ValidationError(
                f"Requirements.scores must be a set of score names; got {scores!r}. Write "
                f'scores=frozenset({{"margin"}}) rather than scores="margin".'
            )
        names = frozenset(scores)
        for name in sorted(names, key=repr):
            if not isinstance(name, str) or not name:
                raise ValidationError(
                    f"Requirements.scores must hold non-empty score names (keys of ctx.scores, e.g. "
                    f'"margin"); got {name!r}.'
                )
        object.__setattr__(self, "scores", names)

    @classmethod
    def parse(cls, value: Any) -> Requirements:
        """Read requirements given as a :class:`Requirements` or in the older string form.

        Parameters
        ----------
        value : Requirements or iterable of str
            A ``Requirements`` is returned unchanged. Otherwise each item must be
            ``"embeddings"``, ``"labels"``, ``"lengths"`` or ``"scores:<name>"`` (e.g.
            ``{"embeddings", "scores:margin"}``).

        Returns
        -------
        Requirements

        Raises
        ------
        ValidationError
            If ``value`` is a bare string, not iterable, or holds any other item.
        """
        if isinstance(value, Requirements):
            return value
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise ValidationError(
                f"requires must be a Requirements (or, in the deprecated form, a frozenset of "
                f'strings); got {value!r}. Write requires = Requirements(embeddings=True) rather than '
                f"a bare string."
            )
        flags = {_EMBEDDINGS: False, _LABELS: False, _LENGTHS: False}
        scores: set[str] = set()
        for item in sorted(value, key=repr):
            if isinstance(item, str) and item in flags:
                flags[item] = True
            elif isinstance(item, str) and item.startswith(_SCORES_PREFIX) and len(item) > len(_SCORES_PREFIX):
                scores.add(item[len(_SCORES_PREFIX):])
            else:
                raise ValidationError(
                    f'requires holds {item!r}; each requirement must be "embeddings", "labels", "lengths" '
                    f'or "scores:<signal>" (e.g. "scores:margin"). Better, declare '
                    f'requires = Requirements(embeddings=..., scores=frozenset({{"margin"}})).'
                )
        return cls(scores=frozenset(scores), **flags)

    def to_strings(self) -> frozenset[str]:
        """The string form: ``"embeddings"``, ``"labels"``, ``"lengths"`` and ``"scores:<name>"`` per
        score (for headers, CLI)."""
        out = {f"{_SCORES_PREFIX}{name}" for name in self.scores}
        for flag in (_EMBEDDINGS, _LABELS, _LENGTHS):
            if getattr(self, flag):
                out.add(flag)
        return frozenset(out)

    def __or__(self, other: Requirements) -> Requirements:
        """What either ``self`` or ``other`` needs."""
        if not isinstance(other, Requirements):
            return NotImplemented
        return Requirements(
            embeddings=self.embeddings or other.embeddings,
            scores=self.scores | other.scores,
            labels=self.labels or other.labels,
            lengths=self.lengths or other.lengths,
        )

    def __contains__(self, item: object) -> bool:
        return item in self.to_strings()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.to_strings()))

    def __len__(self) -> int:
        return len(self.scores) + int(self.embeddings) + int(self.labels) + int(self.lengths)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Requirements):
            return self.to_strings() == other.to_strings()
        if isinstance(other, (set, frozenset)):
            return self.to_strings() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.to_strings())  # equal to the hash of the equal frozenset of strings

    def __repr__(self) -> str:
        parts = []
        if self.embeddings:
            parts.append("embeddings=True")
        if self.scores:
            parts.append("scores=frozenset({" + ", ".join(repr(n) for n in sorted(self.scores)) + "})")
        if self.labels:
            parts.append("labels=True")
        if self.lengths:
            parts.append("lengths=True")
        return f"Requirements({', '.join(parts)})"


@dataclass(frozen=True, eq=False)
class Selection:
    """What a sampler picked: indices in pick order, and the covering radii when it knows them.

    Parameters
    ----------
    indices : array-like of int, shape (k,)
        Absolute row indices into Z, in pick order. Stored as a read-only int64 array;
        integral floats (``3.0``) are accepted, anything else raises.
    radii : array-like of float, shape (k,), optional
        For distance-based samplers: the distance of each pick to its nearest center (the pool
        plus the earlier picks) at the moment it was picked. Stored as read-only float64.

    Raises
    ------
    SamplerOutputError
        If ``indices`` is not 1-D or holds non-integral values, or ``radii`` does not have
        the shape of ``indices``.
    """

    indices: np.ndarray
    radii: np.ndarray | None = None

    def __post_init__(self) -> None:
        indices = _as_index_array(self.indices, "Selection.indices")
        object.__setattr__(self, "indices", indices)
        if self.radii is not None:
            try:
                radii = np.array(self.radii, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise SamplerOutputError(
                    f"Selection.radii must be real numbers, one per index; got {self.radii!r} ({exc})."
                ) from exc
            if radii.shape != indices.shape:
                raise SamplerOutputError(
                    f"Selection.radii must have the shape of Selection.indices {indices.shape}, one "
                    f"radius per pick; got shape {radii.shape}."
                )
            radii.setflags(write=False)
            object.__setattr__(self, "radii", radii)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        # np.asarray(selection) gives the indices, so code that treated select()'s result as
        # an index array keeps working.
        if copy:
            return np.array(self.indices, dtype=dtype, copy=True)
        return np.asarray(self.indices, dtype=dtype)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Selection):
            return NotImplemented
        if not np.array_equal(self.indices, other.indices):
            return False
        if self.radii is None or other.radii is None:
            return self.radii is None and other.radii is None
        return bool(np.array_equal(self.radii, other.radii, equal_nan=True))

    __hash__ = None  # type: ignore[assignment]  # holds arrays


def _as_index_array(values: Any, source: str) -> np.ndarray:
    """Return ``values`` as a read-only 1-D int64 array, or raise :class:`SamplerOutputError`.

    Parameters
    ----------
    values : array-like
        Row indices into Z, as returned by a sampler.
    source : str
        Names who produced ``values`` in the error message, e.g. ``"Sampler 'my' (My).select()"``.
    """
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise SamplerOutputError(
            f"{source} must give a 1-D array of row indices into Z; got {type(values).__name__} that "
            f"numpy cannot convert ({exc})."
        ) from exc
    if values is None or arr.dtype.kind not in "iuf":
        hint = (
            " It looks like a boolean mask: return np.flatnonzero(mask) instead."
            if arr.dtype.kind == "b"
            else " Return np.asarray(picks, dtype=np.int64) or a Selection."
        )
        raise SamplerOutputError(
            f"{source} must give a 1-D array of integer row indices into Z; got "
            f"{type(values).__name__}" + (f" of dtype {arr.dtype}" if values is not None else "") + f".{hint}"
        )
    if arr.ndim != 1:
        raise SamplerOutputError(
            f"{source} must give a 1-D array of shape (k,); got shape {arr.shape}. Flatten it, or "
            f"return one index per pick."
        )
    if arr.dtype.kind == "f":
        bad = ~(np.isfinite(arr) & (arr == np.round(arr)))
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise SamplerOutputError(
                f"{source} must give integral row indices; got the non-integral value "
                f"{arr[first].item()!r} at position {first}. Return integer indices (np.int64), not "
                f"scores or fractions."
            )
    out = arr.astype(np.int64)
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise SamplerOutputError(f"{source} gave an index larger than int64 allows: {int(arr.max())}.")
    out.setflags(write=False)
    return out


@runtime_checkable
class Sampler(Protocol):
    """A selection strategy: holds only hyperparameters, gets everything else from the context.

    Attributes
    ----------
    name : str
        The registry name.
    requires : Requirements
        Signals the caller must put in the context, e.g. ``Requirements(embeddings=True)`` or
        ``Requirements(scores=frozenset({"margin"}))``. The loop computes only what is required.
        The older form, a frozenset of ``"embeddings"`` / ``"scores:<name>"`` strings, is still
        accepted with a DeprecationWarning.

    Notes
    -----
    ``select(ctx, k)`` returns ``k`` distinct indices from ``ctx.candidate_idx`` (absolute row
    indices into Z) in pick order: either as an int64 array of shape (k,), or as a
    :class:`Selection` when the sampler also knows each pick's covering radius. Randomness only
    from ``ctx.rng``; ties break toward the lowest index; no state kept between calls. Callers
    run samplers through :func:`run_sampler`. Check a custom sampler with
    :func:`diverseevol.testing.check_sampler`.
    """

    name: ClassVar[str]
    requires: ClassVar[Requirements]

    def select(self, ctx: SelectionContext, k: int) -> np.ndarray | Selection: ...


# --------------------------------------------------------------------------------------------
# compatibility with the older forms: one DeprecationWarning per class and topic
# --------------------------------------------------------------------------------------------
_warned: dict[str, weakref.WeakSet[type]] = {}


def _warn_once(cls: type, topic: str, message: str, stacklevel: int) -> None:
    seen = _warned.setdefault(topic, weakref.WeakSet())
    if cls in seen:
        return
    seen.add(cls)
    warnings.warn(message, DeprecationWarning, stacklevel=stacklevel + 1)


def _class_label(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _warn_old_requires(cls: type, declared: Any, parsed: Requirements, *, stacklevel: int = 2) -> None:
    """Issue the once-per-class DeprecationWarning for a ``requires`` in the old string form."""
    _warn_once(
        cls,
        "requires",
        f"{_class_label(cls)} declares requires = {declared!r}, a set of strings; this form is "
        f"deprecated. Declare requires = {parsed!r} instead "
        f"(from diverseevol.samplers import Requirements).",
        stacklevel + 1,
    )


def requirements_of(sampler: Any) -> Requirements:
    """Return what ``sampler`` requires, as :class:`Requirements`.

    Parameters
    ----------
    sampler : Sampler or sampler class
        Its ``requires`` attribute is read: a :class:`Requirements`, or (deprecated, one
        DeprecationWarning per class) a set of ``"embeddings"`` / ``"scores:<name>"`` strings.
        A sampler without ``requires`` is treated as requiring nothing, also with a warning.

    Returns
    -------
    Requirements

    Raises
    ------
    ValidationError
        If ``requires`` is neither form; the message names the sampler.
    """
    cls = sampler if isinstance(sampler, type) else type(sampler)
    declared = getattr(sampler, "requires", None)
    if isinstance(declared, Requirements):
        return declared
    if declared is None:
        _warn_once(
            cls,
            "no-requires",
            f"{_class_label(cls)} has no `requires` attribute; it is treated as requiring nothing. "
            f"Declare requires = Requirements() (from diverseevol.samplers import Requirements).",
            2,
        )
        return Requirements()
    try:
        parsed = Requirements.parse(declared)
    except ValidationError as exc:
        raise ValidationError(f"Sampler {_class_label(cls)}: {exc}") from None
    _warn_old_requires(cls, declared, parsed, stacklevel=2)
    return parsed


def _sampler_label(sampler: Any) -> str:
    name = getattr(sampler, "name", None)
    cls = type(sampler).__name__
    return f"Sampler {name!r} ({cls})" if isinstance(name, str) else f"Sampler {cls}"


def _has_legacy_radii_method(sampler: Any) -> bool:
    method = getattr(type(sampler), "select_with_radii", None)
    return callable(method) and not getattr(method, "_deprecated_wrapper", False)


def run_sampler(sampler: Any, ctx: SelectionContext, k: int) -> Selection:
    """Run ``sampler`` on ``ctx`` and return its picks as a checked :class:`Selection`.

    The one way the loop, one-shot selection, the CLI and :func:`~diverseevol.testing.check_sampler`
    run a sampler. It checks that ``ctx`` carries what the sampler requires, calls
    ``sampler.select(ctx, k)`` and checks the output's form.

    Parameters
    ----------
    sampler : Sampler
        Its ``select`` may return an index array of shape (k,) or a :class:`Selection`. A sampler
        with the deprecated ``select_with_radii(ctx, k) -> (indices, radii)`` method is called
        through that method instead, with a DeprecationWarning once per class.
    ctx : SelectionContext
    k : int
        Number of records to select; validated by the sampler.

    Returns
    -------
    Selection
        ``indices``: int64, shape (k,), absolute row indices into Z in pick order; ``radii``:
        float64, shape (k,), or None when the sampler does not report them.

    Raises
    ------
    MissingSignalError
        If ``ctx`` lacks a signal the sampler requires.
    SamplerOutputError
        If the output is not 1-D, holds non-integral values (``1.5``; ``3.0`` is accepted) or is
        not index-like at all (None, strings). Membership in the candidates, uniqueness and
        length are left to the caller (the loop checks them; so does ``check_sampler``).
    """
    return _run_sampler_with_output(sampler, ctx, k)[1]


def _run_sampler_with_output(sampler: Any, ctx: SelectionContext, k: int) -> tuple[Any, Selection]:
    """:func:`run_sampler`, also returning what the sampler's method returned, unconverted.

    For :func:`diverseevol.testing.check_sampler`, which holds samplers to the strict form
    (an int64 ndarray or a Selection) that :func:`run_sampler` converts to.
    """
    require_signals(sampler, ctx)
    label = _sampler_label(sampler)
    if _has_legacy_radii_method(sampler):
        _warn_once(
            type(sampler),
            "select_with_radii",
            f"{_class_label(type(sampler))} defines select_with_radii(), which is deprecated: return "
            f"Selection(indices, radii) from select() instead (from diverseevol.samplers import "
            f"Selection).",
            3,
        )
        out = sampler.select_with_radii(ctx, k)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise SamplerOutputError(
                f"{label}.select_with_radii() must return (indices, radii); got {type(out).__name__}."
            )
        indices = _as_index_array(out[0], f"{label}.select_with_radii()")
        return out, Selection(indices, out[1])
    out = sampler.select(ctx, k)
    if isinstance(out, Selection):
        return out, out
    return out, Selection(_as_index_array(out, f"{label}.select()"))


def require_signals(sampler: Any, ctx: SelectionContext) -> None:
    """Raise :class:`MissingSignalError` if ``ctx`` lacks a signal ``sampler.requires``.

    Parameters
    ----------
    sampler : Sampler
    ctx : SelectionContext

    Raises
    ------
    MissingSignalError
        Naming each missing signal and how to provide it.
    """
    need = requirements_of(sampler)
    have = ctx.provides()
    missing = Requirements(
        embeddings=need.embeddings and not have.embeddings,
        scores=need.scores - have.scores,
        labels=need.labels and not have.labels,
        lengths=need.lengths and not have.lengths,
    )
    if not len(missing):
        return
    name = getattr(sampler, "name", type(sampler).__name__)
    hints = []
    if missing.embeddings:
        hints.append(
            f"for {_EMBEDDINGS!r}: build the context with SelectionContext(..., embeddings=emb) "
            f"where emb has shape (N, d); EvolutionLoop computes it with its `embedder` callable"
        )
    if missing.labels:
        hints.append(
            f"for {_LABELS!r}: build the context with SelectionContext(..., labels=values) where values "
            f"has shape (N,), one label per record; EvolutionLoop fills it from label_field= (e.g. "
            f"label_field='category')"
        )
    if missing.lengths:
        hints.append(
            f"for {_LENGTHS!r}: build the context with SelectionContext(..., lengths=values) where values "
            f"has shape (N,), each record's length in tokens or words; EvolutionLoop computes it"
        )
    for key in sorted(missing.scores):
        hints.append(
            f"for {_SCORES_PREFIX + key!r}: build the context with SelectionContext(..., "
            f"scores={{{key!r}: values}}) where values has shape (N,) in Z's index space; "
            f"EvolutionLoop computes it with its `scorer` callable (diverseevol.hf provides one "
            f"for transformers models)"
        )
    names = sorted(missing.to_strings())
    raise MissingSignalError(
        f"Sampler {name!r} requires {', '.join(repr(m) for m in names)}, which the selection "
        f"context does not carry (it has: {sorted(have.to_strings()) or 'nothing'}). To provide "
        f"it, {'; '.join(hints)}."
    )
