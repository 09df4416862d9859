"""Turn instruction records into text and token ids: the one place prompts are rendered.

Two templates:

* ``"alpaca"``: the Stanford Alpaca prompt of the DiverseEvol paper
  (:data:`~diverseevol.data.ALPACA_PROMPT_INPUT` / ``..._NO_INPUT``), the default for Alpaca and
  Dolly records. An Alpaca ``system`` prompt replaces the template's opening sentence; earlier
  exchanges (``history``, or the turns of a conversation) follow as further
  ``### Instruction: ... ### Response:`` blocks, each response closed by eos.
* ``"chat"``: the tokenizer's own chat template (``tokenizer.apply_chat_template``), the default
  for chat records (ShareGPT, OpenAI messages) and available for any record. Tool calls are
  passed as ``tool_calls`` and tool results as ``tool`` turns when the template knows them,
  otherwise as text; the record's ``tools`` go to the template's ``tools`` argument.

:func:`render_record` returns the text as segments, each marked as assistant text or not; the
loss mask (:func:`encode_records`) covers the assistant segments only, every assistant turn of a
multi-turn record, and nothing else. :func:`record_text` is the plain text of a record for
sentence encoders, which need no template.

The tokenizer is duck-typed (a Hugging Face tokenizer, or anything with ``__call__`` returning
``{"input_ids": [...]}``, ``apply_chat_template``, ``chat_template`` and ``eos_token_id``);
importing this module needs neither torch nor numpy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .data import ALPACA_PROMPT_INPUT, ALPACA_PROMPT_NO_INPUT, InstructionRecord
from .errors import ValidationError

__all__ = [
    "TEMPLATES",
    "Rendered",
    "chat_messages",
    "chat_tools",
    "encode_records",
    "record_text",
    "render_record",
    "resolve_template",
]

logger = logging.getLogger(__name__)

#: Values of ``template=``: ``auto`` picks ``alpaca`` for Alpaca/Dolly records, ``chat`` for chat records.
TEMPLATES: tuple[str, ...] = ("auto", "alpaca", "chat")

_PREAMBLE_INPUT = ALPACA_PROMPT_INPUT.split("### Instruction:")[0]
_PREAMBLE_NO_INPUT = ALPACA_PROMPT_NO_INPUT.split("### Instruction:")[0]


@dataclass(frozen=True)
class Rendered:
    """A record as text, in segments.

    Attributes
    ----------
    segments : tuple of (str, bool)
        The text in order; the flag marks assistant text (the part a model is trained on).
    template : {"alpaca", "chat"}
        The template used. With ``"alpaca"`` every assistant segment is followed by the eos
        token when tokenised; with ``"chat"`` the template's own end-of-turn text is part of the
        assistant segment and the first segment carries the template's special prefix.
    """

    segments: tuple[tuple[str, bool], ...]
    template: str

    @property
    def text(self) -> str:
        """The whole text (without the eos tokens of the Alpaca template)."""
        return "".join(text for text, _ in self.segments)

    @property
    def prompt(self) -> str:
        """The text before the first assistant segment."""
        out = []
        for text, assistant in self.segments:
            if assistant:
                break
            out.append(text)
        return "".join(out)


def _check_template(template: str) -> None:
    if template not in TEMPLATES:
        raise ValidationError(f"template must be one of {list(TEMPLATES)}; got {template!r}.")


def resolve_template(record: InstructionRecord, template: str = "auto") -> str:
    """The template a record is rendered with: ``template`` unless ``"auto"``, then ``chat`` for
    chat records and ``alpaca`` otherwise."""
    _check_template(template)
    if template != "auto":
        return template
    return "chat" if record.is_chat else "alpaca"


# ---- chat messages ---------------------------------------------------------------------------
def _parse_tool_calls(text: str) -> list[dict[str, Any]] | None:
    """Tool calls as the Hugging Face chat format spells them, or None when ``text`` is not JSON calls."""
    try:
        calls = json.loads(text)
    except json.JSONDecodeError:
        return None
    calls = calls if isinstance(calls, list) else [calls]
    out = []
    for call in calls:
        if not isinstance(call, dict) or "name" not in call:
            return None
        args = call.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                pass
        out.append({"type": "function", "function": {"name": call["name"], "arguments": args}})
    return out


def chat_messages(record: InstructionRecord, *, structured_tool_calls: bool = True) -> list[dict[str, Any]]:
    """The record as Hugging Face chat messages (``[{"role", "content"}, ...]``).

    Parameters
    ----------
    record : InstructionRecord
        A chat record, or an Alpaca/Dolly record (see :meth:`InstructionRecord.conversation`).
    structured_tool_calls : bool, default True
        Give an assistant turn's tool calls as ``tool_calls`` (with ``content`` its text, maybe
        ""); False puts the calls' JSON text into ``content`` instead, for templates that do not
        know ``tool_calls``.

    Returns
    -------
    list of dict
        Roles ``system``, ``user``, ``assistant`` and ``tool``.
    """
    messages = []
    for turn in record.conversation():
        msg: dict[str, Any] = {"role": turn.role, "content": turn.content}
        if turn.tool_calls:
            calls = _parse_tool_calls(turn.tool_calls) if structured_tool_calls else None
            if calls is not None:
                msg["tool_calls"] = calls
            else:
                msg["content"] = f"{turn.content}\n{turn.tool_calls}" if turn.content else turn.tool_calls
        messages.append(msg)
    return messages


def chat_tools(record: InstructionRecord) -> list[dict[str, Any]] | None:
    """The record's tool definitions as the ``tools`` argument of ``apply_chat_template``, or None.

    Function schemas given bare (``{"name", "description", "parameters"}``, as in ShareGPT's
    ``tools`` column) are wrapped as ``{"type": "function", "function": schema}``.
    """
    if not record.tools:
        return None
    try:
        tools = json.loads(record.tools)
    except json.JSONDecodeError:
        logger.warning("a record's tools are not JSON; they are left out of the chat template")
        return None
    tools = tools if isinstance(tools, list) else [tools]
    return [t if not isinstance(t, dict) or "type" in t else {"type": "function", "function": t} for t in tools]


def _template_string(tokenizer: Any) -> str:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default") or next(iter(template.values()), None)
    if not template:
        raise ValidationError(
            "The chat template was asked for (template='chat', or a chat record with template='auto') but the "
            "tokenizer has no chat_template; use an instruct model's tokenizer, set tokenizer.chat_template, "
            "or pass template='alpaca'."
        )
    return str(template)


def _apply(tokenizer: Any, messages: list[dict[str, Any]], tools: Any, generation_prompt: bool) -> str:
    kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": generation_prompt}
    if tools is not None:
        kwargs["tools"] = tools
    text = tokenizer.apply_chat_template(messages, **kwargs)
    if not isinstance(text, str):
        raise ValidationError(f"apply_chat_template(tokenize=False) returned {type(text).__name__}, not text.")
    return text


def _render_chat(record: InstructionRecord, tokenizer: Any) -> Rendered:
    template = _template_string(tokenizer)
    messages = chat_messages(record, structured_tool_calls="tool_calls" in template)
    tools = chat_tools(record) if "tools" in template else None
    full = _apply(tokenizer, messages, tools, False)
    segments: list[tuple[str, bool]] = []
    cursor = 0
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        start, end = _assistant_span(tokenizer, messages, tools, i, full, cursor)
        if start < cursor:  # template did not render this turn where expected: no mask for it
            continue
        segments += [(full[cursor:start], False), (full[start:end], True)]
        cursor = end
    segments.append((full[cursor:], False))
    return Rendered(tuple((t, a) for t, a in segments if t), "chat")


def _assistant_span(
    tokenizer: Any, messages: list[dict[str, Any]], tools: Any, i: int, full: str, cursor: int
) -> tuple[int, int]:
    """Character span of assistant message ``i`` in ``full``, its end-of-turn text included.

    Rendered prefixes give the span when the template renders a conversation's beginning the
    same whatever follows (most templates); otherwise the message's text is searched for.
    """
    before = _apply(tokenizer, messages[:i], tools, True) if i else ""
    through = _apply(tokenizer, messages[: i + 1], tools, False)
    if full.startswith(through) and through.startswith(before) and len(before) >= cursor:
        return len(before), len(through)
    content = messages[i]["content"] or ""
    at = full.find(content, cursor) if content else -1
    if at < 0:
        logger.warning("the chat template does not render assistant turn %d as text of its own; it gets no loss", i)
        return -1, -1
    return at, at + len(content)


def _alpaca_exchanges(record: InstructionRecord) -> tuple[str, list[tuple[str, str, str | None]]]:
    """(system, [(instruction, input, response or None), ...]) of a record, for the Alpaca template."""
    if not record.is_chat:
        exchanges: list[tuple[str, str, str | None]] = [(q, "", a) for q, a in record.history]
        exchanges.append((record.instruction, record.input, record.output))
        return record.system, exchanges
    system = "\n\n".join(t.content for t in record.messages if t.role == "system" and t.content)
    exchanges = []
    asked: list[str] = []
    answered: list[str] = []
    for turn in record.messages:
        if turn.role == "system":
            continue
        if turn.role == "assistant":
            text = "\n".join(x for x in (turn.content, turn.tool_calls) if x)
            answered.append(text)
            continue
        if answered:
            exchanges.append(("\n\n".join(asked), "", "\n\n".join(answered)))
            asked, answered = [], []
        asked.append(turn.content)
    if asked or answered:
        exchanges.append(("\n\n".join(asked), "", "\n\n".join(answered) if answered else None))
    return system, exchanges


def _render_alpaca(record: InstructionRecord) -> Rendered:
    system, exchanges = _alpaca_exchanges(record)
    if system:
        preamble = f"{system}\n\n"
    else:
        preamble = _PREAMBLE_INPUT if any(inp for _, inp, _ in exchanges) else _PREAMBLE_NO_INPUT
    segments: list[tuple[str, bool]] = []
    for j, (question, inp, answer) in enumerate(exchanges):
        prompt = f"### Instruction:\n{question}\n\n" + (f"### Input:\n{inp}\n\n" if inp else "") + "### Response:"
        segments.append((preamble + prompt if j == 0 else "\n\n" + prompt, False))
        if answer is not None:
            segments.append((answer, True))
    return Rendered(tuple(segments), "alpaca")


def render_record(record: InstructionRecord, tokenizer: Any = None, *, template: str = "auto") -> Rendered:
    """Render one record with the Alpaca template or the tokenizer's chat template.

    Parameters
    ----------
    record : InstructionRecord
    tokenizer : optional
        Needed for the chat template (``apply_chat_template``, ``chat_template``).
    template : {"auto", "alpaca", "chat"}, default "auto"
        ``auto``: ``chat`` for chat records, ``alpaca`` for Alpaca/Dolly records.

    Returns
    -------
    Rendered
        For a single-turn Alpaca record without system prompt, the segments are exactly
        ``(format_prompt(record), False), (record.output, True)``.

    Examples
    --------
    >>> from diverseevol.data import InstructionRecord
    >>> r = render_record(InstructionRecord("Add 2 and 3.", "", "5"))
    >>> r.segments[1], r.text.endswith("### Response:5")
    (('5', True), True)
    """
    if not isinstance(record, InstructionRecord):
        raise ValidationError(
            f"expected a diverseevol.data.InstructionRecord, got {type(record).__name__}; load data with "
            "diverseevol.load_instructions or build InstructionRecord objects."
        )
    if resolve_template(record, template) == "chat":
        if tokenizer is None:
            raise ValidationError("the chat template needs a tokenizer: render_record(record, tokenizer).")
        return _render_chat(record, tokenizer)
    return _render_alpaca(record)


def record_text(record: InstructionRecord) -> str:
    """A record's plain text, no template: its turns' contents (tool calls included) joined by blank lines.

    For an Alpaca/Dolly record: system, history, instruction, input and output, the empty ones
    left out. Used by sentence encoders, which embed text, not prompts.
    """
    if record.is_chat:
        parts = [x for t in record.messages for x in (t.content, t.tool_calls) if x]
    else:
        parts = [record.system, *(x for pair in record.history for x in pair), record.instruction, record.input,
                 record.output]
    return "\n\n".join(p for p in parts if p)


# ---- token ids -------------------------------------------------------------------------------
def encode_records(
    tokenizer: Any,
    records: Sequence[InstructionRecord],
    *,
    template: str = "auto",
    max_length: int | None = None,
    add_eos: bool = True,
) -> tuple[list[list[int]], list[list[bool]]]:
    """Token ids of rendered records and their assistant (loss) masks.

    Each segment of :func:`render_record` is tokenised on its own, so the boundary between
    prompt and assistant text is exact (as in the Stanford Alpaca training code). Alpaca: the
    first segment gets the tokenizer's special prefix (``add_special_tokens=True``, e.g. bos),
    every assistant segment is followed by eos when ``add_eos``. Chat: no special tokens are
    added (the template writes them) and no eos (the template ends each turn).

    Parameters
    ----------
    tokenizer : Hugging Face tokenizer (duck-typed)
    records : sequence of InstructionRecord, length N
    template : {"auto", "alpaca", "chat"}, default "auto"
    max_length : int, optional
        Cut each sequence (and its mask) to its first ``max_length`` tokens.
    add_eos : bool, default True

    Returns
    -------
    input_ids : list of list of int, length N
        Row ``i`` is ``records[i]``.
    masks : list of list of bool, length N
        ``masks[i][p]`` is True when token ``p`` of record ``i`` is assistant text (or its eos).
    """
    _check_template(template)
    rendered = [render_record(r, tokenizer, template=template) for r in records]
    eos = getattr(tokenizer, "eos_token_id", None)
    if add_eos and eos is None and any(r.template == "alpaca" for r in rendered):
        raise ValidationError("The tokenizer has no eos token; pass add_eos=False or set tokenizer.eos_token.")
    firsts: list[str] = []
    rest: list[str] = []
    for r in rendered:
        (firsts if r.template == "alpaca" else rest).append(r.segments[0][0] if r.segments else "")
        rest.extend(text for text, _ in r.segments[1:])
    # verbose=False: sequences longer than model_max_length are cut here, not by the tokenizer
    first_ids = iter(tokenizer(firsts, add_special_tokens=True, verbose=False)["input_ids"]) if firsts else iter(())
    rest_ids = iter(tokenizer(rest, add_special_tokens=False, verbose=False)["input_ids"]) if rest else iter(())
    all_ids: list[list[int]] = []
    all_masks: list[list[bool]] = []
    for r in rendered:
        ids: list[int] = []
        mask: list[bool] = []
        for j, (_, assistant) in enumerate(r.segments):
            piece = list(next(first_ids) if j == 0 and r.template == "alpaca" else next(rest_ids))
            if assistant and r.template == "alpaca" and add_eos:
                piece.append(eos)
            ids += piece
            mask += [assistant] * len(piece)
        if max_length is not None and len(ids) > max_length:
            ids, mask = ids[:max_length], mask[:max_length]
        all_ids.append(ids)
        all_masks.append(mask)
    return all_ids, all_masks

