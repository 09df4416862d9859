"""Conversations (ShareGPT, OpenAI messages): one base, a shape is its column and tag names.

A :class:`ChatFormat` subclass names the column that holds the turns, the turn's role and
content keys and the role names (LLaMA-Factory's ``tags``). Every chat shape reads the optional
``system`` (a string) and ``tools`` (tool schemas) columns, assistant tool calls (OpenAI
``tool_calls``, ShareGPT ``function_call`` turns) and tool results. ``columns=`` and ``tags=``,
spelled as in LLaMA-Factory's ``dataset_info.json``, rename them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..._files import parse_json
from ...errors import DataFormatError
from ..records import InstructionRecord, Turn
from ._values import as_list, is_list_like, is_missing, meta_of, short
from .base import LF_DEFAULT_TAGS, LF_TAG_KEYS, ReadOptions, RecordFormat, RecordReader, media_columns, present_keys

__all__ = ["CHAT_COLUMNS", "COMMON_ROLES", "ChatFormat"]

#: Columns that hold a conversation in the wild; every chat shape looks for its turns under them.
CHAT_COLUMNS: tuple[str, ...] = ("messages", "conversations")
#: Source role names understood by every chat shape without ``tags=`` -> normalised role
#: (``tool_call``: an assistant turn whose content is the call).
COMMON_ROLES: Mapping[str, str] = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "function_call": "tool_call",
    "tool_call": "tool_call",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
    "ipython": "tool",
}
#: ``tags`` key naming a role -> normalised role.
_TAG_ROLES = {"user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool",
              "function_tag": "tool_call", "system_tag": "system"}
#: Content part types that carry text -> the key of their text (OpenAI chat and Responses API parts).
_TEXT_PARTS = {"text": "text", "input_text": "text", "output_text": "text", "refusal": "refusal"}
#: (role key, content key) pairs of turns in the wild, tried when the shape's own are absent.
_TAG_PAIRS = (("from", "value"), ("role", "content"))


@dataclass(frozen=True)
class _ChatSpec:
    format: str
    messages: str
    system: str | None
    tools: str | None
    role_tag: str
    content_tag: str
    roles: Mapping[str, str]  # source role name -> user/assistant/system/tool/tool_call
    meta: tuple[str, ...]


class ChatFormat(RecordFormat):
    """Records holding a conversation: a list of turns under one column.

    Attributes
    ----------
    messages_column : str
        The column of turns.
    tags : mapping
        The shape's names, as LLaMA-Factory's ``tags``: ``role_tag``, ``content_tag``,
        ``user_tag``, ``assistant_tag``, ``observation_tag``, ``function_tag``, ``system_tag``.
    extra_roles : mapping
        Further source role names -> normalised role, beyond :data:`COMMON_ROLES`.
    """

    messages_column: ClassVar[str] = "messages"
    tags: ClassVar[Mapping[str, str]] = LF_DEFAULT_TAGS
    extra_roles: ClassVar[Mapping[str, str]] = {}
    lf_formatting = "sharegpt"
    column_keys = ("messages", "system", "tools")
    tag_keys = LF_TAG_KEYS

    @property
    def default_columns(self) -> Mapping[str, str]:  # type: ignore[override]
        return {"messages": self.messages_column, "system": "system", "tools": "tools"}

    def chat_column(self, first: Mapping[str, Any]) -> str | None:
        """The first column of turns ``first`` holds (this shape's, then the common ones)."""
        for key in dict.fromkeys((self.messages_column, *CHAT_COLUMNS)):
            if key in first and is_list_like(first[key]):
                return key
        return None

    def probe_matches(self, probe: Any) -> bool:
        """Whether a dataset's first turn uses this shape's role key."""
        return isinstance(probe, Mapping) and self.tags["role_tag"] in probe

    def detect(self, first: Mapping[str, Any]) -> bool:
        column = self.chat_column(first)
        if column is None:
            return False
        turns = as_list(first[column])
        return self.probe_matches(turns[0] if turns else None)

    def roles(self, tags: Mapping[str, str]) -> dict[str, str]:
        """Source role name -> normalised role: the common names, this shape's, then ``tags``'."""
        return {**COMMON_ROLES, **_tag_roles(self.tags), **self.extra_roles, **_tag_roles(tags)}

    def reader(self, first: Mapping[str, Any], options: ReadOptions, where: str) -> RecordReader:
        tags = dict(options.tags or {})
        columns = options.columns or {}
        column = columns.get("messages") or self.chat_column(first) or self.messages_column
        if column not in first:
            raise DataFormatError(
                f"{where}: no {column!r} column of chat turns (record keys: {sorted(map(str, first))}). Name it with "
                f"columns={{'messages': '<column>'}}."
            )
        turns = as_list(first[column])
        probe = turns[0] if isinstance(turns, list) and turns and isinstance(turns[0], Mapping) else {}
        role_tag, content_tag = self.tags["role_tag"], self.tags["content_tag"]
        if "role_tag" not in tags and probe and role_tag not in probe:
            role_tag, content_tag = next(((r, c) for r, c in _TAG_PAIRS if r in probe), (role_tag, content_tag))
        spec = _ChatSpec(
            format=self.name, messages=column, system=columns.get("system", "system"),
            tools=columns.get("tools", "tools"), role_tag=str(tags.get("role_tag", role_tag)),
            content_tag=str(tags.get("content_tag", content_tag)), roles=self.roles(tags),
            meta=tuple(options.meta_fields or ()),
        )
        return lambda rec, where: read_chat(rec, where, spec)

    def turn_rows(self, turn: Turn) -> list[dict[str, Any]]:
        """The source turns of one :class:`Turn` in this shape's names (a call is its own turn)."""
        tag = {"user": "user_tag", "assistant": "assistant_tag", "tool": "observation_tag", "system": "system_tag"}
        role, content = self.tags["role_tag"], self.tags["content_tag"]
        rows = []
        if turn.content or not turn.tool_calls:
            rows.append({role: self.tags[tag[turn.role]], content: turn.content})
        if turn.tool_calls:
            rows.append({role: self.tags["function_tag"], content: turn.tool_calls})
        return rows

    def export_row(self, record: InstructionRecord) -> dict[str, Any]:
        row: dict[str, Any] = {self.messages_column: [r for t in record.messages for r in self.turn_rows(t)]}
        if record.tools:
            row["tools"] = record.tools
        return row

    def dataset_info_entry(self, records: Sequence[InstructionRecord]) -> dict[str, Any]:
        """``formatting: sharegpt``, the column of turns and the ``system`` / ``tools`` / media columns
        present, and the tags that differ from LLaMA-Factory's defaults."""
        present = present_keys(records)
        column = next((c for c in dict.fromkeys((self.messages_column, *CHAT_COLUMNS)) if c in present),
                      self.messages_column)
        columns = {"messages": column, **{k: k for k in ("system", "tools") if k in present}, **media_columns(present)}
        entry: dict[str, Any] = {"formatting": self.lf_formatting, "columns": columns}
        tags = {k: v for k, v in self.tags.items() if LF_DEFAULT_TAGS.get(k) != v}
        if tags:
            entry["tags"] = tags
        return entry


def _tag_roles(tags: Mapping[str, str]) -> dict[str, str]:
    return {str(tags[tag]): role for tag, role in _TAG_ROLES.items() if tag in tags}


def _a(word: str) -> str:
    return f"an {word!r}" if word[:1].lower() in "aeio" else f"a {word!r}"


def _content_text(turn: Mapping[str, Any], at: str, tag: str, source_role: str, role: str, has_calls: bool) -> str:
    """A turn's text: a string, or the text parts of a list (OpenAI ``text`` / ``input_text`` /
    ``output_text`` / ``refusal``; media parts stay in the original only). Missing or null text is an
    error, except for an assistant turn that calls tools."""
    if tag not in turn:
        if role == "assistant" and has_calls:
            return ""
        raise DataFormatError(f"{at}: the turn has no {tag!r} (turn keys: {sorted(map(str, turn))}); every turn "
                              f"needs its text{' (a function_call turn: the call as JSON text)' * (role == 'tool_call')}.")
    value = turn[tag]
    if is_missing(value):
        if role == "assistant" and has_calls:
            return ""
        nan = " (NaN)" if value is not None else ""
        calls = " and the turn has no tool calls" if role == "assistant" else ""
        raise DataFormatError(
            f"{at}: the {tag!r} of {_a(source_role)} turn is null{nan}{calls}; every turn needs its text (a string "
            f"or a list of text parts). Fix the record or drop it from the data."
        )
    if isinstance(value, str):
        return value
    parts = as_list(value)
    if not isinstance(parts, list):
        raise DataFormatError(
            f"{at}: {_a(source_role)} turn's content must be a string or a list of text parts; got "
            f"{type(value).__name__} ({short(value)})."
        )
    if not parts:
        raise DataFormatError(f"{at}: the {tag!r} holds no parts; a turn needs its text (a string or text parts).")
    texts = []
    for k, part in enumerate(parts):
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, Mapping):
            raise DataFormatError(f"{at}: {tag}[{k}]: a content part must be an object with a 'type' (or a string); "
                                  f"got {type(part).__name__} ({short(part)}).")
        kind = part.get("type", "text")
        key = _TEXT_PARTS.get(kind) if isinstance(kind, str) else None
        if key is None:
            continue  # an image, audio or file part: kept in the original, no part of the text
        text = part.get(key)
        if not isinstance(text, str):
            raise DataFormatError(f"{at}: {tag}[{k}]: the {key!r} of a text part must be a string; got "
                                  f"{type(text).__name__} ({short(text)}).")
        texts.append(text)
    return "\n".join(texts)


