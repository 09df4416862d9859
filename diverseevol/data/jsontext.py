"""JSON and JSON-lines text -> records, each with its exact source text.

One pass over the text with the standard library's decoder (``json.JSONDecoder.raw_decode``,
which returns where each value ends): every record comes with the span of text it was read
from, its line (JSON lines) or its array element (a JSON array), byte for byte, so an export can
write the record unchanged (numbers such as ``1e400`` or ``1E5``, escapes, key order, duplicate
keys). Duplicate keys in an object are refused unless ``duplicate_keys`` says which to keep.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any

from ..errors import DataFormatError, ValidationError

__all__ = ["DUPLICATE_KEYS", "check_duplicate_keys", "compact_json", "read_json_array", "read_json_lines"]

#: What ``duplicate_keys=`` may say: refuse a record with a repeated key, or keep its first or last value.
DUPLICATE_KEYS: tuple[str, ...] = ("error", "first", "last")

#: One record: (location, parsed object, its source text).
Row = tuple[str, Any, str]

_WS = re.compile(r"[ \t\n\r]*")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def check_duplicate_keys(duplicate_keys: Any) -> None:
    """``duplicate_keys`` is one of :data:`DUPLICATE_KEYS`."""
    if duplicate_keys not in DUPLICATE_KEYS:
        raise ValidationError(f"duplicate_keys must be one of {list(DUPLICATE_KEYS)}; got {duplicate_keys!r}.")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _keep_first(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        obj.setdefault(key, value)
    return obj


def _decoder(duplicate_keys: str) -> json.JSONDecoder:
    hooks: dict[str, Callable[[list[tuple[str, Any]]], dict[str, Any]] | None] = {
        "error": _refuse_duplicates, "first": _keep_first, "last": None}
    return json.JSONDecoder(object_pairs_hook=hooks[duplicate_keys])


def _decode(decoder: json.JSONDecoder, text: str, pos: int, label: str, record: str, *,
            in_line: bool = False, hint: str = "") -> tuple[Any, int]:
    """``(value, end)`` of the JSON value at ``pos``. Syntax errors name ``label`` and the line and
    column (the column only when ``text`` is one line of a file); a duplicate key names ``record``."""
    try:
        return decoder.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        at = f"column {exc.colno}" if in_line else f"line {exc.lineno}, column {exc.colno}"
        raise DataFormatError(f"{label}: invalid JSON at {at}: {exc.msg}.{hint}") from exc
    except RecursionError:
        raise DataFormatError(
            f"{label}: invalid JSON: arrays/objects nested too deeply (more than about {sys.getrecursionlimit()} "
            f"levels).{hint}"
        ) from None
    except _DuplicateKey as exc:
        raise DataFormatError(
            f"{record}: the key {exc.key!r} occurs twice in one object; JSON readers disagree on which value is "
            f"meant. Remove one, or pass duplicate_keys='first' or duplicate_keys='last' to keep that occurrence "
            f"(data.duplicate_keys in a run file)."
        ) from None


def _syntax_error(text: str, pos: int, label: str, msg: str) -> DataFormatError:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return DataFormatError(f"{label}: invalid JSON at line {line}, column {column}: {msg}.")


def read_json_array(text: str, label: str, duplicate_keys: str = "error") -> list[Row]:
    """The elements of the JSON array ``text``, each with its exact source span.

    Raises
    ------
    DataFormatError
        For invalid JSON (naming line and column), a top-level value that is no array, or a
        duplicate key (naming the record).
    """
    decoder = _decoder(duplicate_keys)
    pos = _ws(text, 0)
    if not text.startswith("[", pos):
        value, _ = _decode(json.JSONDecoder(), text, pos, label, label)
        raise DataFormatError(f"{label}: expected a JSON array of records; got a JSON {type(value).__name__}.")
    pos = _ws(text, pos + 1)
    rows: list[Row] = []
    if not text.startswith("]", pos):
        while True:
            record = f"{label}: record {len(rows)}"
            value, end = _decode(decoder, text, pos, label, record)
            rows.append((record, value, text[pos:end]))
            pos = _ws(text, end)
            if text.startswith(",", pos):
                pos = _ws(text, pos + 1)
                continue
            if text.startswith("]", pos):
                break
            raise _syntax_error(text, pos, label, "Expecting ',' delimiter")
    pos = _ws(text, pos + 1)
    if pos != len(text):
        raise _syntax_error(text, pos, label, "Extra data")
    return rows


def read_json_lines(text: str, label: str, duplicate_keys: str = "error") -> list[Row]:
    """One record per non-blank line of ``text``, each with its line as source text.

    Lines end at ``\\n``, ``\\r\\n`` or ``\\r`` only (JSON strings cannot hold them raw; U+2028,
    U+2029 and U+0085 can, so they do not end a line). The source text is the line without its
    line break.
    """
    decoder = _decoder(duplicate_keys)
    hint = (" Each line must hold one JSON object (JSON lines); for a JSON array use a .json file or "
            "file_type='json'.")
    rows: list[Row] = []
    for lineno, line in enumerate(_LINE_BREAK.split(text), start=1):
        start = _ws(line, 0)
        if start == len(line):
            continue
        where = f"{label}: line {lineno}"
        value, end = _decode(decoder, line, start, where, where, in_line=True, hint=hint)
        extra = _ws(line, end)
        if extra != len(line):
            raise DataFormatError(f"{where}: invalid JSON at column {extra + 1}: Extra data.{hint}")
        rows.append((where, value, line))
    return rows


def _ws(text: str, pos: int) -> int:
    """The position of the first non-whitespace character at or after ``pos``."""
    return _WS.match(text, pos).end()  # type: ignore[union-attr]


def compact_json(text: str) -> str:
    """``text`` (one JSON value) with the line breaks between its tokens removed, and the
    indentation after them: one line, every token (strings, numbers, escapes) unchanged."""
    if "\n" not in text and "\r" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':  # copy the string through its closing quote (line breaks cannot occur raw inside)
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif c in "\r\n":
            i = _ws(text, i)
        else:
            j = i
            while j < n and text[j] not in '"\r\n':
                j += 1
            out.append(text[i:j])
            i = j
    return "".join(out)
