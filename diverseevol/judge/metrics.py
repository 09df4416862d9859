"""The paper's evaluation metrics: Relative Score, Win-and-Tie Rate and their per-round summary.

Scores are arrays of shape ``(n_questions, n_orders)``: one row per benchmark question, one
column per presentation order (the paper asks the judge twice, with the answers swapped, so
``n_orders = 2``). ``model_scores[q, o]`` and ``reference_scores[q, o]`` are the judge's scores
of the model's answer and of the reference answer for question ``q`` in order ``o``.

Invalid judgments (unparseable replies) are NaN. With ``nan_policy="omit"`` a question with at
least one NaN is dropped from both RS and WTR (its other order is not used either, so each
question that counts has all of its orders); with ``nan_policy="raise"`` (the default) a NaN is
an error. Nothing is ever scored as 0 or as a tie.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import ValidationError

__all__ = ["RoundSummary", "relative_score", "summarize_rounds", "valid_questions", "win_tie_rate"]

NanPolicy = Literal["raise", "omit"]


def _check_pair(model_scores: object, reference_scores: object) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(model_scores, dtype=np.float64)
    r = np.asarray(reference_scores, dtype=np.float64)
    if m.ndim == 1:
        m = m[:, None]
    if r.ndim == 1:
        r = r[:, None]
    if m.ndim != 2 or r.ndim != 2:
        raise ValidationError(
            f"scores must be arrays of shape (n_questions, n_orders); got shapes {np.shape(model_scores)} "
            f"and {np.shape(reference_scores)}"
        )
    if m.shape != r.shape:
        raise ValidationError(
            f"model_scores and reference_scores must have the same shape (n_questions, n_orders); got "
            f"{m.shape} and {r.shape}"
        )
    if m.shape[0] == 0 or m.shape[1] == 0:
        raise ValidationError(f"scores are empty (shape {m.shape}); need at least one question and one order")
    if np.isinf(m).any() or np.isinf(r).any():
        raise ValidationError("scores contain infinite values; judge scores must be finite numbers or NaN")
    return m, r


def valid_questions(model_scores: object, reference_scores: object) -> np.ndarray:
    """Boolean mask, shape ``(n_questions,)``: True where every order of the question has both scores."""
    m, r = _check_pair(model_scores, reference_scores)
    return _complete_rows(m, r)


def _complete_rows(m: np.ndarray, r: np.ndarray) -> np.ndarray:
    return ~(np.isnan(m).any(axis=1) | np.isnan(r).any(axis=1))


def _select(model_scores: object, reference_scores: object, nan_policy: NanPolicy) -> tuple[np.ndarray, np.ndarray]:
    if nan_policy not in ("raise", "omit"):
        raise ValidationError(f"nan_policy must be 'raise' or 'omit'; got {nan_policy!r}")
    m, r = _check_pair(model_scores, reference_scores)
    keep = _complete_rows(m, r)
    if not keep.all():
        if nan_policy == "raise":
            bad = np.flatnonzero(~keep)
            raise ValidationError(
                f"{bad.size} question(s) have NaN (invalid) scores, rows {bad[:10].tolist()}"
                f"{' ...' if bad.size > 10 else ''}; pass nan_policy='omit' to leave them out of the metric"
            )
        m, r = m[keep], r[keep]
    if m.shape[0] == 0:
        raise ValidationError("no question has valid scores in every order; the metric is undefined")
    return m, r


def relative_score(model_scores: object, reference_scores: object, *, nan_policy: NanPolicy = "raise") -> float:
    """Relative Score, in percent: ``100 * sum(model_scores) / sum(reference_scores)``.

    Parameters
    ----------
    model_scores, reference_scores : array-like of shape (n_questions, n_orders)
        Judge scores of the model's and the reference's answers, both orders counted. A 1-D
        array is read as one order per question.
    nan_policy : {"raise", "omit"}, default "raise"
        What to do with NaN (invalid) scores: raise, or leave out every question that has one.

    Returns
    -------
    float
        The Relative Score; 100 means parity with the reference. ``inf`` if the reference
        total is 0 while the model's is positive, NaN if both are 0.
    """
    m, r = _select(model_scores, reference_scores, nan_policy)
    num, den = float(m.sum()), float(r.sum())
    if den == 0.0:
        return float("nan") if num == 0.0 else float("inf")
    return 100.0 * num / den


def win_tie_rate(model_scores: object, reference_scores: object, *, nan_policy: NanPolicy = "raise") -> float:
    """Win-and-Tie Rate, in percent: the share of questions where the model's total is not lower.

    ``100 * #{q : sum_o model_scores[q, o] >= sum_o reference_scores[q, o]} / n_questions``,
    with ``n_questions`` the number of questions counted (after ``nan_policy="omit"``).

    Parameters
    ----------
    model_scores, reference_scores : array-like of shape (n_questions, n_orders)
        As for :func:`relative_score`.
    nan_policy : {"raise", "omit"}, default "raise"
        As for :func:`relative_score`.

    Returns
    -------
    float
        The Win-and-Tie Rate in ``[0, 100]``.
    """
    m, r = _select(model_scores, reference_scores, nan_policy)
    return 100.0 * float(np.mean(m.sum(axis=1) >= r.sum(axis=1)))


@dataclass(frozen=True)
class RoundSummary:
    """The paper's Table 1 columns for one sampler on one benchmark.

    Attributes
    ----------
    peak_rs : float
        The highest Relative Score over the rounds.
    n_best : int
        The pool size at the round with the peak RS (the earliest such round on ties).
    peak_round : int
        The round with the peak RS.
    best_wtr : float
        The highest Win-and-Tie Rate over the rounds (not necessarily at the peak-RS round).
    best_wtr_round : int
        The round with the best WTR (the earliest on ties).
    n_rounds : int
        How many rounds had a finite RS.
    """

    peak_rs: float
    n_best: int
    peak_round: int
    best_wtr: float
    best_wtr_round: int
    n_rounds: int


def summarize_rounds(
    rounds: Sequence[int],
    pool_sizes: Sequence[int],
    rs: Sequence[float],
    wtr: Sequence[float],
) -> RoundSummary:
    """Peak RS, N_best and best WTR over a series of rounds (the paper's Table 1 columns).

    Parameters
    ----------
    rounds : sequence of int, length n_rounds
        Round numbers.
    pool_sizes : sequence of int, length n_rounds
        Training-pool size at each round (the ``N`` of ``N_best``).
    rs, wtr : sequence of float, length n_rounds
        Relative Score and Win-and-Tie Rate of each round's model, in percent. Non-finite
        values (a round without a valid evaluation) are skipped.

    Returns
    -------
    RoundSummary
        Ties go to the earliest round in the order given (the smaller pool when rounds grow it).
    """
    rounds_a = np.asarray(rounds)
    sizes = np.asarray(pool_sizes)
    rs_a = np.asarray(rs, dtype=np.float64)
    wtr_a = np.asarray(wtr, dtype=np.float64)
    n = rounds_a.shape[0] if rounds_a.ndim == 1 else -1
    if n < 0 or sizes.shape != (n,) or rs_a.shape != (n,) or wtr_a.shape != (n,):
        raise ValidationError(
            "rounds, pool_sizes, rs and wtr must be 1-D sequences of one length; got shapes "
            f"{rounds_a.shape}, {sizes.shape}, {rs_a.shape}, {wtr_a.shape}"
        )
    ok_rs = np.isfinite(rs_a)
    ok_wtr = np.isfinite(wtr_a)
    if not ok_rs.any() or not ok_wtr.any():
        raise ValidationError("no round has a finite RS and WTR; nothing to summarize")
    i_rs = int(np.flatnonzero(ok_rs)[np.argmax(rs_a[ok_rs])])
    i_wtr = int(np.flatnonzero(ok_wtr)[np.argmax(wtr_a[ok_wtr])])
    return RoundSummary(
        peak_rs=float(rs_a[i_rs]),
        n_best=int(sizes[i_rs]),
        peak_round=int(rounds_a[i_rs]),
        best_wtr=float(wtr_a[i_wtr]),
        best_wtr_round=int(rounds_a[i_wtr]),
        n_rounds=int(ok_rs.sum()),
    )
