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

Record shapes (:data:`RECORD_FORMATS`), detected from the first record or named with
``format=``:

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
the Alpaca family with ``fields=``.

Chat records (ShareGPT, OpenAI) hold their turns in :attr:`InstructionRecord.messages`, each a
:class:`Turn` with a normalised role (``system``, ``user``, ``assistant``, ``tool``);
``instruction`` is the first user turn and ``output`` the last assistant turn, so code written
for single-turn records keeps working. :mod:`diverseevol.render` turns any record into text.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import json
import logging
import math
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from ._files import parse_json
from ._optional import require
from .errors import DataFileNotFoundError, DataFormatError, DuplicateRecordsWarning, ValidationError

__all__ = [
    "ALPACA_PROMPT_INPUT",
    "ALPACA_PROMPT_NO_INPUT",
    "FIELD_SETS",
    "FILE_FORMATS",
    "RECORD_FORMATS",
    "ROLES",
    "InstructionRecord",
    "Turn",
    "data_fingerprint",
    "format_prompt",
    "format_record",
    "load_dataset_info",
    "load_instructions",
]

logger = logging.getLogger(__name__)

ALPACA_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)

#: Known field sets: record attribute -> source field name (``None``: the source has no such
#: field), plus the source fields kept as metadata by default.
FIELD_SETS: dict[str, dict[str, Any]] = {
    "alpaca": {"instruction": "instruction", "input": "input", "output": "output", "meta": ()},
    "dolly": {"instruction": "instruction", "input": "context", "output": "response", "meta": ("category",)},
}

#: File formats ``format=`` may name.
FILE_FORMATS: tuple[str, ...] = ("json", "jsonl", "parquet")
#: Record shapes ``format=`` may name.
RECORD_FORMATS: tuple[str, ...] = ("alpaca", "dolly", "sharegpt", "openai")
#: The normalised roles of :class:`Turn`.
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")

#: Source role names understood without ``tags=`` (ShareGPT, OpenAI and common variants).
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
        The record shape it was read from (one of :data:`RECORD_FORMATS`, ``"records"`` when
        built in Python). Not part of equality.
    original : Any
        The source object, unchanged (the parsed JSON object, the Parquet/Dataset row as a
        dict); ``None`` for records built in Python. Not part of equality or hashing.
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
        """The record in the user's shape: :attr:`original` when loaded from data, else a dict
        ``{"instruction", "input", "output"}`` plus the ``meta`` fields (and ``system`` /
        ``history`` when set)."""
        if self.original is not None:
            return self.original
        if self.messages:
            out: dict[str, Any] = {"messages": [_turn_dict(t) for t in self.messages]}
            if self.tools:
                out["tools"] = self.tools
        else:
            out = {"instruction": self.instruction, "input": self.input, "output": self.output}
            if self.system:
                out["system"] = self.system
            if self.history:
                out["history"] = [list(pair) for pair in self.history]
        out.update({k: v for k, v in (self.meta or {}).items() if k not in out})
        return out


def _turn_dict(turn: Turn) -> dict[str, Any]:
    if not turn.tool_calls:
        return {"role": turn.role, "content": turn.content}
    try:
        calls = parse_json(turn.tool_calls)
    except json.JSONDecodeError:
        calls = turn.tool_calls
    calls = calls if isinstance(calls, list) else [calls]
    return {"role": turn.role, "content": turn.content, "tool_calls": calls}


def format_prompt(instruction: str | InstructionRecord, input: str = "") -> str:
    """Return the Alpaca prompt (with or without the input block), ending at ``### Response:``.

    The response text follows the marker directly, as in the Stanford Alpaca training code.
    """
    if isinstance(instruction, InstructionRecord):
        instruction, input = instruction.instruction, instruction.input
    if input:
        return ALPACA_PROMPT_INPUT.format(instruction=instruction, input=input)
    return ALPACA_PROMPT_NO_INPUT.format(instruction=instruction)


def format_record(record: InstructionRecord) -> tuple[str, str]:
    """Return ``(prompt, response)`` for training: the loss covers the response part only.

    Single-turn view (the instruction, input and output); :func:`diverseevol.render.render_record`
    renders whole conversations.
    """
    return format_prompt(record), record.output


