"""The OpenAI messages shape: ``messages``, a list of ``{"role", "content"}`` turns; assistant ``tool_calls``."""

from __future__ import annotations

from typing import Any

from ..._files import parse_json
from ..records import Turn
from .chat import ChatFormat
from .registry import register_record_format

__all__ = ["OpenAIMessagesFormat"]


@register_record_format("openai")
class OpenAIMessagesFormat(ChatFormat):
    """OpenAI chat messages (roles ``system``, ``user``, ``assistant``, ``tool``); the content a
    string or a list of text parts; assistant ``tool_calls`` kept; optional ``tools`` column."""

    summary = "OpenAI messages: messages of {role, content} turns (system, user, assistant, tool)"
    messages_column = "messages"
    tags = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
            "observation_tag": "tool", "function_tag": "function_call", "system_tag": "system"}
    extra_roles = {"developer": "system"}  # OpenAI's name for system instructions to reasoning models

    def turn_rows(self, turn: Turn) -> list[dict[str, Any]]:
        row: dict[str, Any] = {"role": turn.role, "content": turn.content}
        if turn.tool_calls:
            try:
                calls = parse_json(turn.tool_calls)
            except ValueError:
                calls = turn.tool_calls
            row["tool_calls"] = calls if isinstance(calls, list) else [calls]
        return [row]
