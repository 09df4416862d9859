"""docs/reliability.md's table of promises names tests that exist, and covers every item of issue 22.

The table ("Every promise and the test that holds it") names each test as
``tests/<file>.py::<test function>``; the test functions are collected with ``ast`` (no pytest
run). Every ``tests/...py`` file the page mentions elsewhere must exist too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
HEADING = "## Every promise and the test that holds it"
REF = re.compile(r"tests/[\w/]+\.py::\w+")
ISSUE_22_ITEMS = set(range(1, 13))


def table_rows(text: str) -> list[list[str]]:
    """The cells of each data row of the table under :data:`HEADING` (header and rule left out)."""
    lines = text.splitlines()
    start = lines.index(HEADING)
    rows, seen_table = [], False
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            seen_table = True
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif seen_table and line.strip():
            break
    assert len(rows) > 2, f"no table under {HEADING!r}"
    header, rule, *data = rows
    assert header == ["issue 22", "promise", "tests"] and set("".join(rule)) <= {"-", ":"}, header
    return data


def defined_tests(path: Path) -> set[str]:
    """Module-level ``test_*`` functions (sync or async) of a test file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")}


def missing_refs(text: str, root: Path) -> list[str]:
    """Every ``tests/<file>.py::<name>`` of the table whose file or test function does not exist."""
    missing, cache = [], {}
    for row in table_rows(text):
        for ref in REF.findall(row[2]):
            file, name = ref.split("::")
            path = root / file
            if file not in cache:
                cache[file] = defined_tests(path) if path.is_file() else set()
            if name not in cache[file]:
                missing.append(ref)
    return missing


def test_every_test_named_in_the_table_exists() -> None:
    assert missing_refs(DOC.read_text(encoding="utf-8"), ROOT) == []


def test_every_row_names_a_test_and_every_issue_22_item_has_one() -> None:
    covered: set[int] = set()
    for item, promise, tests in table_rows(DOC.read_text(encoding="utf-8")):
        assert promise and REF.search(tests), f"row without a test: {promise!r}"
        assert REF.sub("", tests).replace("`", "").replace("<br>", "").strip() == "", f"stray text: {tests!r}"
        if item not in ("–", "-"):
            covered |= {int(part) for part in item.split(",")}
    assert covered == ISSUE_22_ITEMS


def test_every_test_file_the_page_mentions_exists() -> None:
    names = set(re.findall(r"tests/[\w/]+\.py", DOC.read_text(encoding="utf-8")))
    assert names and sorted(n for n in names if not (ROOT / n).is_file()) == []


def test_the_check_fails_on_a_missing_test(tmp_path: Path) -> None:
    """The oracle can fail: a renamed test, a missing file and a missing item are caught."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_there():\n    pass\n\nasync def test_async():\n    pass\n")
    table = (f"{HEADING}\n\n| issue 22 | promise | tests |\n|---|---|---|\n"
             "| 1 | p | `tests/test_a.py::test_there`<br>`tests/test_a.py::test_async` |\n"
             "| 2 | q | `tests/test_a.py::test_gone`<br>`tests/test_b.py::test_x` |\n")
    assert missing_refs(table, tmp_path) == ["tests/test_a.py::test_gone", "tests/test_b.py::test_x"]
    with pytest.raises(ValueError):
        table_rows("no table here")
