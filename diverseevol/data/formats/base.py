"""The record-format contract: one object per record shape (xarray's backend entrypoints are the model).

A :class:`RecordFormat` says four things about one shape of raw record (a mapping read from a
file or handed over in memory):

* :meth:`~RecordFormat.detect`: whether a dataset's first record has this shape (the
  ``guess_can_open`` of xarray's backends);
* :meth:`~RecordFormat.reader`: how one record becomes an
  :class:`~diverseevol.data.InstructionRecord`, given what the caller said (:class:`ReadOptions`);
* :meth:`~RecordFormat.dataset_info_entry`: the LLaMA-Factory ``dataset_info.json`` entry of a file
  of such records;
* :meth:`~RecordFormat.export_row`: the columns export writes for a record that has no source
  object (one built in Python).

Instances are registered by name (:func:`~diverseevol.data.formats.register_record_format`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..records import InstructionRecord

__all__ = [
    "LF_DEFAULT_COLUMNS",
    "LF_DEFAULT_TAGS",
    "LF_TAG_KEYS",
    "MEDIA_COLUMNS",
    "ReadOptions",
    "RecordFormat",
    "RecordReader",
    "media_columns",
    "present_keys",
]

#: ``dataset_info.json`` column keys of media (LLaMA-Factory's multimodal entries). Any record
#: format accepts them; the media stay in :attr:`InstructionRecord.original` and play no part in the text.
MEDIA_COLUMNS: tuple[str, ...] = ("images", "videos", "audios")
#: LLaMA-Factory's default for each ``columns`` key an entry may leave out.
LF_DEFAULT_COLUMNS: Mapping[str, str] = {"prompt": "instruction", "query": "input", "response": "output",
                                         "messages": "conversations"}
#: LLaMA-Factory's default for each ``tags`` key (its ShareGPT spelling).
LF_DEFAULT_TAGS: Mapping[str, str] = {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                                      "assistant_tag": "gpt", "observation_tag": "observation",
                                      "function_tag": "function_call", "system_tag": "system"}
#: The ``tags`` keys of ``dataset_info.json``.
LF_TAG_KEYS: tuple[str, ...] = tuple(LF_DEFAULT_TAGS)

#: Reads one raw record (the mapping, and where it is, for messages) into an InstructionRecord.
RecordReader = Callable[[Mapping[str, Any], str], InstructionRecord]


@dataclass(frozen=True)
class ReadOptions:
    """What the caller said about the record shape (the shape arguments of ``load_instructions``).

    Attributes
    ----------
    fields : str, mapping or None
        The name of a field set (a format that takes ``fields=``), or a mapping of record
        attribute (``instruction``, ``input``, ``output``, ``system``, ``history``) -> source field.
    columns : mapping or None
        ``dataset_info.json`` column key -> source column.
    tags : mapping or None
        ``dataset_info.json`` tag key -> source tag or role name.
    meta_fields : tuple of str or None
        Source fields kept in :attr:`InstructionRecord.meta` (``None``: the format's default).
    """

    fields: str | Mapping[str, str | None] | None = None
    columns: Mapping[str, str | None] | None = None
    tags: Mapping[str, str] | None = None
    meta_fields: tuple[str, ...] | None = None

    @property
    def given(self) -> bool:
        """Whether any column, tag or field name was given (detection then also tries mapped names)."""
        return bool(self.columns or self.tags or isinstance(self.fields, Mapping))


class RecordFormat:
    """One record shape. Subclass it, fill in the class attributes, implement the methods, and
    register an instance with :func:`~diverseevol.data.formats.register_record_format`.

    :class:`~diverseevol.data.formats.FieldFormat` (single-turn records with named fields) and
    :class:`~diverseevol.data.formats.ChatFormat` (conversations) implement everything but the
    defaults of one shape; most new shapes subclass one of them.

    Attributes
    ----------
    name : str
        The registry name (set by ``register_record_format``); what ``format=`` names and
        :attr:`InstructionRecord.format` holds.
    summary : str
        One line: what a record looks like (used in messages and help texts).
    lf_formatting : str
        LLaMA-Factory's ``formatting`` of the shape (``"alpaca"`` or ``"sharegpt"``).
    default_columns : mapping of str to str
        ``dataset_info.json`` column key -> this shape's column name.
    column_keys : tuple of str
        The ``columns=`` keys the shape reads (besides :data:`MEDIA_COLUMNS`).
    tag_keys : tuple of str
        The ``tags=`` keys the shape reads (empty: ``tags=`` does not apply).
    takes_fields : bool
        Whether ``fields=`` applies.
    """

    name: str = ""
    summary: ClassVar[str] = ""
    lf_formatting: ClassVar[str] = "alpaca"
    default_columns: ClassVar[Mapping[str, str]] = {}
    column_keys: ClassVar[tuple[str, ...]] = ()
    tag_keys: ClassVar[tuple[str, ...]] = ()
    takes_fields: ClassVar[bool] = False

    def detect(self, first: Mapping[str, Any]) -> bool:
        """Whether ``first`` (a dataset's first record) has this shape, with its default names."""
        raise NotImplementedError

    def reader(self, first: Mapping[str, Any], options: ReadOptions, where: str) -> RecordReader:
        """The function that reads each record, set up from the first record and ``options``.

        Raises
        ------
        DataFormatError
            When the first record (at ``where``) cannot be read this way (e.g. the named column is absent).
        """
        raise NotImplementedError

    def export_row(self, record: InstructionRecord) -> dict[str, Any]:
        """The row export writes for ``record`` when it has no source object (built in Python)."""
        raise NotImplementedError

    def dataset_info_entry(self, records: Sequence[InstructionRecord]) -> dict[str, Any]:
        """The LLaMA-Factory ``dataset_info.json`` entry (without ``file_name``) of a file of ``records``.

        The default: :attr:`lf_formatting` when it is not ``"alpaca"``, and the default columns
        (and media columns) that the records hold.
        """
        present = present_keys(records)
        columns = {key: col for key, col in self.default_columns.items() if col in present}
        columns.update(media_columns(present))
        entry: dict[str, Any] = {}
        if self.lf_formatting != "alpaca":
            entry["formatting"] = self.lf_formatting
        if columns:
            entry["columns"] = columns
        return entry

    def refusal(self, options: ReadOptions) -> str | None:
        """Why ``options`` do not apply to this shape, or ``None`` when they do."""
        if options.fields is not None and not self.takes_fields:
            return f"fields= does not apply to {self.name!r} records"
        unknown = sorted(set(options.columns or ()) - set(self.column_keys) - set(MEDIA_COLUMNS))
        if unknown:
            return f"columns {unknown} do not apply to {self.name!r} records (it reads {list(self.column_keys)})"
        if options.tags and not self.tag_keys:
            return f"tags= does not apply to {self.name!r} records (chat records only)"
        return None

    def view(self, first: Mapping[str, Any], options: ReadOptions) -> Mapping[str, Any]:
        """``first`` with the columns named in ``options`` also under this shape's default names
        (what :meth:`detect` then looks at)."""
        view = dict(first)
        for key, col in (options.columns or {}).items():
            default = self.default_columns.get(key)
            if default is not None and col is not None and col in first:
                view[default] = first[col]
        return view

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def present_keys(records: Sequence[InstructionRecord]) -> set[str]:
    """The keys any record's source object (or export row) holds."""
    keys: set[str] = set()
    for rec in records:
        row = rec.as_original()
        if isinstance(row, Mapping):
            keys.update(map(str, row))
    return keys


def media_columns(present: set[str]) -> dict[str, str]:
    """``{"images": "images", ...}`` for the media columns among ``present``."""
    return {key: key for key in MEDIA_COLUMNS if key in present}
