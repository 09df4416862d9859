"""The ShareGPT shape: ``conversations``, a list of ``{"from", "value"}`` turns; optional ``system``, ``tools``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import LF_DEFAULT_TAGS
from .chat import ChatFormat
from .registry import register_record_format

__all__ = ["ShareGPTFormat"]


@register_record_format("sharegpt")
class ShareGPTFormat(ChatFormat):
    """ShareGPT conversations, as LLaMA-Factory reads them (roles ``human``, ``gpt``, ``system``,
    ``function_call``, ``observation``). The chat shape of last resort: a column of turns whose
    first turn has no OpenAI ``role`` key is read as ShareGPT."""

    summary = "ShareGPT: conversations of {from, value} turns (human, gpt, system, function_call, observation)"
    messages_column = "conversations"
    tags = LF_DEFAULT_TAGS

    def probe_matches(self, probe: Any) -> bool:
        return not (isinstance(probe, Mapping) and "role" in probe)