# --------------------------------------------------------------------------------------------
# fingerprint
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
def load_instructions(
    source: Any,
    *,
    format: str | None = None,
    fields: str | Mapping[str, str | None] | None = None,
    columns: Mapping[str, str | None] | None = None,
    tags: Mapping[str, str] | None = None,
    meta_fields: Sequence[str] | None = None,
    on_duplicates: str = "warn",
    encoding: str = "utf-8",
) -> list[InstructionRecord]:
    """Load an instruction dataset into a list of :class:`InstructionRecord`.

    Parameters
    ----------
    source : path, sequence of mappings, sequence of InstructionRecord, datasets.Dataset or pandas.DataFrame
        A file path (``.json``, ``.jsonl``, ``.ndjson``, optionally ``.gz``; ``.parquet``), a
        directory saved with ``datasets.Dataset.save_to_disk``, or in-memory records. A sequence
        whose items are all :class:`InstructionRecord` is returned as a list unchanged.
    format : str, optional
        A file format (``"json"``, ``"jsonl"``, ``"parquet"``; inferred from the suffix when
        omitted; a ``.json`` file that holds one object per line is read as JSON lines) or a
        record shape (``"alpaca"``, ``"dolly"``, ``"sharegpt"``, ``"openai"``; detected from
        the first record when omitted).
    fields : {"alpaca", "dolly"} or mapping, optional
        Field names of Alpaca-family records. A mapping gives the source name of each record
        attribute, e.g. ``{"instruction": "question", "input": None, "output": "answer"}``
        (``input``, ``system`` and ``history`` may be ``None`` or left out).
    columns : mapping, optional
        Column names as LLaMA-Factory's ``dataset_info.json`` spells them: ``prompt``, ``query``,
        ``response``, ``system``, ``history`` (Alpaca family) or ``messages``, ``system``,
        ``tools`` (chat), e.g. ``{"messages": "conversations", "tools": "tools"}``.
    tags : mapping, optional
        Chat turn tags as in ``dataset_info.json``: ``role_tag``, ``content_tag``, ``user_tag``,
        ``assistant_tag``, ``observation_tag``, ``function_tag``, ``system_tag``. Defaults: the
        ShareGPT (``from``/``value``) or OpenAI (``role``/``content``) names, with the role
        names ``human``/``user``, ``gpt``/``assistant``, ``system``, ``function_call``,
        ``observation``/``tool`` understood.
    meta_fields : sequence of str, optional
        Source fields kept in :attr:`InstructionRecord.meta`. Default: Dolly's ``category``
        when present, nothing otherwise. Pass ``()`` to keep none. (Every field stays in
        :attr:`InstructionRecord.original` either way.)
    on_duplicates : {"warn", "ignore"}, default "warn"
        Records with identical text are always kept; with ``"warn"`` a
        :class:`~diverseevol.errors.DuplicateRecordsWarning` reports their counts.
    encoding : str, default "utf-8"
        Text encoding of files.

    Returns
    -------
    list of InstructionRecord
        Row ``i`` is record ``i`` of the source (Z's index space).

    Raises
    ------
    DataFormatError
        Naming the file, the line (JSON lines, 1-based) or record (0-based index), the turn, and
        the problem: invalid JSON, a record that is not an object, a missing or non-string field,
        an unknown role, an empty dataset, unknown field names.
    FileNotFoundError
        If a path does not exist.

    Examples
    --------
    >>> from diverseevol import load_instructions
    >>> recs = load_instructions([{"instruction": "Add 2 and 3.", "input": "", "output": "5"}])
    >>> recs[0].output
    '5'
    >>> load_instructions([{"instruction": "Q?", "context": "c", "response": "A", "category": "open_qa"}])[0].meta
    {'category': 'open_qa'}
    >>> chat = load_instructions([{"conversations": [{"from": "human", "value": "Hi"},
    ...                                              {"from": "gpt", "value": "Hello!"}]}])[0]
    >>> [(t.role, t.content) for t in chat.messages], chat.format
    ([('user', 'Hi'), ('assistant', 'Hello!')], 'sharegpt')
    """
    if on_duplicates not in ("warn", "ignore"):
        raise ValidationError(f"on_duplicates must be 'warn' or 'ignore'; got {on_duplicates!r}.")
    if format is not None and format not in FILE_FORMATS + RECORD_FORMATS:
        raise ValidationError(
            f"format must be a file format {list(FILE_FORMATS)}, a record format {list(RECORD_FORMATS)} or None "
            f"(infer both); got {format!r}."
        )
    _check_encoding(encoding)
    if fields is not None and not isinstance(fields, (str, Mapping)):
        raise ValidationError(
            f"fields must be one of {sorted(FIELD_SETS)}, a mapping of 'instruction'/'input'/'output' to source field "
            f"names, or None (detect); got a {type(fields).__name__} ({fields!r}). Example: "
            f"fields={{'instruction': 'question', 'input': None, 'output': 'answer'}}."
        )
    file_format = format if format in FILE_FORMATS else None
    record_format = format if format in RECORD_FORMATS else None
    _check_mapping_keys(columns, (*_LF_ALPACA_COLUMNS, *_LF_CHAT_COLUMNS), "columns")
    _check_mapping_keys(tags, _LF_TAGS, "tags")
    if columns is not None and fields is not None:
        raise ValidationError("pass either fields= or columns= (LLaMA-Factory's names), not both.")

    label: str
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = str(path)
        rows: Iterable[tuple[str, Any]] = _iter_path(path, file_format, encoding)
    else:
        if file_format is not None:
            raise ValidationError(
                f"format={format!r} applies to files only; got an in-memory {type(source).__name__}."
            )
        label, rows = _iter_memory(source)
        if rows is None:  # already InstructionRecord objects
            records = list(source)
            if not records:
                raise DataFormatError(f"{label}: the dataset is empty; at least one record is needed.")
            _report_duplicates(records, label, on_duplicates)
            return records

    spec_args = _SpecArgs(record_format, fields, columns, tags, meta_fields)
    records = _build_records(rows, label, spec_args)
    _report_duplicates(records, label, on_duplicates)
    logger.info("loaded %d instruction records (%s) from %s", len(records), records[0].format, label)
    return records


