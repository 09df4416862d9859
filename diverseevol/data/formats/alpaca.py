"""The Alpaca shape: ``instruction``, optional ``input``, ``output``; optional ``system`` and ``history``."""

from __future__ import annotations

from .fields import FieldFormat
from .registry import register_record_format

__all__ = ["AlpacaFormat"]


@register_record_format("alpaca")
class AlpacaFormat(FieldFormat):
    """Stanford Alpaca's records (LLaMA-Factory's default shape)."""

    summary = "Alpaca: instruction, input (optional), output; optional system and history"
    fields = {"instruction": "instruction", "input": "input", "output": "output"}
