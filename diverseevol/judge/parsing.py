"""Reading the two scores from a pairwise judge reply."""

from __future__ import annotations

import re

__all__ = ["parse_scores"]

_NUM = r"(\d+(?:\.\d+)?)"
_OUT_OF_TEN = r"(?:\s*(?:/|out\s+of)\s*10(?:\.0+)?)?"
# "Assistant 1: 8", "Assistant 1's score: 8/10", "Assistant 1 - 8"
_LABELED = {
    i: re.compile(
        rf"assistant\s*{i}\s*(?:'s)?\s*(?:score|rating)?\s*[:=\-]?\s*(?:score|rating)?\s*[:=]?\s*{_NUM}{_OUT_OF_TEN}",
        re.IGNORECASE,
    )
    for i in (1, 2)
}
_NUMBER = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)(?!\w|\.\d)")
_DENOMINATOR = re.compile(r"\s*(?:/|out\s+of)\s*10(?:\.0+)?(?!\w|\.\d)", re.IGNORECASE)
_ASSISTANT_LABEL = re.compile(r"assistant\s*[12]\b\s*(?:'s)?", re.IGNORECASE)
_MARKUP = re.compile(r"[*_`#>]+")
# Words that may surround the two numbers on a score line without making it ambiguous.
_ALLOWED_WORDS = {"score", "scores", "rating", "ratings", "and", "vs", "versus", "points", "overall"}
_WORD = re.compile(r"[A-Za-z]+")


def _non_empty_lines(text: str) -> list[str]:
    return [line for line in (_MARKUP.sub("", raw).strip() for raw in text.splitlines()) if line]


def _labeled(lines: list[str]) -> tuple[float, float] | None:
    """Scores written as "Assistant 1: 8 ... Assistant 2: 9" on the first line or the first two."""
    first = lines[0]
    m1, m2 = _LABELED[1].search(first), _LABELED[2].search(first)
    if m1 and m2:
        return float(m1.group(1)), float(m2.group(1))
    if m1 and len(lines) > 1 and _LABELED[1].match(first) and _LABELED[2].match(lines[1]):
        m2 = _LABELED[2].match(lines[1])
        return float(m1.group(1)), float(m2.group(1))  # type: ignore[union-attr]
    return None


def _bare(line: str) -> tuple[float, float] | None:
    """Exactly two numbers on the line, with nothing but punctuation and a few label words around."""
    line = _DENOMINATOR.sub("", line)
    numbers = _NUMBER.findall(line)
    if len(numbers) != 2:
        return None
    rest = _NUMBER.sub(" ", line)
    if any(word.lower() not in _ALLOWED_WORDS for word in _WORD.findall(rest)):
        return None
    return float(numbers[0]), float(numbers[1])


def parse_scores(reply: str | None, *, low: float = 0.0, high: float = 10.0) -> tuple[float, float] | None:
    """Return the scores of Assistant 1 and Assistant 2 from a judge reply, or None.

    The paper's template asks for "a single line containing only two values ... separated by a
    space", then an explanation. The first non-empty line is read; it may be ``"8 9"``,
    ``"8.5 9"``, ``"8, 9"``, ``"(8, 9)"``, ``"**8 9**"``, ``"Scores: 8/10 9/10"`` or
    ``"Assistant 1: 8, Assistant 2: 9"`` (the labeled form may also span the first two lines:
    ``"Assistant 1: 8"`` then ``"Assistant 2: 9"``). Anything else (no numbers, one number, three
    or more numbers, other words around the numbers, a score outside ``[low, high]``) gives None:
    such replies are counted as invalid by the callers, never guessed.

    Parameters
    ----------
    reply : str or None
        The judge's raw reply (``None`` or ``""`` for an empty reply).
    low, high : float, optional
        Accepted score range, inclusive (the template's scale is 1 to 10; 0 is tolerated).

    Returns
    -------
    tuple of (float, float) or None
        ``(score_assistant_1, score_assistant_2)``, or None when the reply is unparseable.

    Examples
    --------
    >>> parse_scores("8 9\\nAssistant 1 was concise, ...")
    (8.0, 9.0)
    >>> parse_scores("Assistant 1: 7.5/10, Assistant 2: 9/10")
    (7.5, 9.0)
    >>> parse_scores("I cannot compare these answers.") is None
    True
    """
    if not isinstance(reply, str):
        return None
    lines = _non_empty_lines(reply)
    if not lines:
        return None
    scores = _labeled(lines) or _bare(_ASSISTANT_LABEL.sub(" ", lines[0]) if not _LABELED[1].search(lines[0]) else "")
    if scores is None:
        return None
    if not all(low <= s <= high for s in scores):
        return None
    return scores
