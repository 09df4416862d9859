"""Round t's signals: model M_t's embeddings and uncertainty scores of all of Z, with their caches.

Every rank calls the embedder and the scorer (they may be collective); rank 0 checks their
output, writes the caches (``embeddings.npy`` with ``cache_embeddings=True``, ``scores/*.npy``)
and keeps the arrays. A cache found on disk is used instead of calling the model again.

Embed once per round: when a round needs both and neither is cached, and the scorer says
``scorer.shares_pass_with(embedder)`` (duck-typed, e.g. :class:`diverseevol.hf.HFScorer`) while
the embedder has ``embed_and_score(model, records) -> (embeddings, scores)``, one call of the
latter gives both.

Labels and lengths (for samplers that require them) come from the records: the labels from
``label_field`` (read once, in the settings), the lengths from the scorer's
``record_lengths(model, records)`` when it has one (tokens; :class:`diverseevol.hf.HFScorer`),
else from :func:`~diverseevol.samplers.record_signals.record_word_lengths` (whitespace words of
the Alpaca-rendered record).

Imports numpy, the base modules, :mod:`diverseevol.samplers.record_signals` and the run package's
directory and settings modules.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import check_embeddings
from ..comm import run_on_rank0
from ..errors import MissingSignalError, ValidationError
from ..protocols import Communicator
from .directory import RunDirectory
from .settings import LoopSettings, callable_label

__all__ = ["RoundSignals", "check_scores", "compute_signals", "signals_need_model"]

logger = logging.getLogger("diverseevol.loop")  # the loop's documented logger (docs/loop.md)


@dataclass
class RoundSignals:
    """What M_t says about Z in round t (arrays on rank 0; other ranks hold None / empty).

    Attributes
    ----------
    embeddings : ndarray of shape (N, d) or None
        Rows in Z's index space; None when the round does not embed.
    scores : dict of str to ndarray of shape (N,)
        The scores the sampler requires, rows in Z's index space.
    time_embed_s, time_score_s : float
        Seconds this process spent in the embedder and the scorer (0 for cached signals). A
        shared pass (embeddings and scores from one forward pass) counts under ``time_embed_s``.
    labels : ndarray of str, shape (N,), or None
        Each record's label, when the sampler requires labels.
    lengths : ndarray of float64, shape (N,), or None
        Each record's length (tokens or words, see the module docstring), when the sampler
        requires lengths.
    """

    embeddings: np.ndarray | None = None
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    time_embed_s: float = 0.0
    time_score_s: float = 0.0
    labels: np.ndarray | None = None
    lengths: np.ndarray | None = None


def signals_need_model(settings: LoopSettings, t: int) -> bool:
    """Whether round ``t``'s signals need model M_t: embeddings, scores, or lengths counted by the scorer."""
    token_lengths = settings.lengths_in(t) and callable(getattr(settings.scorer, "record_lengths", None))
    return settings.embeds_in(t) or settings.scores_in(t) or token_lengths


def compute_signals(
    settings: LoopSettings, rd: RunDirectory, comm: Communicator, t: int, model: Any, bar: Any
) -> RoundSignals:
    """Return round ``t``'s embeddings (when :meth:`LoopSettings.embeds_in`) and scores (when
    :meth:`LoopSettings.scores_in`). Called on every rank at the same point."""
    signals = RoundSignals()
    needs_scores = settings.scores_in(t)
    joint = _shared_pass(settings) if settings.embeds_in(t) and needs_scores else None
    shared: dict[str, Any] = {}
    cached = joint is not None and (_embeddings_cached(rd, comm, t) or _scores_cached(settings, rd, comm, t))
    if joint is not None and not cached:

        def embed_and_score() -> Any:
            shared["embeddings"], shared["scores"] = joint(model, settings.records)
            return shared["embeddings"]

        signals.embeddings, signals.time_embed_s = _embeddings(
            settings, rd, comm, t, model, bar, produce=embed_and_score, phase="embed+score"
        )
    elif settings.embeds_in(t):
        signals.embeddings, signals.time_embed_s = _embeddings(settings, rd, comm, t, model, bar)
    if needs_scores:
        from_pass = (lambda: shared["scores"]) if "scores" in shared else None
        signals.scores, signals.time_score_s = _scores(settings, rd, comm, t, model, bar, produce=from_pass)
    if settings.requirements.labels and settings.selects_in(t) and settings.labels is not None:
        signals.labels = np.asarray(settings.labels)
    if settings.lengths_in(t) and comm.rank == 0:  # only rank 0 selects
        signals.lengths = _lengths(settings, t, model)
    return signals


def _lengths(settings: LoopSettings, t: int, model: Any) -> np.ndarray:
    """Each record's length: the scorer's ``record_lengths(model, records)`` (tokens), else words."""
    counter = getattr(settings.scorer, "record_lengths", None)
    if not callable(counter):
        from ..samplers.record_signals import record_word_lengths

        logger.info("round %d: record lengths in whitespace words (the scorer cannot count tokens)", t)
        return record_word_lengths(settings.records)
    got = np.asarray(counter(model, settings.records))
    if got.shape != (settings.n_records,) or got.dtype == bool or not np.issubdtype(got.dtype, np.number):
        raise ValidationError(
            f"The scorer {callable_label(settings.scorer)}'s record_lengths returned {got.dtype} of shape "
            f"{got.shape} in round {t}; expected one length per record, a number array of shape "
            f"({settings.n_records},)."
        )
    return got.astype(np.float64)


