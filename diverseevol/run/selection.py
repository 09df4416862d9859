"""Round t's selection and measurements: run the sampler on M_t's signals, measure P_t, record both.

Rank 0 only (the loop shares the result). In iterative mode every round but the last runs the
sampler; in one-time mode round 0 picks all ``k * rounds`` records with M_0 and later rounds take
their slice of those picks from round 0's ``selection.json``. The result is what is written to
``selection.json``: ``new_indices`` (S_t in pick order), ``radii``, the pool's ``signals``
(:data:`~diverseevol.measurements.SIGNAL_KEYS`) and timings.

The measurements are :func:`diverseevol.measurements.pool_signals` (their one home). Imports numpy,
the base modules, :mod:`diverseevol.measurements`, :mod:`diverseevol.samplers` and the run package's
directory, seeds, settings, signals and validate modules.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .._files import to_jsonable
from .._validation import check_index_array, check_not_degenerate, complement_indices
from ..errors import RunDirectoryError, ValidationError
from ..measurements import pool_signals
from ..samplers.base import SelectionContext, run_sampler
from .directory import RunDirectory
from .seeds import round_rng
from .settings import LoopSettings
from .signals import RoundSignals
from .validate import round_fix

__all__ = ["select_and_measure"]

_Picks = tuple[np.ndarray, "np.ndarray | None", dict[str, Any]]


def select_and_measure(
    settings: LoopSettings, rd: RunDirectory, t: int, pool: np.ndarray, signals: RoundSignals
) -> dict[str, Any]:
    """Pick S_t, measure P_t, write ``selection.json`` and return its content (JSON-ready).

    M_t's embeddings, when the round has them, are first checked for degenerate rows
    (:func:`~diverseevol._validation.check_not_degenerate`: a DegenerateEmbeddingsWarning naming the
    round, the likely cause and the fix).

    Parameters
    ----------
    settings : LoopSettings
    rd : RunDirectory
    t : int
        The round.
    pool : ndarray of int64, shape (|P_t|,)
        P_t, absolute row indices into Z.
    signals : RoundSignals
        M_t's embeddings and scores.

    Returns
    -------
    dict
        ``round``, ``new_indices``, ``radii``, ``signals``, ``time_embed_s``, ``time_score_s``,
        ``time_select_s`` (and ``one_time`` in round 0 of a one-time run).
    """
    candidates = complement_indices(settings.n_records, pool)
    if signals.embeddings is not None:  # warns: K-Center on identical rows picks in index order
        check_not_degenerate(signals.embeddings, name=f"round {t} embeddings")
    start = time.perf_counter()
    new_idx, radii, extra = _pick(settings, rd, t, pool, candidates, signals)
    time_select = time.perf_counter() - start
    known_radius = float(radii[0]) if settings.selects_in(t) and radii is not None and len(radii) else None
    info = {
        "new_indices": new_idx,
        "radii": radii,
        "signals": pool_signals(
            signals.embeddings, pool, candidates, metric=settings.radius_metric, covering_radius=known_radius,
            reference_embeddings=settings.reference_embeddings, labels=settings.labels,
        ),
        "time_embed_s": signals.time_embed_s,
        "time_score_s": signals.time_score_s,
        "time_select_s": time_select,
        **extra,
    }
    rd.write_selection(t, info)
    return to_jsonable({"round": t, **info})


def _pick(
    settings: LoopSettings,
    rd: RunDirectory,
    t: int,
    pool: np.ndarray,
    candidates: np.ndarray,
    signals: RoundSignals,
) -> _Picks:
    """S_t and its radii; ``extra`` holds round 0's full one-time picks."""
    k = settings.k
    if settings.selects_in(t):
        picks, radii = _run_sampler(settings, t, pool, candidates, signals)
        if settings.mode != "one_time":
            return picks, radii, {}
        extra = {"one_time": {"indices": picks, "radii": radii}}
        return picks[:k], None if radii is None else radii[:k], extra
    if settings.mode == "one_time" and t < settings.rounds:
        first = rd.read_selection(0) or {}
        one_time = first.get("one_time")  # M_0's picks, recorded in round 0 (checked when read)
        if one_time is None:
            raise RunDirectoryError(
                f"{rd.round_dir(0) / 'selection.json'} has no 'one_time' picks, which round {t} of a one-time "
                f"run takes its records from; the run directory was edited or is corrupt. "
                f"{round_fix(rd.round_dir(0))}"
            )
        picks = np.asarray(one_time["indices"], dtype=np.int64)
        all_radii = one_time.get("radii")
        radii = None if all_radii is None else np.asarray(all_radii, dtype=np.float64)[t * k : (t + 1) * k]
        return picks[t * k : (t + 1) * k], radii, {}
    return np.empty(0, dtype=np.int64), None, {}


def _run_sampler(
    settings: LoopSettings, t: int, pool: np.ndarray, candidates: np.ndarray, signals: RoundSignals
) -> tuple[np.ndarray, np.ndarray | None]:
    """Run the sampler once and check that it returned ``selection_size`` new candidates."""
    n, budget = settings.n_records, settings.selection_size
    ctx = SelectionContext(
        pool_idx=pool,
        candidate_idx=candidates,
        rng=round_rng(settings.seed, t),
        round=t,
        embeddings=signals.embeddings if settings.requirements.embeddings else None,
        scores=dict(signals.scores),
        n_records=n,
        labels=signals.labels,
        lengths=signals.lengths,
    )
    selection = run_sampler(settings.sampler, ctx, budget)
    picks = check_index_array(selection.indices, n, name=f"sampler output (round {t})")
    in_pool = np.isin(picks, pool)
    if picks.size != budget or in_pool.any():
        raise ValidationError(
            f"Sampler {settings.sampler_name!r} returned {picks.size} indices in round {t} "
            f"({int(in_pool.sum())} already in the pool); expected {budget} new candidates."
        )
    return picks, selection.radii
