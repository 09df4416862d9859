"""Fuzz load_instructions: random bytes, random JSON / JSON lines, odd unicode, deep nesting, wrong types.

Oracle (tests/fuzz_support.py): a correct result or a typed DiverseEvolError with a message, and the
file is byte-identical afterwards. A result is a non-empty list of InstructionRecord whose three
fields are str; for a file written from known records, the records read back equal them.
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
import warnings
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from fuzz_support import digest_files, examples, outcome

from diverseevol.data import InstructionRecord, load_instructions

ODD_CHARS = [
    "\u2028",
    "\u2029",
    "\u0085",
    "\r",
    "\r\n",
    "\x00",
    "\ufeff",
    "\ud7ff",
    "\U0001f600",
    "\t",
    "\\",
    '"',
    "\x1b",
    "\u200b",
    "\n",
]

odd_text = st.lists(st.one_of(st.sampled_from(ODD_CHARS), st.text(max_size=4)), max_size=6).map("".join)

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), odd_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(odd_text, inner, max_size=3)),
    max_leaves=8,
)

FIELD_NAMES = ["instruction", "input", "output", "context", "response", "category", "text"]


@st.composite
def records(draw):
    """A dict that is usually a plausible record (Alpaca or Dolly), sometimes with wrong types."""
    keys = draw(
        st.sampled_from(
            [
                ("instruction", "input", "output"),
                ("instruction", "output"),
                ("instruction", "context", "response", "category"),
                tuple(FIELD_NAMES[:3]),
            ]
        )
    )
    rec = {k: draw(odd_text) for k in keys}
    if draw(st.integers(0, 4)) == 0:
        rec[draw(st.sampled_from(FIELD_NAMES))] = draw(json_values)
    if draw(st.integers(0, 6)) == 0:
        del rec[draw(st.sampled_from(list(rec)))]
    return rec


def _deep(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


@st.composite
def file_contents(draw):
    """(suffix, bytes, expected records or None)."""
    kind = draw(
        st.sampled_from(["jsonl", "jsonl", "json", "json", "bytes", "values", "deep", "mangled", "gzip"])
    )
    recs = draw(st.lists(records(), max_size=5))
    expected = None
    if (
        all(
            set(r) == {"instruction", "input", "output"} and all(isinstance(v, str) for v in r.values())
            for r in recs
        )
        and recs
        and all(r["instruction"].strip() for r in recs)
    ):
        expected = recs
    if kind == "jsonl":
        ascii_only = draw(st.booleans())
        newline = draw(st.sampled_from(["\n", "\r\n"]))
        text = newline.join(json.dumps(r, ensure_ascii=ascii_only) for r in recs) + draw(
            st.sampled_from(["", "\n"])
        )
        return (
            draw(st.sampled_from([".jsonl", ".ndjson", ".json", ".txt", ""])),
            text.encode("utf-8"),
            expected,
        )
    if kind == "json":
        text = json.dumps(recs, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1])))
        return draw(st.sampled_from([".json", ".JSON", ".jsonl", ".dat"])), text.encode("utf-8"), expected
    if kind == "gzip":
        text = "\n".join(json.dumps(r) for r in recs)
        return ".jsonl.gz", gzip.compress(text.encode("utf-8")), expected
    if kind == "bytes":
        return (
            draw(st.sampled_from([".json", ".jsonl", ".gz", ".jsonl.gz"])),
            draw(st.binary(max_size=64)),
            None,
        )
    if kind == "values":
        v = draw(json_values)
        return draw(st.sampled_from([".json", ".jsonl"])), json.dumps(v).encode("utf-8"), None
    if kind == "deep":
        depth = draw(st.sampled_from([10, 999, 1000, 5000, 100_000]))
        return (
            draw(st.sampled_from([".json", ".jsonl"])),
            _deep(depth, draw(st.sampled_from(["list", "dict"]))).encode(),
            None,
        )
    text = "\n".join(json.dumps(r) for r in recs).encode("utf-8")
    cut = draw(st.integers(0, len(text)))
    junk = draw(
        st.sampled_from([b"", b"\xff\xfe", b"\x00", b"}", b"\n{", "\u2028".encode(), b"\xed\xa0\x80"])
    )
    return ".jsonl", text[:cut] + junk + text[cut:], None


options = st.fixed_dictionaries(
    {},
    optional={
        "format": st.sampled_from([None, "json", "jsonl", "csv", "", 3]),
        "fields": st.sampled_from(
            [
                None,
                "alpaca",
                "dolly",
                "other",
                {"instruction": "instruction", "output": "output"},
                {"instruction": "text"},
                {"bogus": "x"},
                7,
                ["instruction"],
            ]
        ),
        "meta_fields": st.sampled_from([None, (), ("category",), ("missing",), "category", [1]]),
        "on_duplicates": st.sampled_from(["warn", "ignore", "raise", None]),
        "encoding": st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "ascii", "utf-16", "no-such-codec"]),
    },
)


def _check_records(out, expected, opts) -> None:
    assert isinstance(out, list) and out, "an empty dataset must be refused"
    for rec in out:
        assert isinstance(rec, InstructionRecord)
        assert all(isinstance(getattr(rec, f), str) for f in ("instruction", "input", "output"))
    if expected is not None and not opts:
        got = [(r.instruction, r.input, r.output) for r in out]
        assert got == [(r["instruction"], r["input"], r["output"]) for r in expected]


@examples(150)
@given(content=file_contents(), opts=options)
def test_load_instructions_file_result_or_typed_error(content, opts) -> None:
    suffix, data, expected = content
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(data)
        before = digest_files([path])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok, out = outcome(load_instructions, path, **opts)
        assert digest_files([path]) == before, "load_instructions changed its input file"
        if ok:
            _check_records(out, expected, opts)


@examples(60)
@given(
    source=st.one_of(
        st.lists(records(), max_size=4),
        st.lists(json_values, max_size=3),
        json_values,
        st.lists(st.sampled_from([InstructionRecord("a"), InstructionRecord("b", "c", "d")]), max_size=3),
        st.sampled_from(["/nonexistent/data.jsonl", "missing.json", ""]),  # a str is a path, here a missing one
    ),
    opts=options,
)
def test_load_instructions_memory_result_or_typed_error(source, opts) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok, out = outcome(load_instructions, source, **opts)
    if ok:
        _check_records(out, None, opts)
