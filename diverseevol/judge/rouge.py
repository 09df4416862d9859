"""ROUGE-L F1 between a generated answer and its reference (Lin, 2004), numpy-free.

Tokenisation follows the common ``rouge-score`` default without stemming: lowercase, every run
of characters other than ``a-z0-9`` is a separator. F1 is ``2 P R / (P + R)`` with
``P = LCS / |candidate|`` and ``R = LCS / |reference|``; 0 when either side has no token.
"""

from __future__ import annotations

import re

__all__ = ["rouge_l_f1", "rouge_tokens"]

_SEPARATORS = re.compile(r"[^a-z0-9]+")


def rouge_tokens(text: str) -> list[str]:
    """Lowercased alphanumeric tokens of ``text``."""
    return [t for t in _SEPARATORS.split(text.lower()) if t]


def _lcs_length(a: list[str], b: list[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l_f1(candidate: str, reference: str) -> float:
    """ROUGE-L F1 of ``candidate`` against ``reference``, in [0, 1].

    Examples
    --------
    >>> round(rouge_l_f1("the cat sat on the mat", "the cat is on the mat"), 4)
    0.8333
    """
    c, r = rouge_tokens(candidate), rouge_tokens(reference)
    if not c or not r:
        return 0.0
    lcs = _lcs_length(c, r)
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(c), lcs / len(r)
    return 2 * p * rec / (p + rec)
