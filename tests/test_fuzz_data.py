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


# ---- issue 22: chat turns with null / missing / non-string content, number literals, duplicate keys ----------
# Each drawn turn carries the oracle's verdict: the text it must become, or None when the record must be refused.
CONTENT_CASES = [
    ("text", lambda s: (s, s)),
    ("parts", lambda s: ([{"type": "text", "text": s}, {"type": "input_text", "text": s}], f"{s}\n{s}")),
    ("media+text", lambda s: ([{"type": "image_url", "image_url": {"url": "x"}}, {"type": "output_text", "text": s}],
                              s)),
    ("null", lambda s: (None, None)),
    ("nan", lambda s: (float("nan"), None)),
    ("int", lambda s: (7, None)),
    ("dict", lambda s: ({"text": s}, None)),
    ("text part int", lambda s: ([{"type": "text", "text": 5}], None)),
    ("text part null", lambda s: ([{"type": "text", "text": None}], None)),
    ("no parts", lambda s: ([], None)),
    ("missing", lambda s: (..., None)),
]


@st.composite
def chat_records(draw, sharegpt):
    """(record, expected [(role, text)] or None): OpenAI or ShareGPT turns (one shape per dataset), some with
    malformed content."""
    role_key, content_key = ("from", "value") if sharegpt else ("role", "content")
    names = {"user": "human", "assistant": "gpt"} if sharegpt else {"user": "user", "assistant": "assistant"}
    turns, expected = [], []
    for role in draw(st.lists(st.sampled_from(["user", "assistant"]), min_size=1, max_size=4)):
        case = draw(st.sampled_from(CONTENT_CASES)) if draw(st.integers(0, 3)) == 0 else CONTENT_CASES[0]
        value, text = case[1](draw(odd_text))
        if sharegpt and case[0] not in ("text", "null", "nan", "int", "dict", "missing"):
            value, text = draw(odd_text), None  # ShareGPT values are strings: draw a plain one
            text = value
        turn = {role_key: names[role]}
        if value is not ...:
            turn[content_key] = value
        turns.append(turn)
        expected.append((role, text))
    ok = all(text is not None for _, text in expected) and any(role == "assistant" for role, _ in expected)
    return {"conversations" if sharegpt else "messages": turns}, (expected if ok else None)


@examples(120)
@given(rows=st.booleans().flatmap(lambda sharegpt: st.lists(chat_records(sharegpt), min_size=1, max_size=3)))
def test_chat_content_is_read_or_refused_never_emptied(rows) -> None:
    records = [r for r, _ in rows]
    expected = [e for _, e in rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok, out = outcome(load_instructions, records)
    if any(e is None for e in expected):
        assert not ok, f"malformed chat content was accepted: {records!r}"
        return
    assert ok, f"well-formed chat records were refused: {out}"
    assert [[(t.role, t.content) for t in rec.messages] for rec in out] == expected


NUMBER_LITERALS = ["1e400", "-1E400", "1E5", "1e-7", "-0.0", "0", "3.14159265358979323846", "12345678901234567890",
                   "-9223372036854775809", "NaN", "Infinity", "-Infinity", "2.50", "1.0E+2"]
ESCAPES = ["\\u00e9", "\\/", "\\ud83d\\ude00", "\\n", "\\t", "\\\"", "\\\\", "\\u2028", "é", "\u2028"]


@st.composite
def literal_lines(draw):
    """A JSON-lines record written by hand: number literals and escapes as spelled, keys in any order, maybe a
    duplicate key. Returns (line, has a duplicate key)."""
    text = "".join(draw(st.lists(st.sampled_from(ESCAPES + ["a", " ", "x"]), min_size=1, max_size=5)))
    members = [f'"instruction": "{text}"', '"output": "o"'] + [
        f'"{k}": {draw(st.sampled_from(NUMBER_LITERALS))}' for k in draw(st.lists(st.sampled_from("nmpq"),
                                                                                 max_size=3, unique=True))]
    members = draw(st.permutations(members))
    duplicate = draw(st.integers(0, 3)) == 0
    if duplicate:
        members = [*members, draw(st.sampled_from(members))]
    sep = draw(st.sampled_from([", ", ",", " ,  "]))
    return "{" + sep.join(members) + "}", duplicate


@examples(80)
@given(lines=st.lists(literal_lines(), min_size=1, max_size=6), data=st.data())
def test_json_lines_export_is_byte_exact(lines, data) -> None:
    texts = [line for line, _ in lines]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.jsonl"
        src.write_text("\n".join(texts) + "\n", encoding="utf-8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok, out = outcome(load_instructions, src)
            if any(dup for _, dup in lines):
                assert not ok and "occurs twice" in str(out)
            recs = load_instructions(src, duplicate_keys="first")
        picks = data.draw(st.lists(st.integers(0, len(texts) - 1), min_size=1, max_size=len(texts), unique=True))
        from diverseevol.export import write_subset

        jl = write_subset(Path(tmp) / "out.jsonl", recs, picks)
        assert jl.read_text(encoding="utf-8") == "".join(texts[i] + "\n" for i in picks)
        arr = write_subset(Path(tmp) / "out.json", recs, picks)
        assert arr.read_text(encoding="utf-8") == "[\n" + ",\n".join("  " + texts[i] for i in picks) + "\n]\n"
