"""Instruction records, the Alpaca prompt template, and loaders for instruction datasets.

Every dataset, whatever its file format or record shape, becomes a list of
:class:`InstructionRecord` whose list position is the record's row index in Z. Every record
keeps the object it was read from (:attr:`InstructionRecord.original`, unchanged, extra columns
such as ``images`` included), so a selected subset can be written back in the user's own shape
(:mod:`diverseevol.export`).

Supported sources (:func:`load_instructions`):

* a path to ``.json`` (a JSON array of objects), ``.jsonl`` / ``.ndjson`` (one object per
  line), each optionally gzip-compressed (``.json.gz``, ``.jsonl.gz``), ``.parquet`` (needs
  pyarrow), or a directory written by ``datasets.Dataset.save_to_disk`` (needs datasets);
* a Python sequence of mappings, or of :class:`InstructionRecord` (returned as is);
* a Hugging Face ``datasets.Dataset`` and a pandas ``DataFrame`` (both optional imports: the
  library never imports them, it only recognises objects of those types).

Record formats (shapes; :mod:`diverseevol.data.formats`, a registry), detected from the first
record or named with ``format=``; the file type is a separate argument, ``file_type=``:

* ``alpaca``: ``instruction``, optional ``input``, ``output``; optional ``system`` (a string)
  and ``history`` (a list of ``[instruction, response]`` pairs before this one);
* ``dolly``: ``instruction``, optional ``context``, ``response``; its ``category`` is kept in
  :attr:`InstructionRecord.meta`;
* ``sharegpt``: ``conversations``, a list of ``{"from", "value"}`` turns with the roles
  ``human``, ``gpt``, ``system``, ``function_call`` and ``observation``; optional ``system`` and
  ``tools`` columns;
* ``openai``: ``messages``, a list of ``{"role", "content"}`` turns (roles ``system``,
  ``user``, ``assistant``, ``tool``), the content a string or a list of text parts; assistant
  ``tool_calls`` are kept; optional ``tools`` column.

Other column names and role tags are mapped with ``columns=`` and ``tags=``, spelled as in
LLaMA-Factory's ``dataset_info.json`` (:func:`load_dataset_info` reads such an entry), or for
the Alpaca family with ``fields=``. A new shape is one module: a
:class:`~diverseevol.data.formats.RecordFormat` registered with
:func:`~diverseevol.data.formats.register_record_format`.

The package: ``records`` (:class:`InstructionRecord`, :class:`Turn`, the fingerprint),
``prompt`` (the Alpaca template), ``files`` (file types), ``memory`` (in-memory sources),
``formats/`` (the record formats and their registry), ``load`` (:func:`load_instructions`),
``dataset_info`` (:func:`load_dataset_info`).

Chat records (ShareGPT, OpenAI) hold their turns in :attr:`InstructionRecord.messages`, each a
:class:`Turn` with a normalised role (``system``, ``user``, ``assistant``, ``tool``);
``instruction`` is the first user turn and ``output`` the last assistant turn, so code written
for single-turn records keeps working. :mod:`diverseevol.render` turns any record into text.
"""

from __future__ import annotations

from typing import Any

from .dataset_info import load_dataset_info
from .files import FILE_TYPES, file_type_names, file_type_summaries
from .formats import (
    RecordFormat,
    get_record_format,
    record_format_names,
    record_format_summaries,
    register_record_format,
    unregister_record_format,
)
from .load import FILE_FORMATS, check_load_options, load_instructions
from .prompt import ALPACA_PROMPT_INPUT, ALPACA_PROMPT_NO_INPUT, format_prompt, format_record
from .records import ROLES, InstructionRecord, Turn, data_fingerprint

__all__ = [
    "ALPACA_PROMPT_INPUT",
    "ALPACA_PROMPT_NO_INPUT",
    "FIELD_SETS",
    "FILE_FORMATS",
    "FILE_TYPES",
    "RECORD_FORMATS",
    "ROLES",
    "InstructionRecord",
    "RecordFormat",
    "Turn",
    "check_load_options",
    "data_fingerprint",
    "file_type_names",
    "file_type_summaries",
    "format_prompt",
    "format_record",
    "get_record_format",
    "load_dataset_info",
    "load_instructions",
    "record_format_names",
    "record_format_summaries",
    "register_record_format",
    "unregister_record_format",
]


def __getattr__(name: str) -> Any:
    """``RECORD_FORMATS`` (the registered record format names, in detection order) and ``FIELD_SETS``
    (``{name: {"instruction", "input", "output", "meta"}}`` of the formats that take ``fields=``),
    read from the registry each time, so formats registered later are included."""
    if name == "RECORD_FORMATS":
        return record_format_names()
    if name == "FIELD_SETS":
        from .formats import FieldFormat, record_formats

        return {n: f.field_set for n, f in record_formats().items() if isinstance(f, FieldFormat)}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