def _calls_of(turn: Mapping[str, Any]) -> Any:
    """An assistant turn's tool calls (OpenAI ``tool_calls``, legacy ``function_call``), or None when it has none."""
    for key in ("tool_calls", "function_call"):
        value = turn.get(key)
        if is_missing(value) or (as_list(value) if is_list_like(value) else value) in ("", [], {}):
            continue
        return value
    return None


def _tool_calls_text(value: Any) -> str:
    calls = []
    for call in as_list(value) if is_list_like(value) else [value]:
        fn = call.get("function", call) if isinstance(call, Mapping) else call
        if isinstance(fn, Mapping):
            args = fn.get("arguments")
            if isinstance(args, str):
                try:
                    args = parse_json(args)
                except json.JSONDecodeError:
                    pass
            calls.append({"name": fn.get("name"), "arguments": args})
        else:
            calls.append(fn)
    return json.dumps(calls, ensure_ascii=False)


def read_chat(rec: Mapping[str, Any], where: str, spec: _ChatSpec) -> InstructionRecord:
    """One chat record -> an InstructionRecord (turns, tools; first user turn and last answer)."""
    if spec.messages not in rec or is_missing(rec[spec.messages]):
        raise DataFormatError(
            f"{where}: the chat column {spec.messages!r} is missing (record keys: {sorted(map(str, rec))})."
        )
    raw_turns = as_list(rec[spec.messages])
    if not isinstance(raw_turns, list):
        raise DataFormatError(
            f"{where}: {spec.messages!r} must be a list of turns; got {type(raw_turns).__name__}."
        )
    if not raw_turns:
        raise DataFormatError(f"{where}: {spec.messages!r} holds no turns; a conversation needs at least one.")
    turns: list[Turn] = []
    system = rec.get(spec.system) if spec.system else None
    if isinstance(system, str) and system:
        turns.append(Turn("system", system))
    elif not is_missing(system) and not isinstance(system, str):
        raise DataFormatError(f"{where}: the {spec.system!r} column must be a string; got {type(system).__name__}.")
    for j, turn in enumerate(raw_turns):
        at = f"{where}: {spec.messages}[{j}]"
        if not isinstance(turn, Mapping):
            raise DataFormatError(f"{at}: expected a turn object with {spec.role_tag!r} and {spec.content_tag!r}; "
                                  f"got {type(turn).__name__} ({short(turn)}).")
        source_role = turn.get(spec.role_tag)
        role = spec.roles.get(source_role) if isinstance(source_role, str) else None
        if role is None:
            raise DataFormatError(
                f"{at}: unknown role {source_role!r} under {spec.role_tag!r} (turn keys: {sorted(map(str, turn))}). "
                f"Known roles: {sorted(spec.roles)}; map others with tags={{'user_tag': ..., 'assistant_tag': ..., "
                f"'role_tag': ..., 'content_tag': ...}}."
            )
        raw_calls = _calls_of(turn) if role == "assistant" else None
        has_calls = raw_calls is not None
        content = _content_text(turn, at, spec.content_tag, source_role, role, has_calls)
        if role == "tool_call":
            turns.append(Turn("assistant", "", tool_calls=content))
            continue
        turns.append(Turn(role, content, tool_calls=_tool_calls_text(raw_calls) if has_calls else ""))
    if not any(t.role == "assistant" for t in turns):
        raise DataFormatError(
            f"{where}: the conversation has no assistant turn (roles: {[t.role for t in turns]}); a training "
            f"record needs a response. Drop such records, or map the assistant's role name with "
            f"tags={{'assistant_tag': ...}}."
        )
    tools = rec.get(spec.tools) if spec.tools else None
    if is_missing(tools):
        tools_text = ""
    elif isinstance(tools, str):
        tools_text = tools
    else:
        tools_text = json.dumps(as_list(tools) if is_list_like(tools) else tools, ensure_ascii=False)
    users = [t.content for t in turns if t.role == "user"]
    answers = [t for t in turns if t.role == "assistant"]
    output = (answers[-1].content or answers[-1].tool_calls) if answers else ""
    return InstructionRecord(users[0] if users else "", "", output, meta_of(rec, spec.meta), messages=tuple(turns),
                             tools=tools_text, format=spec.format, original=rec)
