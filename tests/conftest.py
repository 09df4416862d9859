"""Suite-wide checks.

The old import paths (``diverseevol.loop``, ``rundir``, ``distributed``, ``judge.llm``,
``hf.distributed``) warn once per process, when first imported. So that *every* test that imports
one of them sees that warning, which pyproject's ``filterwarnings`` turns into an error, they are
forgotten before and after each test (the tests that check the old paths import them inside
``pytest.warns``).
"""

from __future__ import annotations

import sys

import pytest

OLD_HOMES = (
    "diverseevol.loop",
    "diverseevol.rundir",
    "diverseevol.distributed",
    "diverseevol.judge.llm",
    "diverseevol.hf.distributed",
)


def _forget_old_homes() -> None:
    for name in OLD_HOMES:
        if sys.modules.pop(name, None) is None:
            continue
        parent, _, child = name.rpartition(".")
        package = sys.modules.get(parent)
        if package is not None:
            vars(package).pop(child, None)  # else `from parent import child` finds it without importing


@pytest.fixture(autouse=True)
def _old_homes_import_afresh():
    _forget_old_homes()
    yield
    _forget_old_homes()
