"""Record formats (shapes): one object per shape, looked up by name.

Each shape (Alpaca, Dolly, ShareGPT, OpenAI messages, and any a user registers) is one
:class:`RecordFormat` with ``detect`` (does a dataset's first record have this shape?),
``reader`` (one raw record -> :class:`~diverseevol.data.InstructionRecord`),
``dataset_info_entry`` (its LLaMA-Factory ``dataset_info.json`` entry) and ``export_row`` (the
columns export writes for a record built in Python). :class:`FieldFormat` and
:class:`ChatFormat` hold the reading logic of the two families; a built-in shape is one small
module that fills in their names. A new shape is one module (+ one line in
``registry._BUILTIN_MODULES`` for a built-in; a user's shape calls :func:`register_record_format`).
"""

from __future__ import annotations

from ._values import is_missing, text_field
from .base import MEDIA_COLUMNS, ReadOptions, RecordFormat, RecordReader
from .chat import ChatFormat
from .fields import FieldFormat
from .registry import (
    format_of,
    get_record_format,
    record_format_names,
    record_format_summaries,
    record_formats,
    register_record_format,
    resolve_record_format,
    unregister_record_format,
)

__all__ = [
    "MEDIA_COLUMNS",
    "ChatFormat",
    "FieldFormat",
    "ReadOptions",
    "RecordFormat",
    "RecordReader",
    "format_of",
    "get_record_format",
    "is_missing",
    "record_format_names",
    "record_format_summaries",
    "record_formats",
    "register_record_format",
    "resolve_record_format",
    "text_field",
    "unregister_record_format",
]