def load_dataset_info(
    dataset_info: PathLike | Mapping[str, Any], name: str, *, root: PathLike | None = None, **kwargs: Any
) -> list[InstructionRecord]:
    """Load dataset ``name`` as described by a LLaMA-Factory ``dataset_info.json``.

    Parameters
    ----------
    dataset_info : path or mapping
        The ``dataset_info.json`` file, or its parsed content.
    name : str
        The entry to load.
    root : path, optional
        Directory of the entry's ``file_name``; default the directory of ``dataset_info``
        (the current directory for a mapping).
    **kwargs
        Further :func:`load_instructions` arguments (``on_duplicates``, ``encoding``...).

    Returns
    -------
    list of InstructionRecord
        Read with the entry's ``formatting`` (``alpaca`` when absent), ``columns`` and ``tags``.
    """
    if isinstance(dataset_info, Mapping):
        info, base = dataset_info, Path(root or ".")
    else:
        info_path = Path(dataset_info)
        try:
            info = parse_json(info_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataFileNotFoundError(f"No such dataset_info file: {info_path}.") from None
        except (UnicodeError, ValueError) as exc:
            raise DataFormatError(f"{info_path}: not a JSON dataset_info file ({exc}).") from None
        if not isinstance(info, Mapping):
            raise DataFormatError(f"{info_path}: dataset_info must be a JSON object of entries; got {type(info).__name__}.")
        base = Path(root) if root is not None else info_path.parent
    if name not in info:
        raise ValidationError(f"dataset_info has no entry {name!r}; its entries are {sorted(info)}.")
    entry = info[name]
    if "file_name" not in entry:
        raise DataFormatError(
            f"dataset_info entry {name!r} has no 'file_name' (Hub and script datasets are not read here); "
            f"load the data with the datasets library and pass it to load_instructions."
        )
    formatting = entry.get("formatting", "alpaca")
    if formatting not in ("alpaca", "sharegpt", "openai"):
        raise DataFormatError(f"dataset_info entry {name!r}: unknown formatting {formatting!r}.")
    cols = entry.get("columns")
    tags = entry.get("tags")
    if formatting == "sharegpt" and tags and tags.get("role_tag") == "role":
        formatting = "openai"
    return load_instructions(base / entry["file_name"], format=formatting, columns=cols, tags=tags, **kwargs)


def _check_mapping_keys(mapping: Mapping[str, Any] | None, allowed: Sequence[str], name: str) -> None:
    if mapping is None:
        return
    if not isinstance(mapping, Mapping):
        raise ValidationError(f"{name} must be a mapping; got {type(mapping).__name__}.")
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise ValidationError(
            f"{name} has unknown keys {unknown}; the known keys are {list(dict.fromkeys(allowed))} "
            f"(as in LLaMA-Factory's dataset_info.json)."
        )


# ---- sources -> (location, raw record) pairs -------------------------------------------------
def _check_encoding(encoding: Any) -> None:
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise ValidationError(
            f"encoding must name a text codec Python knows (e.g. 'utf-8', 'utf-8-sig', 'latin-1'); got {encoding!r}."
        ) from None


def _open_text(path: Path, encoding: str) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding)
    return open(path, encoding=encoding)


