"""Offline judges: score a model without any LLM endpoint (exact match against references)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

from ..errors import ValidationError
from .protocol import AnswerGenerator, generate_answers

__all__ = ["NORMALIZERS", "ExactMatchJudge"]

logger = logging.getLogger(__name__)

_TRAILING_PUNCT = re.compile(r"[\s.!?;:,]+$")


def _none(s: str) -> str:
    return s


def _strip(s: str) -> str:
    return s.strip()


def _casefold(s: str) -> str:
    return s.strip().casefold()


def _words(s: str) -> str:
    return _TRAILING_PUNCT.sub("", " ".join(s.split()).casefold())


#: Named answer normalisers: ``"none"``, ``"strip"`` (outer whitespace), ``"casefold"`` (strip +
#: casefold), ``"words"`` (casefold, collapse whitespace runs, drop trailing punctuation).
NORMALIZERS: dict[str, Callable[[str], str]] = {"none": _none, "strip": _strip, "casefold": _casefold, "words": _words}

MatchMode = Literal["exact", "prefix", "contains"]


class ExactMatchJudge:
    """Accuracy of a model's answers against reference answers, per task family too.

    Satisfies the loop's judge protocol: ``judge(model, round) -> {"accuracy": %,
    "accuracy/<group>": %, ...}``.

    Parameters
    ----------
    prompts : sequence of str, length n
        The test prompts given to the generator.
    references : sequence of str, length n
        The expected answers.
    generate : callable
        ``generate(model, prompts: list[str]) -> list[str]``, one answer per prompt.
    groups : sequence of str, length n, optional
        Group label of each prompt (e.g. task family); adds ``"<name>/<group>"`` keys.
    normalize : str or callable, default "casefold"
        Applied to answers and references before comparing: a name from :data:`NORMALIZERS`
        or a function ``str -> str``.
    match : {"exact", "prefix", "contains"}, default "exact"
        ``"exact"``: normalised answer equals the normalised reference; ``"prefix"``: the answer
        starts with the reference (for generators that keep talking after the answer);
        ``"contains"``: the reference occurs anywhere in the answer.
    name : str, default "accuracy"
        The metric name (key prefix).
    prompt_format : callable, optional
        Applied to each prompt before generation.

    Attributes
    ----------
    last_answers : list of str
        The raw answers of the latest call.
    last_correct : list of bool
        Per-prompt correctness of the latest call.
    """

    def __init__(
        self,
        prompts: Sequence[str],
        references: Sequence[str],
        generate: AnswerGenerator,
        *,
        groups: Sequence[str] | None = None,
        normalize: str | Callable[[str], str] = "casefold",
        match: MatchMode = "exact",
        name: str = "accuracy",
        prompt_format: Callable[[str], str] | None = None,
    ) -> None:
        self.prompts = list(prompts)
        self.references = list(references)
        if not self.prompts:
            raise ValidationError("ExactMatchJudge needs at least one prompt; got none")
        if len(self.references) != len(self.prompts):
            raise ValidationError(
                f"ExactMatchJudge: {len(self.prompts)} prompts but {len(self.references)} references; give one "
                "reference answer per prompt"
            )
        self.groups = None if groups is None else [str(g) for g in groups]
        if self.groups is not None and len(self.groups) != len(self.prompts):
            raise ValidationError(f"ExactMatchJudge: {len(self.prompts)} prompts but {len(self.groups)} group labels")
        if isinstance(normalize, str):
            if normalize not in NORMALIZERS:
                raise ValidationError(f"unknown normalize={normalize!r}; choose from {sorted(NORMALIZERS)} or pass a function")
            self._normalize = NORMALIZERS[normalize]
        elif callable(normalize):
            self._normalize = normalize
        else:
            raise ValidationError(f"normalize must be a name or a callable; got {type(normalize).__name__}")
        if match not in ("exact", "prefix", "contains"):
            raise ValidationError(f"match must be 'exact', 'prefix' or 'contains'; got {match!r}")
        if not callable(generate):
            raise ValidationError(f"generate must be callable generate(model, prompts) -> list[str]; got {generate!r}")
        self.generate = generate
        self.match = match
        self.name = name
        self.prompt_format = prompt_format
        self.last_answers: list[str] = []
        self.last_correct: list[bool] = []

    def _correct(self, answer: str, reference: str) -> bool:
        a, r = self._normalize(answer), self._normalize(reference)
        if self.match == "exact":
            return a == r
        if self.match == "prefix":
            return a.startswith(r)
        return r in a

    def score(self, answers: Sequence[str]) -> dict[str, float]:
        """Accuracy in percent of given answers (aligned with the prompts), overall and per group."""
        if len(answers) != len(self.prompts):
            raise ValidationError(f"got {len(answers)} answers for {len(self.prompts)} prompts")
        correct = [self._correct(a, r) for a, r in zip(answers, self.references)]
        self.last_answers, self.last_correct = list(answers), correct
        out = {self.name: 100.0 * sum(correct) / len(correct)}
        if self.groups is not None:
            for group in sorted(set(self.groups)):
                hits = [c for c, g in zip(correct, self.groups) if g == group]
                out[f"{self.name}/{group}"] = 100.0 * sum(hits) / len(hits)
        return out

    def __call__(self, model: Any, round: int) -> dict[str, float]:
        """Generate answers with ``model`` and return ``{"accuracy": %, "accuracy/<group>": %, ...}``."""
        answers = generate_answers(self.generate, model, self.prompts, prompt_format=self.prompt_format)
        out = self.score(answers)
        logger.info("round %d: %s = %.2f%%", round, self.name, out[self.name])
        return out

    def get_config(self) -> dict[str, Any]:
        """Settings for run records: sizes, groups, normaliser and match mode."""
        norm = next((k for k, f in NORMALIZERS.items() if f is self._normalize), None)
        return {
            "name": self.name,
            "n_prompts": len(self.prompts),
            "groups": None if self.groups is None else sorted(set(self.groups)),
            "normalize": norm or getattr(self._normalize, "__qualname__", repr(self._normalize)),
            "match": self.match,
        }

    def __repr__(self) -> str:
        return (
            f"ExactMatchJudge(n_prompts={len(self.prompts)}, groups={None if self.groups is None else len(set(self.groups))}, "
            f"match={self.match!r}, name={self.name!r})"
        )
