"""Shared pieces of the property/fuzz suite (tests/test_fuzz_*.py): the budget and the one oracle.

The oracle: a public entry point either returns a correct result (each test checks a cheap
invariant of it) or raises an exception that derives from
:class:`diverseevol.errors.DiverseEvolError` *and* from a builtin exception type, with a non-empty
message. Anything else (a bare ``IndexError``, a ``RecursionError``, an empty message, a changed
input file) is a defect.

Budget
------
Every fuzz test runs ``max_examples`` cases, derandomized (the same cases on every CI run), without
a deadline and without the example database. The CI budget is set per test (``examples(n)``);
``DIVERSEEVOL_FUZZ_EXAMPLES=<int>`` multiplies it to run longer locally, e.g.
``DIVERSEEVOL_FUZZ_EXAMPLES=10 pytest tests/test_fuzz_*.py``. ``DIVERSEEVOL_FUZZ_RANDOM=1`` draws
fresh random cases instead of the fixed ones (a failure then prints its ``@reproduce_failure``).
"""

from __future__ import annotations

import builtins
import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, settings

from diverseevol.errors import DiverseEvolError

#: Multiplier of every test's CI budget (``DIVERSEEVOL_FUZZ_EXAMPLES``; default 1).
SCALE = max(1, int(os.environ.get("DIVERSEEVOL_FUZZ_EXAMPLES", "1") or "1"))
RANDOM = os.environ.get("DIVERSEEVOL_FUZZ_RANDOM", "") not in ("", "0")


def examples(n: int) -> settings:
    """Hypothesis settings for a fuzz test whose CI budget is ``n`` cases."""
    return settings(
        max_examples=n * SCALE,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


_BUILTIN_EXCEPTIONS = tuple(
    v
    for v in vars(builtins).values()
    if isinstance(v, type) and issubclass(v, BaseException) and v not in (BaseException, Exception)
)


def assert_typed_error(exc: BaseException) -> None:
    """The oracle for a raised exception: a DiverseEvolError, also a builtin type, with a message."""
    kind = type(exc)
    chain = " -> ".join(c.__qualname__ for c in kind.__mro__)
    assert isinstance(exc, DiverseEvolError), f"untyped exception {kind.__module__}.{chain}: {exc!r}"
    assert isinstance(exc, _BUILTIN_EXCEPTIONS), f"{chain} derives from no builtin exception type"
    assert str(exc).strip(), f"{kind.__qualname__} raised with an empty message"


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Call ``fn``; return ``(True, result)`` or ``(False, exc)`` after checking ``exc`` is typed.

    Only ``Exception`` is caught: a ``KeyboardInterrupt`` or ``SystemExit`` is never an answer to
    bad input and propagates (a failure).
    """
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the oracle inspects every exception
        event(f"raised {type(exc).__name__}")
        assert_typed_error(exc)
        return False, exc
    event("returned")
    return True, result


def digest_files(paths: Iterable[Path]) -> dict[Path, str | None]:
    """SHA-256 of each file's bytes (None: absent); compared before and after a call."""
    out: dict[Path, str | None] = {}
    for p in paths:
        p = Path(p)
        out[p] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
    return out


def digest_tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, by relative path."""
    root = Path(root)
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