def _infer_format(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".gzip"):
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in (".jsonl", ".ndjson"):
        return "jsonl"
    if last == ".json":
        return "json"
    if last in (".parquet", ".pq"):
        return "parquet"
    return None


def _is_saved_dataset(path: Path) -> bool:
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def _iter_path(path: Path, format: str | None, encoding: str) -> Iterator[tuple[str, Any]]:
    if not path.exists():
        raise DataFileNotFoundError(f"No such data file: {path}. Check the path (relative paths start at {Path.cwd()}).")
    if path.is_dir():
        if _is_saved_dataset(path):
            return _iter_saved_dataset(path)
        raise DataFormatError(
            f"{path}: is a directory but not one written by datasets' save_to_disk (no state.json); pass a "
            f".json, .jsonl or .parquet file."
        )
    fmt = format or _infer_format(path)
    if fmt is None and _has_parquet_magic(path):
        fmt = "parquet"
    if fmt == "parquet":
        return _iter_parquet(path)
    return _iter_file(path, fmt, encoding)


def _has_parquet_magic(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


def _iter_parquet(path: Path) -> Iterator[tuple[str, Any]]:
    pq = require("pyarrow.parquet", feature="reading Parquet files", extra="hf")
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError family
        raise DataFormatError(f"{path}: cannot be read as Parquet ({exc}).") from exc
    return ((f"{path}: row {i}", rec) for i, rec in enumerate(rows))


def _iter_saved_dataset(path: Path) -> Iterator[tuple[str, Any]]:
    datasets = require("datasets", feature="reading a save_to_disk directory", extra="hf")
    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, Mapping):  # DatasetDict
        splits = list(ds)
        if len(splits) != 1:
            raise DataFormatError(
                f"{path}: holds a DatasetDict with the splits {splits}; load one with "
                f"load_instructions(datasets.load_from_disk({str(path)!r})[{splits[0]!r}])."
            )
        ds = ds[splits[0]]
    return ((f"{path}: record {i}", rec) for i, rec in enumerate(ds))


def _iter_file(path: Path, format: str | None, encoding: str) -> Iterator[tuple[str, Any]]:
    fmt = format
    try:
        with _open_text(path, encoding) as fh:
            text = fh.read()
    except (UnicodeError, OSError, EOFError) as exc:
        raise DataFormatError(f"{path}: cannot be read as {encoding} text ({exc}).") from exc
    head = text.lstrip()[:1]
    if fmt is None:
        if head == "[":
            fmt = "json"
        elif head == "{":
            fmt = "jsonl"
        else:
            raise DataFormatError(
                f"{path}: cannot tell the format from the suffix or the content (starts with {head!r}); "
                f"pass format='json' (an array of objects) or format='jsonl' (one object per line)."
            )
    if fmt == "json" and head == "{":
        # A .json file holding JSON lines is common (e.g. Dolly copies); a single object is not a dataset.
        try:
            obj = parse_json(text)
        except json.JSONDecodeError:
            fmt = "jsonl"
        else:
            keys = list(obj)[:8] if isinstance(obj, dict) else []
            raise DataFormatError(
                f"{path}: expected a JSON array of records (or one record per line); got a single JSON "
                f"object with keys {keys}. If the records are under one key, load them with json and pass "
                f"the list, e.g. load_instructions(json.load(f)['data'])."
            )
    if fmt == "json":
        return _iter_json_array(text, path)
    return _iter_json_lines(text, path)


