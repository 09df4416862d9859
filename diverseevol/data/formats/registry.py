"""The record-format registry: names -> :class:`~diverseevol.data.formats.RecordFormat` objects.

Built-in shapes register themselves with :func:`register_record_format` when their module is
imported; the modules are listed once, in :data:`_BUILTIN_MODULES`, and imported on the first
lookup. Detection tries the shapes in registration order (the built-ins first, in that list's
order), so a more specific shape must come before a more general one.
"""

from __future__ import annotations

import difflib
import importlib
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ...errors import DataFormatError, ValidationError
from ..records import InstructionRecord
from .base import ReadOptions, RecordFormat

__all__ = [
    "format_of",
    "get_record_format",
    "record_format_names",
    "record_format_summaries",
    "record_formats",
    "register_record_format",
    "resolve_record_format",
    "unregister_record_format",
]

#: The built-in shapes, in detection order (chat shapes first: a record may hold both a column
#: of turns and Alpaca's field names).
_BUILTIN_MODULES = (
    "diverseevol.data.formats.sharegpt",
    "diverseevol.data.formats.openai_messages",
    "diverseevol.data.formats.alpaca",
    "diverseevol.data.formats.dolly",
)
#: Names that mean a file type (``file_type=``); no record format may take them.
_RESERVED = ("json", "jsonl", "parquet", "dataset", "records")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

_registry: dict[str, RecordFormat] = {}
_builtins_loaded = False
_lock = threading.RLock()

F = TypeVar("F")


def _load_builtins() -> None:
    global _builtins_loaded
    with _lock:
        if _builtins_loaded:
            return
        _builtins_loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


def register_record_format(name: str, fmt: Any = None, *, overwrite: bool = False) -> Any:
    """Register a record format under ``name`` (as a class decorator, or called with the object).

    Parameters
    ----------
    name : str
        A lowercase identifier (``[a-z][a-z0-9_]*``), not a file type name; set as the object's
        ``name``, named by ``format=`` and held in :attr:`InstructionRecord.format`.
    fmt : RecordFormat instance or subclass, optional
        A subclass is instantiated without arguments. When omitted, a decorator is returned.
    overwrite : bool, default False
        Replace a format already registered under ``name``; without it a clash raises.

    Returns
    -------
    The class or object given (or the decorator).

    Raises
    ------
    ValidationError
        For a bad or reserved name, a name clash, or an object that is no RecordFormat.

    Examples
    --------
    >>> from diverseevol.data.formats import FieldFormat, register_record_format, unregister_record_format
    >>> @register_record_format("qa")
    ... class QAFormat(FieldFormat):
    ...     summary = "q / a pairs"
    ...     fields = {"instruction": "q", "input": None, "output": "a"}
    >>> from diverseevol import load_instructions
    >>> load_instructions([{"q": "2+2?", "a": "4"}])[0].format
    'qa'
    >>> unregister_record_format("qa")
    """
    if fmt is None:
        def decorator(obj: F) -> F:
            register_record_format(name, obj, overwrite=overwrite)
            return obj

        return decorator
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in _RESERVED:
        raise ValidationError(
            f"a record format name must be a lowercase identifier other than {list(_RESERVED)} (file types); got "
            f"{name!r}. Use e.g. register_record_format('my_chat', MyChatFormat())."
        )
    obj = fmt() if isinstance(fmt, type) and issubclass(fmt, RecordFormat) else fmt
    if not isinstance(obj, RecordFormat):
        raise ValidationError(
            f"register_record_format expects a diverseevol.data.formats.RecordFormat (subclass or instance); got "
            f"{type(fmt).__name__}. Subclass RecordFormat, FieldFormat or ChatFormat."
        )
    _load_builtins()
    with _lock:
        if name in _registry and not overwrite and _registry[name] is not obj:
            raise ValidationError(
                f"a record format {name!r} is already registered ({_registry[name]!r}); pass overwrite=True to "
                f"replace it or choose another name."
            )
        obj.name = name
        _registry[name] = obj
    return fmt


def unregister_record_format(name: str) -> None:
    """Remove ``name`` from the registry (unknown names raise like :func:`get_record_format`)."""
    get_record_format(name)
    with _lock:
        del _registry[name]


def record_format_names() -> tuple[str, ...]:
    """The registered record formats, in detection order."""
    return tuple(_all())


