"""The Alpaca prompt template (the paper's prompt) and the single-turn view of a record."""

from __future__ import annotations

from .records import InstructionRecord

__all__ = ["ALPACA_PROMPT_INPUT", "ALPACA_PROMPT_NO_INPUT", "format_prompt", "format_record"]

ALPACA_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)


def format_prompt(instruction: str | InstructionRecord, input: str = "") -> str:
    """Return the Alpaca prompt (with or without the input block), ending at ``### Response:``.

    The response text follows the marker directly, as in the Stanford Alpaca training code.
    """
    if isinstance(instruction, InstructionRecord):
        instruction, input = instruction.instruction, instruction.input
    if input:
        return ALPACA_PROMPT_INPUT.format(instruction=instruction, input=input)
    return ALPACA_PROMPT_NO_INPUT.format(instruction=instruction)


def format_record(record: InstructionRecord) -> tuple[str, str]:
    """Return ``(prompt, response)`` for training: the loss covers the response part only.

    Single-turn view (the instruction, input and output); :func:`diverseevol.render.render_record`
    renders whole conversations.
    """
    return format_prompt(record), record.output