def _iter_json_array(text: str, path: Path) -> Iterator[tuple[str, Any]]:
    try:
        obj = parse_json(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from exc
    if not isinstance(obj, list):
        raise DataFormatError(f"{path}: expected a JSON array of records; got a JSON {type(obj).__name__}.")
    return ((f"{path}: record {i}", rec) for i, rec in enumerate(obj))


def _iter_json_lines(text: str, path: Path) -> Iterator[tuple[str, Any]]:
    # Split on "\n" only: str.splitlines() would also cut at U+2028, U+2029 and U+0085, which JSON
    # allows raw inside strings. Reading in text mode has already turned "\r\n" and "\r" into "\n".
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = parse_json(line)  # deep nesting: JSONDecodeError, not RecursionError
        except json.JSONDecodeError as exc:
            raise DataFormatError(
                f"{path}: line {lineno}: invalid JSON at column {exc.colno}: {exc.msg}. Each line must hold "
                f"one JSON object (JSON lines); for a JSON array use a .json file or format='json'."
            ) from exc
        yield f"{path}: line {lineno}", rec


def _iter_memory(source: Any) -> tuple[str, Iterable[tuple[str, Any]] | None]:
    cls = type(source)
    module = cls.__module__ or ""
    if module.startswith("pandas") and cls.__name__ == "DataFrame":
        columns = [str(c) for c in source.columns]
        label = "DataFrame"
        return label, (
            (f"{label}: row {i}", dict(zip(columns, values)))
            for i, values in enumerate(source.itertuples(index=False, name=None))
        )
    if module.startswith("datasets") and cls.__name__ in ("Dataset", "IterableDataset"):
        label = "datasets.Dataset"
        return label, ((f"{label}: record {i}", rec) for i, rec in enumerate(source))
    if module.startswith("datasets") and cls.__name__ == "DatasetDict":
        raise DataFormatError(
            f"load_instructions expects one split; got a DatasetDict with the splits {list(source)}. Pass "
            f"e.g. dataset_dict[{next(iter(source), 'train')!r}]."
        )
    if isinstance(source, Mapping):
        raise DataFormatError(
            f"load_instructions expects a file path or a sequence of records; got a single mapping with "
            f"keys {list(source)[:8]}. Wrap one record in a list, or pass the list of records."
        )
    if isinstance(source, (bytes, bytearray)) or not isinstance(source, Iterable):
        raise ValidationError(
            f"load_instructions expects a path, a list of dicts, a datasets.Dataset or a pandas.DataFrame; "
            f"got {cls.__name__}."
        )
    items = source if isinstance(source, Sequence) else list(source)
    if len(items) and all(isinstance(r, InstructionRecord) for r in items):
        return "records", None
    return "records", ((f"record {i}", rec) for i, rec in enumerate(items))


# ---- raw records -> InstructionRecord --------------------------------------------------------
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


def _report_duplicates(records: Sequence[InstructionRecord], label: str, on_duplicates: str) -> None:
    if on_duplicates == "ignore":
        return
    counts = Counter(_content_key(r) for r in records)
    n_distinct = len(counts)
    extra = len(records) - n_distinct
    if extra:
        repeated = sum(1 for c in counts.values() if c > 1)
        warnings.warn(
            f"{label}: {extra} of {len(records)} records are exact duplicates of earlier ones "
            f"({repeated} distinct records occur more than once; {n_distinct} distinct in all). They are kept, "
            f"so each copy can be selected; deduplicate the source first if that is not wanted.",
            DuplicateRecordsWarning,
            stacklevel=3,
        )
