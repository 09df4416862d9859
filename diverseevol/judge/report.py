"""What judging one set of answers gives: :class:`JudgeReport`, its invalid replies and its metric names."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_write
from .metrics import relative_score, valid_questions, win_tie_rate

__all__ = ["METRIC_NAMES", "ORDERS", "InvalidJudgment", "JudgeReport"]

#: The two presentation orders: order 0 shows the model's answer first (as Assistant 1),
#: order 1 shows the reference answer first.
ORDERS: tuple[str, str] = ("model_first", "reference_first")

#: The metrics of one benchmark, as :meth:`JudgeReport.metrics` names them after ``"<benchmark>/"``:
#: Relative Score, Win-and-Tie Rate, invalid replies, questions counted.
METRIC_NAMES: tuple[str, str, str, str] = ("rs", "wtr", "invalid", "n_valid")


@dataclass(frozen=True)
class InvalidJudgment:
    """A judge reply whose scores could not be read.

    Attributes
    ----------
    question_id : str
        The benchmark question id.
    order : int
        0 when the model's answer was shown first, 1 when the reference's was.
    reply : str
        The raw reply, as received ('' when no usable reply came at all).
    error : str, default ""
        Why no usable reply came (e.g. a malformed body on every attempt); '' for a reply that
        arrived but holds no scores.
    """

    question_id: str
    order: int
    reply: str
    error: str = ""


@dataclass
class JudgeReport:
    """The outcome of judging one set of model answers against reference answers.

    Attributes
    ----------
    benchmark : str
        The benchmark name.
    question_ids : tuple of str, length n_questions
        The question ids, in benchmark order.
    model_scores, reference_scores : ndarray of shape (n_questions, 2)
        Judge scores per question (rows) and order (columns, see :data:`ORDERS`); NaN where
        the reply of that order was invalid.
    replies : list of list of str, shape (n_questions, 2)
        Raw judge replies per question and order.
    invalid : list of InvalidJudgment
        Every unparseable reply; none of them is scored.
    judge_model : str
        The judge model name.
    n_requests : int
        Requests answered by the endpoint for this report (retries not counted).
    n_cached : int
        Judgments taken from the cache instead.

    Notes
    -----
    Questions with an invalid reply in any order are left out of ``rs`` and ``wtr`` (see
    :attr:`excluded_ids`), so the two orders of every counted question are both present.
    """

    benchmark: str
    question_ids: tuple[str, ...]
    model_scores: np.ndarray
    reference_scores: np.ndarray
    replies: list[list[str]]
    invalid: list[InvalidJudgment] = field(default_factory=list)
    judge_model: str = ""
    n_requests: int = 0
    n_cached: int = 0

    @property
    def n_invalid(self) -> int:
        """How many replies (question x order) were unparseable."""
        return len(self.invalid)

    @property
    def valid_mask(self) -> np.ndarray:
        """Boolean array, shape (n_questions,): True where both orders were scored."""
        return valid_questions(self.model_scores, self.reference_scores)

    @property
    def excluded_ids(self) -> list[str]:
        """Ids of the questions left out of RS and WTR because a reply was invalid."""
        return [q for q, ok in zip(self.question_ids, self.valid_mask) if not ok]

    @property
    def n_valid(self) -> int:
        """How many questions count towards RS and WTR."""
        return int(self.valid_mask.sum())

    @property
    def rs(self) -> float:
        """Relative Score in percent over the valid questions (NaN if none is valid)."""
        if self.n_valid == 0:
            return float("nan")
        return relative_score(self.model_scores, self.reference_scores, nan_policy="omit")

    @property
    def wtr(self) -> float:
        """Win-and-Tie Rate in percent over the valid questions (NaN if none is valid)."""
        if self.n_valid == 0:
            return float("nan")
        return win_tie_rate(self.model_scores, self.reference_scores, nan_policy="omit")

    def metrics(self, prefix: str | None = None) -> dict[str, float]:
        """Return ``{"<prefix>/rs", "<prefix>/wtr", "<prefix>/invalid", "<prefix>/n_valid"}`` (:data:`METRIC_NAMES`).

        ``prefix`` defaults to the benchmark name; ``invalid`` counts invalid replies.
        """
        p = self.benchmark if prefix is None else prefix
        values = (self.rs, self.wtr, float(self.n_invalid), float(self.n_valid))
        return {f"{p}/{name}": value for name, value in zip(METRIC_NAMES, values)}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: metrics, per-question scores and replies, the invalid list."""

        def _num(x: float) -> float | None:
            return None if np.isnan(x) else float(x)

        return {
            "benchmark": self.benchmark,
            "judge_model": self.judge_model,
            "rs": _num(self.rs),
            "wtr": _num(self.wtr),
            "n_questions": len(self.question_ids),
            "n_valid": self.n_valid,
            "n_invalid": self.n_invalid,
            "excluded_ids": self.excluded_ids,
            "invalid": [vars(i) for i in self.invalid],
            "questions": [
                {
                    "question_id": qid,
                    "model_scores": [_num(x) for x in self.model_scores[i]],
                    "reference_scores": [_num(x) for x in self.reference_scores[i]],
                    "replies": list(self.replies[i]),
                }
                for i, qid in enumerate(self.question_ids)
            ],
        }

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (atomically: temporary file, then rename)."""
        data = json.dumps(self.to_dict(), ensure_ascii=False, indent=1).encode("utf-8")
        return atomic_write(path, lambda fh: fh.write(data))