def _shared_pass(settings: LoopSettings) -> Any:
    """The embedder's ``embed_and_score`` when the scorer says it gives the scorer's scores, else None."""
    joint = getattr(settings.embedder, "embed_and_score", None)
    shares = getattr(settings.scorer, "shares_pass_with", None)
    if callable(joint) and callable(shares) and shares(settings.embedder):
        return joint
    return None


def _embeddings_cached(rd: RunDirectory, comm: Communicator, t: int) -> bool:
    return bool(run_on_rank0(comm, lambda: rd.embeddings_path(t).is_file()))


def _scores_cached(settings: LoopSettings, rd: RunDirectory, comm: Communicator, t: int) -> bool:
    return bool(run_on_rank0(comm, lambda: rd.read_scores(t, settings.score_names) is not None))


def _embeddings(
    settings: LoopSettings,
    rd: RunDirectory,
    comm: Communicator,
    t: int,
    model: Any,
    bar: Any,
    *,
    produce: Callable[[], Any] | None = None,
    phase: str = "embed",
) -> tuple[np.ndarray | None, float]:
    if _embeddings_cached(rd, comm, t):
        if comm.rank != 0:
            return None, 0.0
        logger.info("round %d: using cached embeddings", t)
        return rd.read_embeddings(t), 0.0
    bar.set_postfix(round=t, phase=phase)
    start = time.perf_counter()
    if produce is None:
        raw = settings.embedder(model, settings.records)  # type: ignore[misc]
    else:
        raw = produce()
    elapsed = time.perf_counter() - start

    def keep() -> None:  # rank 0; an error here reaches every rank
        arr = check_embeddings(raw, name=f"embedder output (round {t})")
        if arr.shape[0] != settings.n_records:
            raise ValidationError(
                f"The embedder returned {arr.shape[0]} rows in round {t}; expected one per record "
                f"of Z ({settings.n_records})."
            )
        if settings.cache_embeddings:
            rd.write_embeddings(t, arr)
            arr = rd.read_embeddings(t, verify=False)  # just written and checked: no second read to verify
        held["emb"] = arr

    held: dict[str, np.ndarray] = {}
    run_on_rank0(comm, keep)
    return held.get("emb"), elapsed


def _scores(
    settings: LoopSettings,
    rd: RunDirectory,
    comm: Communicator,
    t: int,
    model: Any,
    bar: Any,
    *,
    produce: Callable[[], Any] | None = None,
) -> tuple[dict[str, np.ndarray], float]:
    scores: dict[str, np.ndarray] = {}

    def read_cached() -> bool:  # rank 0 reads the cache once; every rank learns if it was there
        stored = rd.read_scores(t, settings.score_names)
        if stored is not None:
            scores.update(stored)
        return stored is not None

    if run_on_rank0(comm, read_cached):
        return scores, 0.0
    if produce is not None:  # the shared pass already ran (its time counts as embedding time)
        got, elapsed = produce(), 0.0
    else:
        bar.set_postfix(round=t, phase="score")
        start = time.perf_counter()
        got = settings.scorer(model, settings.records)  # type: ignore[misc]
        elapsed = time.perf_counter() - start

    def keep() -> None:
        scores.update(
            check_scores(
                got, t, n_records=settings.n_records, required=settings.score_names,
                scorer=callable_label(settings.scorer),
            )
        )
        rd.write_scores(t, scores)

    run_on_rank0(comm, keep)
    return scores, elapsed


def check_scores(
    got: Any, t: int, *, n_records: int, required: tuple[str, ...], scorer: str = "scorer"
) -> dict[str, np.ndarray]:
    """Check a scorer's output for round ``t`` and return it as float64 arrays of shape (N,).

    Parameters
    ----------
    got : Any
        What the scorer returned.
    t : int
        The round.
    n_records : int
        N.
    required : tuple of str
        The score names the sampler requires.
    scorer : str, default "scorer"
        How messages name the scorer.

    Raises
    ------
    ValidationError
        If ``got`` is not a mapping, an array does not have shape ``(n_records,)`` or does not
        hold real numbers (strings, None, complex numbers).
    MissingSignalError
        If a score in ``required`` is missing.
    """
    if not isinstance(got, Mapping):
        raise ValidationError(
            f"The scorer {scorer} must return a mapping name -> (N,) array; got {type(got).__name__} in "
            f"round {t}."
        )
    missing = [s for s in required if s not in got]
    if missing:
        raise MissingSignalError(
            f"The scorer returned {sorted(got)} in round {t} but the sampler requires {missing}; "
            f"return them too."
        )
    out = {}
    for name, values in got.items():
        try:
            arr = np.asarray(values)
        except (TypeError, ValueError) as exc:  # ragged lists
            raise ValidationError(
                f"The scorer {scorer} returned scores[{name!r}] that numpy cannot read as an array of numbers "
                f"in round {t} ({exc}); return one real number per record, shape ({n_records},)."
            ) from None
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise ValidationError(
                f"The scorer {scorer} returned scores[{name!r}] of dtype {arr.dtype} in round {t}; expected "
                f"one real number per record (float), e.g. np.asarray(values, dtype=float)."
            )
        if arr.shape != (n_records,):
            raise ValidationError(
                f"The scorer {scorer} returned scores[{name!r}] of shape {arr.shape} in round {t}; "
                f"scores[{name!r}] must have shape ({n_records},), one value per record (a real number)."
            )
        out[str(name)] = arr.astype(np.float64, copy=False)
    return out
