"""The Dolly shape: ``instruction``, optional ``context``, ``response``; ``category`` kept as metadata."""

from __future__ import annotations

from .fields import FieldFormat
from .registry import register_record_format

__all__ = ["DollyFormat"]


@register_record_format("dolly")
class DollyFormat(FieldFormat):
    """databricks-dolly-15k's records."""

    summary = "Dolly: instruction, context (optional), response; category kept in meta"
    fields = {"instruction": "instruction", "input": "context", "output": "response"}
    meta = ("category",)
