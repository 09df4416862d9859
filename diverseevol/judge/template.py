"""The pairwise judge prompt of the DiverseEvol paper (FastChat's GPT-4 review prompt for general questions).

The words are those of ``shared/DESIGN.md`` section 1. The line breaks inside the ``[System]``
paragraph follow FastChat's ``fastchat/eval/table/prompt.jsonl`` (prompt 1, "general"), which is
where the template comes from: one sentence per line.
"""

from __future__ import annotations

import re

from ..errors import ValidationError

__all__ = ["JUDGE_INSTRUCTION", "JUDGE_SYSTEM_PROMPT", "JUDGE_TEMPLATE", "render_judge_prompt"]

#: System message sent with every judge request (FastChat reviewer prompt 1).
JUDGE_SYSTEM_PROMPT = "You are a helpful and precise assistant for checking the quality of the answer."

#: The ``[System]`` paragraph of the template: what the judge is asked to do.
JUDGE_INSTRUCTION = (
    "We would like to request your feedback on the performance of two AI assistants in response to the "
    "user question displayed above.\n"
    "Please rate the helpfulness, relevance, accuracy, level of details of their responses. Each assistant "
    "receives an overall score on a scale of 1 to 10, where a higher score indicates better overall "
    "performance.\n"
    "Please first output a single line containing only two values indicating the scores for Assistant 1 "
    "and 2, respectively. The two scores are separated by a space. In the subsequent line, please provide a "
    "comprehensive explanation of your evaluation, avoiding any potential bias and ensuring that the order "
    "in which the responses were presented does not affect your judgment."
)

#: The user message. Placeholders: ``{question}``, ``{answer_1}``, ``{answer_2}``, ``{prompt}``.
JUDGE_TEMPLATE = (
    "[Question]\n{question}\n\n"
    "[The Start of Assistant 1's Answer]\n{answer_1}\n\n[The End of Assistant 1's Answer]\n\n"
    "[The Start of Assistant 2's Answer]\n{answer_2}\n\n[The End of Assistant 2's Answer]\n\n"
    "[System]\n{prompt}\n\n"
)


_PLACEHOLDER = re.compile(r"\{(question|answer_1|answer_2|prompt)\}")


def render_judge_prompt(
    question: str,
    answer_1: str,
    answer_2: str,
    *,
    template: str = JUDGE_TEMPLATE,
    instruction: str = JUDGE_INSTRUCTION,
) -> str:
    """Fill the pairwise template with one question and two answers.

    Parameters
    ----------
    question : str
        The benchmark question.
    answer_1, answer_2 : str
        The answers shown first ("Assistant 1") and second ("Assistant 2").
    template : str, optional
        A template with the placeholders ``{question}``, ``{answer_1}``, ``{answer_2}`` and
        ``{prompt}``; defaults to the paper's.
    instruction : str, optional
        The text substituted for ``{prompt}``; defaults to the paper's ``[System]`` paragraph.

    Returns
    -------
    str
        The user message sent to the judge.
    """
    missing = [name for name in ("question", "answer_1", "answer_2") if "{" + name + "}" not in template]
    if missing:
        raise ValidationError(
            f"judge template lacks the placeholder(s) {', '.join('{' + m + '}' for m in missing)}; "
            "a template needs {question}, {answer_1} and {answer_2} (and optionally {prompt})"
        )
    values = {"question": question, "answer_1": answer_1, "answer_2": answer_2, "prompt": instruction}
    # One pass, not str.format: answers often contain braces (code, JSON) and must never be
    # read as placeholders.
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
