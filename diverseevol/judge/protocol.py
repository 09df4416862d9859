"""The answer-generator callable judges use, and (re-exported) the loop's :class:`Judge` protocol.

:class:`Judge` is defined once, in :mod:`diverseevol.protocols`, beside the loop's other callables;
it is re-exported here so ``from diverseevol.judge import Judge`` keeps working.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import JudgeError
from ..protocols import Judge

__all__ = ["AnswerGenerator", "Judge", "generate_answers"]

#: ``generate(model, prompts) -> answers``: one answer string per prompt, same order.
AnswerGenerator = Callable[[Any, list[str]], Sequence[str]]


def generate_answers(
    generate: AnswerGenerator,
    model: Any,
    prompts: Sequence[str],
    *,
    prompt_format: Callable[[str], str] | None = None,
) -> list[str]:
    """Call ``generate(model, prompts)`` and check that it returned one string per prompt.

    Parameters
    ----------
    generate : callable
        ``generate(model, prompts: list[str]) -> list[str]``.
    model : object
        The model handle the loop's trainer returned.
    prompts : sequence of str
        The questions.
    prompt_format : callable, optional
        Applied to each question first (e.g. :func:`diverseevol.data.format_prompt` when the
        generator expects finished prompts).

    Returns
    -------
    list of str, length len(prompts)
    """
    texts = [prompt_format(p) if prompt_format else p for p in prompts]
    answers = list(generate(model, texts))
    if len(answers) != len(texts):
        raise JudgeError(
            f"the answer generator returned {len(answers)} answers for {len(texts)} prompts; it must return one "
            "string per prompt, in order"
        )
    bad = [i for i, a in enumerate(answers) if not isinstance(a, str)]
    if bad:
        raise JudgeError(
            f"the answer generator returned non-string answers at positions {bad[:10]} "
            f"(e.g. {type(answers[bad[0]]).__name__}); it must return str"
        )
    return answers
