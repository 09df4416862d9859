"""Instruction records (:class:`InstructionRecord`, :class:`Turn`) and the data fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = ["ROLES", "InstructionRecord", "Turn", "data_fingerprint"]

#: The normalised roles of :class:`Turn`.
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Turn:
    """One turn of a conversation.

    Attributes
    ----------
    role : {"system", "user", "assistant", "tool"}
        Normalised role: ShareGPT's ``human`` is ``user``, ``gpt`` and ``function_call`` are
        ``assistant``, ``observation`` is ``tool``.
    content : str
        The text ("" for an assistant turn that only calls tools).
    tool_calls : str
        An assistant turn's tool calls as JSON text (ShareGPT's ``function_call`` value as given;
        OpenAI's ``tool_calls`` as a list of ``{"name", "arguments"}``); "" when there are none.
    """

    role: str
    content: str
    tool_calls: str = ""


@dataclass(frozen=True)
class InstructionRecord:
    """One instruction-tuning example (single-turn Alpaca/Dolly, or a conversation).

    Attributes
    ----------
    instruction : str
        The task (Alpaca ``instruction``, Dolly ``instruction``; a chat record's first user turn).
    input : str
        Optional context (Alpaca ``input``, Dolly ``context``); ``""`` when absent.
    output : str
        The reference response (Alpaca ``output``, Dolly ``response``; a chat record's last
        assistant turn, its tool calls when it has no text).
    meta : Mapping[str, Any] or None
        Extra source fields kept alongside (e.g. Dolly's ``category``). Not part of equality,
        hashing, prompts or the data fingerprint.
    system : str
        An Alpaca record's system prompt (replaces the template's opening sentence); ``""``.
    history : tuple of (str, str)
        An Alpaca record's earlier ``(instruction, response)`` exchanges, oldest first.
    messages : tuple of Turn
        A chat record's turns (its system prompt first when it has one); empty for
        Alpaca/Dolly records.
    tools : str
        A chat record's tool definitions as JSON text (a list of function schemas); ``""``.
    format : str
        The record format it was read with (a name of :func:`~diverseevol.data.formats.record_format_names`;
        ``"records"`` when built in Python). Not part of equality.
    original : Any
        The source object, unchanged (the parsed JSON object, the Parquet/Dataset row as a
        dict); ``None`` for records built in Python. Not part of equality or hashing.
    source_text : str or None
        The record's exact text in the JSON or JSON-lines file it was read from (its line without
        the line break, or its array element's span), which export writes unchanged; ``None`` for
        other sources. Not part of equality or hashing.
    """

    instruction: str
    input: str = ""
    output: str = ""
    meta: Mapping[str, Any] | None = field(default=None, compare=False, hash=False, repr=False)
    system: str = ""
    history: tuple[tuple[str, str], ...] = ()
    messages: tuple[Turn, ...] = ()
    tools: str = ""
    format: str = field(default="records", compare=False)
    original: Any = field(default=None, compare=False, hash=False, repr=False)
    source_text: str | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def is_chat(self) -> bool:
        """Whether the record is a conversation (ShareGPT / OpenAI messages)."""
        return bool(self.messages)

    def conversation(self) -> tuple[Turn, ...]:
        """The record as turns: a chat record's :attr:`messages`; for an Alpaca/Dolly record its
        system prompt, its history, then the instruction (and input, after a newline) as the
        user turn and the output as the assistant turn."""
        if self.messages:
            return self.messages
        turns: list[Turn] = [Turn("system", self.system)] if self.system else []
        for question, answer in self.history:
            turns += [Turn("user", question), Turn("assistant", answer)]
        query = f"{self.instruction}\n{self.input}" if self.input else self.instruction
        return (*turns, Turn("user", query), Turn("assistant", self.output))

    def as_original(self) -> Any:
        """The record in the user's shape: :attr:`original` when loaded from data, else the row its
        record format writes (:meth:`~diverseevol.data.formats.RecordFormat.export_row`; a record
        built in Python: ``{"instruction", "input", "output"}``, or ``{"messages", "tools"}`` for a
        conversation) plus the ``meta`` fields."""
        if self.original is not None:
            return self.original
        from .formats.registry import format_of  # the registry's formats build records: import it late

        out = format_of(self).export_row(self)
        out.update({k: v for k, v in (self.meta or {}).items() if k not in out})
        return out


def _content_key(rec: InstructionRecord) -> tuple[Any, ...]:
    """What identifies a record's text: (instruction, input, output) plus any conversation parts."""
    base = (rec.instruction, rec.input, rec.output)
    if not (rec.system or rec.history or rec.messages or rec.tools):
        return base
    return (*base, rec.system, rec.history, rec.messages, rec.tools)


def data_fingerprint(records: Sequence[InstructionRecord]) -> dict[str, Any]:
    """Return ``{"n_records": N, "sha256": hex}``: a content hash of the records in order.

    The hash covers ``instruction``, ``input`` and ``output`` of every record, in row order
    (so reordering Z changes it), and for records that have them the system prompt, history,
    turns and tools; ``meta``, ``format`` and ``original`` are not covered. Used by the run
    directory to refuse resuming with other data.
    """
    h = hashlib.sha256()
    for rec in records:
        key = _content_key(rec)
        if len(key) > 3:
            key = (*key[:5], [list(p) for p in rec.history],
                   [[t.role, t.content, t.tool_calls] for t in rec.messages], rec.tools)
        h.update(json.dumps(list(key), ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return {"n_records": len(records), "sha256": h.hexdigest()}
