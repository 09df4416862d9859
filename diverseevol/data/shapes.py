"""Record shapes: raw mappings -> :class:`InstructionRecord` (Alpaca, Dolly, ShareGPT, OpenAI messages)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._files import parse_json
from ..errors import DataFormatError, ValidationError
from .records import InstructionRecord, Turn

FIELD_SETS: dict[str, dict[str, Any]] = {
    "alpaca": {"instruction": "instruction", "input": "input", "output": "output", "meta": ()},
    "dolly": {"instruction": "instruction", "input": "context", "output": "response", "meta": ("category",)},
}

#: File formats ``format=`` may name.
FILE_FORMATS: tuple[str, ...] = ("json", "jsonl", "parquet")
#: Record shapes ``format=`` may name.
RECORD_FORMATS: tuple[str, ...] = ("alpaca", "dolly", "sharegpt", "openai")


_ROLE_ALIASES: dict[str, str] = {
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

#: LLaMA-Factory's ``columns`` keys for the Alpaca family -> InstructionRecord attributes.
_LF_ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output",
                      "system": "system", "history": "history"}
_LF_CHAT_COLUMNS = ("messages", "system", "tools")
_LF_TAGS = ("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag",
            "system_tag")


@dataclass(frozen=True)
class _SpecArgs:
    """What the caller said about the record shape."""

    format: str | None
    fields: str | Mapping[str, str | None] | None
    columns: Mapping[str, str | None] | None
    tags: Mapping[str, str] | None
    meta_fields: Sequence[str] | None


@dataclass(frozen=True)
class _AlpacaSpec:
    format: str
    instruction: str
    input: str | None
    output: str
    system: str | None
    history: str | None
    meta: tuple[str, ...]


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


def _resolve_spec(first: Mapping[str, Any], where: str, args: _SpecArgs) -> _AlpacaSpec | _ChatSpec:
    fmt, columns = args.format, dict(args.columns or {})
    chat_column = columns.get("messages")
    if fmt in ("sharegpt", "openai") or chat_column or (fmt is None and args.fields is None and (
            _chat_column(first) is not None)):
        return _chat_spec(first, where, fmt, columns, args.tags, args.meta_fields)
    if args.tags:
        raise ValidationError("tags= applies to chat records (ShareGPT / OpenAI messages) only.")
    fields = args.fields
    if columns:
        fields = {attr: columns.get(lf, attr) for lf, attr in _LF_ALPACA_COLUMNS.items()}
        fields["input"] = columns.get("query", "input")
    elif fmt in FIELD_SETS and fields is None:
        fields = fmt
    return _alpaca_spec(first, where, fields, args.meta_fields)


def _chat_column(first: Mapping[str, Any]) -> str | None:
    for key in ("messages", "conversations"):
        if key in first and _is_list_like(first[key]):
            return key
    return None


def _is_list_like(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or (hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1)


def _chat_spec(
    first: Mapping[str, Any], where: str, fmt: str | None, columns: Mapping[str, str | None],
    tags: Mapping[str, str] | None, meta_fields: Sequence[str] | None,
) -> _ChatSpec:
    tags = dict(tags or {})
    column = columns.get("messages") or _chat_column(first) or ("conversations" if fmt == "sharegpt" else "messages")
    if column not in first:
        raise DataFormatError(
            f"{where}: no {column!r} column of chat turns (record keys: {sorted(map(str, first))}). Name it with "
            f"columns={{'messages': '<column>'}}."
        )
    turns = _as_list(first[column])
    probe = turns[0] if turns and isinstance(turns[0], Mapping) else {}
    if fmt is None:
        fmt = "openai" if ("role" in probe or tags.get("role_tag") == "role") else "sharegpt"
    default_role, default_content = ("role", "content") if fmt == "openai" else ("from", "value")
    if fmt == "sharegpt" and "role" in probe and "from" not in probe and "role_tag" not in tags:
        default_role, default_content = "role", "content"  # ShareGPT dumps that use OpenAI's tag names
    roles = dict(_ROLE_ALIASES)
    for tag, role in (("user_tag", "user"), ("assistant_tag", "assistant"), ("observation_tag", "tool"),
                      ("function_tag", "tool_call"), ("system_tag", "system")):
        if tag in tags:
            roles[str(tags[tag])] = role
    system = columns.get("system", "system")
    tools = columns.get("tools", "tools")
    return _ChatSpec(
        format=fmt, messages=column, system=system, tools=tools,
        role_tag=str(tags.get("role_tag", default_role)), content_tag=str(tags.get("content_tag", default_content)),
        roles=roles, meta=tuple(meta_fields or ()),
    )


def _alpaca_spec(
    first: Mapping[str, Any], where: str, fields: str | Mapping[str, str | None] | None,
    meta_fields: Sequence[str] | None,
) -> _AlpacaSpec:
    ins, inp, out, meta, fmt = _resolve_fields(first, where, fields)
    system, history = "system", "history"  # optional columns, read when present
    if isinstance(fields, Mapping):
        system, history = fields.get("system"), fields.get("history")
    return _AlpacaSpec(fmt, ins, inp, out, system, history, tuple(meta if meta_fields is None else meta_fields))


def _resolve_fields(
    first: Mapping[str, Any], where: str, fields: str | Mapping[str, str | None] | None
) -> tuple[str, str | None, str, tuple[str, ...], str]:
    if isinstance(fields, str):
        if fields not in FIELD_SETS:
            raise ValidationError(
                f"fields must be one of {sorted(FIELD_SETS)} or a mapping; got {fields!r}. For chat records pass "
                f"format='sharegpt' or format='openai'."
            )
        spec = FIELD_SETS[fields]
        return spec["instruction"], spec["input"], spec["output"], tuple(spec["meta"]), fields
    if fields is not None:
        unknown = set(fields) - {"instruction", "input", "output", "system", "history"}
        if unknown or "instruction" not in fields or "output" not in fields:
            raise ValidationError(
                f"fields must map 'instruction', 'output' and optionally 'input', 'system', 'history' to source "
                f"field names; got {dict(fields)!r}. Example: "
                f"fields={{'instruction': 'question', 'input': None, 'output': 'answer'}}."
            )
        return str(fields["instruction"]), fields.get("input"), str(fields["output"]), (), "alpaca"
    keys = set(first)
    if {"instruction", "output"} <= keys:
        return "instruction", "input", "output", (), "alpaca"
    if {"instruction", "response"} <= keys:
        return "instruction", "context", "response", ("category",), "dolly"
    raise DataFormatError(
        f"{where}: cannot detect the field names from the keys {sorted(keys)}. Known shapes: Alpaca "
        f"(instruction, input, output), Dolly (instruction, context, response), ShareGPT (conversations of "
        f"{{from, value}}) and OpenAI messages (messages of {{role, content}}). Map yours with e.g. "
        f"fields={{'instruction': 'prompt', 'input': None, 'output': 'completion'}} or "
        f"columns={{'messages': 'dialogue'}}."
    )


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(rec: Mapping[str, Any], key: str, where: str, *, required: bool) -> str:
    if key not in rec or _is_missing(rec[key]):
        if not required:
            return ""
        state = "is null" if key in rec else "is missing"
        raise DataFormatError(
            f"{where}: the field {key!r} {state} (record keys: {sorted(map(str, rec))}). Every record needs a "
            f"string {key!r}; map other field names with fields=."
        )
    value = rec[key]
    if not isinstance(value, str):
        raise DataFormatError(
            f"{where}: the field {key!r} must be a string; got {type(value).__name__} ({_short(value)})."
        )
    return value


def _short(value: Any, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def _as_list(value: Any) -> list[Any]:
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()
    return list(value) if isinstance(value, (list, tuple)) else value


def _alpaca_record(rec: Mapping[str, Any], where: str, spec: _AlpacaSpec) -> InstructionRecord:
    instruction = _text(rec, spec.instruction, where, required=True)
    inp = _text(rec, spec.input, where, required=False) if spec.input else ""
    output = _text(rec, spec.output, where, required=True)
    system = _text(rec, spec.system, where, required=False) if spec.system else ""
    history: tuple[tuple[str, str], ...] = ()
    if spec.history and not _is_missing(rec.get(spec.history)):
        history = _history(rec[spec.history], where, spec.history)
    meta = {m: rec[m] for m in spec.meta if m in rec and not _is_missing(rec[m])} or None
    return InstructionRecord(instruction, inp, output, meta, system=system, history=history,
                             format=spec.format, original=rec)


def _history(value: Any, where: str, key: str) -> tuple[tuple[str, str], ...]:
    pairs = _as_list(value)
    if not isinstance(pairs, list):
        raise DataFormatError(f"{where}: {key!r} must be a list of [instruction, response] pairs; "
                              f"got {type(value).__name__}.")
    out = []
    for j, pair in enumerate(pairs):
        pair = _as_list(pair)
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise DataFormatError(
                f"{where}: {key}[{j}] must be a pair of strings [instruction, response]; got {_short(pair)}."
            )
        out.append((pair[0], pair[1]))
    return tuple(out)


def _content_text(value: Any, where: str, role: str) -> str:
    if _is_missing(value):
        return ""
    if isinstance(value, str):
        return value
    parts = _as_list(value)
    if isinstance(parts, list) and all(isinstance(p, (Mapping, str)) for p in parts):
        texts = []
        for p in parts:
            if isinstance(p, str):
                texts.append(p)
            elif p.get("type", "text") == "text" and isinstance(p.get("text"), str):
                texts.append(p["text"])
        return "\n".join(texts)  # non-text parts (images, audio) stay in the original only
    raise DataFormatError(
        f"{where}: a {role} turn's content must be a string or a list of text parts; got "
        f"{type(value).__name__} ({_short(value)})."
    )


def _openai_tool_calls(value: Any) -> str:
    calls = []
    for call in _as_list(value) if _is_list_like(value) else [value]:
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


def _chat_record(rec: Mapping[str, Any], where: str, spec: _ChatSpec) -> InstructionRecord:
    if spec.messages not in rec or _is_missing(rec[spec.messages]):
        raise DataFormatError(
            f"{where}: the chat column {spec.messages!r} is missing (record keys: {sorted(map(str, rec))})."
        )
    raw_turns = _as_list(rec[spec.messages])
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
    elif not _is_missing(system) and system is not None and not isinstance(system, str):
        raise DataFormatError(f"{where}: the {spec.system!r} column must be a string; got {type(system).__name__}.")
    for j, turn in enumerate(raw_turns):
        at = f"{where}: {spec.messages}[{j}]"
        if not isinstance(turn, Mapping):
            raise DataFormatError(f"{at}: expected a turn object with {spec.role_tag!r} and {spec.content_tag!r}; "
                                  f"got {type(turn).__name__} ({_short(turn)}).")
        source_role = turn.get(spec.role_tag)
        role = spec.roles.get(source_role) if isinstance(source_role, str) else None
        if role is None:
            raise DataFormatError(
                f"{at}: unknown role {source_role!r} under {spec.role_tag!r} (turn keys: {sorted(map(str, turn))}). "
                f"Known roles: {sorted(spec.roles)}; map others with tags={{'user_tag': ..., 'assistant_tag': ..., "
                f"'role_tag': ..., 'content_tag': ...}}."
            )
        if spec.content_tag not in turn and role != "assistant" and role != "tool_call":
            raise DataFormatError(f"{at}: the turn has no {spec.content_tag!r} (turn keys: {sorted(map(str, turn))}).")
        content = _content_text(turn.get(spec.content_tag), at, role)
        if role == "tool_call":
            turns.append(Turn("assistant", "", tool_calls=content))
            continue
        calls = ""
        if role == "assistant":
            raw_calls = turn.get("tool_calls") or turn.get("function_call")
            if raw_calls:
                calls = _openai_tool_calls(raw_calls)
        turns.append(Turn(role, content, tool_calls=calls))
    tools = rec.get(spec.tools) if spec.tools else None
    if _is_missing(tools) or tools == "":
        tools_text = ""
    elif isinstance(tools, str):
        tools_text = tools
    else:
        tools_text = json.dumps(_as_list(tools) if _is_list_like(tools) else tools, ensure_ascii=False)
    users = [t.content for t in turns if t.role == "user"]
    answers = [t for t in turns if t.role == "assistant"]
    output = (answers[-1].content or answers[-1].tool_calls) if answers else ""
    meta = {m: rec[m] for m in spec.meta if m in rec and not _is_missing(rec[m])} or None
    return InstructionRecord(users[0] if users else "", "", output, meta, messages=tuple(turns), tools=tools_text,
                             format=spec.format, original=rec)


def _build_records(rows: Iterable[tuple[str, Any]], label: str, args: _SpecArgs) -> list[InstructionRecord]:
    records: list[InstructionRecord] = []
    spec: _AlpacaSpec | _ChatSpec | None = None
    for where, rec in rows:
        if not isinstance(rec, Mapping):
            raise DataFormatError(
                f"{where}: expected a JSON object (mapping) with instruction fields; got {type(rec).__name__} "
                f"({_short(rec)})."
            )
        if spec is None:
            spec = _resolve_spec(rec, where, args)
        if isinstance(spec, _ChatSpec):
            records.append(_chat_record(rec, where, spec))
        else:
            records.append(_alpaca_record(rec, where, spec))
    if not records:
        raise DataFormatError(f"{label}: the dataset is empty; at least one record is needed.")
    return records