def record_formats() -> dict[str, RecordFormat]:
    """``{name: format object}`` of every registered format, in detection order."""
    return _all()


def record_format_summaries() -> dict[str, str]:
    """``{name: one-line description}`` of every registered format, in detection order (for help texts)."""
    return {name: fmt.summary for name, fmt in _all().items()}


def get_record_format(name: str) -> RecordFormat:
    """The record format registered under ``name``.

    Raises
    ------
    ValidationError
        For an unknown name, listing the known ones (with a close match when there is one).
    """
    _load_builtins()
    fmt = _registry.get(name) if isinstance(name, str) else None
    if fmt is None:
        close = difflib.get_close_matches(str(name), list(_registry), n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValidationError(
            f"format must be a record format name {list(_all())} (or None: detect it from the first record); "
            f"got {name!r}.{hint} The file type goes in file_type=."
        )
    return fmt


def format_of(record: InstructionRecord) -> RecordFormat:
    """The format of ``record`` (a record built in Python: OpenAI messages for a conversation, else Alpaca)."""
    _load_builtins()
    fmt = _registry.get(record.format)
    if fmt is None:
        fmt = _registry["openai" if record.is_chat else "alpaca"]
    return fmt


def resolve_record_format(
    first: Mapping[str, Any], options: ReadOptions, where: str, *, name: str | None = None,
    family: str | None = None,
) -> RecordFormat:
    """The format to read a dataset with: the one named, else the first that detects ``first``.

    Parameters
    ----------
    first : mapping
        The dataset's first record.
    options : ReadOptions
        What the caller said; a format it does not apply to is never chosen.
    where : str
        ``first``'s location, for messages.
    name : str, optional
        A named format (``format=``).
    family : str, optional
        Only formats of this LLaMA-Factory ``formatting`` (a ``dataset_info.json`` entry's).

    Raises
    ------
    ValidationError
        When ``options`` contradict the named format, or fit none.
    DataFormatError
        When no format detects ``first`` and no names were given.
    """
    if isinstance(options.fields, str):
        field_sets = [n for n, f in _all().items() if f.takes_fields]
        if options.fields not in field_sets:
            raise ValidationError(
                f"fields must be one of {field_sets} or a mapping; got {options.fields!r}. For chat records pass "
                f"format='sharegpt' or format='openai'."
            )
        if name is not None and name != options.fields:
            raise ValidationError(f"format={name!r} and fields={options.fields!r} name different record shapes.")
        name = options.fields
    if name is not None:
        fmt = get_record_format(name)
        reason = fmt.refusal(options)
        if reason:
            raise ValidationError(f"{reason}.")
        return fmt
    candidates = [f for f in _all().values() if family is None or f.lf_formatting == family]
    usable = [f for f in candidates if f.refusal(options) is None]
    if not usable:
        reasons = "; ".join(str(f.refusal(options)) for f in candidates)
        raise ValidationError(f"the names given fit no record format: {reasons}.")
    tries: list[Callable[[RecordFormat], bool]] = [lambda f: f.detect(first)]
    if options.given:
        tries.append(lambda f: f.detect(f.view(first, options)))
    for detects in tries:
        for fmt in usable:
            if detects(fmt):
                return fmt
    if options.given:
        return usable[0]
    known = "; ".join(f.summary or f.name for f in usable)
    raise DataFormatError(
        f"{where}: cannot detect the field names from the keys {sorted(map(str, first))}. Known shapes: {known}. "
        f"Name the shape with format=, or map yours with e.g. "
        f"fields={{'instruction': 'prompt', 'input': None, 'output': 'completion'}} or "
        f"columns={{'messages': 'dialogue'}}."
    )


def _all() -> dict[str, RecordFormat]:
    """The registry in detection order: the built-ins in :data:`_BUILTIN_MODULES` order, then the others
    in registration order (whatever order the built-in modules happened to be imported in)."""
    _load_builtins()
    with _lock:
        items = list(_registry.items())

    def rank(item: tuple[int, tuple[str, RecordFormat]]) -> tuple[int, int]:
        module = type(item[1][1]).__module__
        return (_BUILTIN_MODULES.index(module), 0) if module in _BUILTIN_MODULES else (len(_BUILTIN_MODULES), item[0])

    return dict(pair for _, pair in sorted(enumerate(items), key=rank))
