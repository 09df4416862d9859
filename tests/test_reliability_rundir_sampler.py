"""Issue 12 item 2 (loop part): a custom sampler returning fractional indices
(``candidate_idx[:k] + 0.9``, as an array or in a Selection) is refused with SamplerOutputError
before any cast to int64, naming the value as returned; nothing of that round's selection is
written. (run_sampler already checked integrality; these tests fail when that check is replaced
by a cast.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import loop_fakes as fakes

from diverseevol.errors import SamplerOutputError
from diverseevol.samplers import Requirements, Selection


@pytest.fixture(autouse=True)
def _fast_disk(monkeypatch):
    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "0")


def _loop(tmp_path, **kw):
    return fakes.small_loop(tmp_path / "run", **kw)


class _Fractional:
    name = "fractional"
    requires = Requirements()

    def __init__(self, wrap=False):
        self.wrap = wrap

    def select(self, ctx, k):
        picks = ctx.candidate_idx[:k] + 0.9
        return Selection(picks) if self.wrap else picks


@pytest.mark.parametrize("wrap", [False, True], ids=["array", "Selection"])
def test_fractional_sampler_output_is_refused_before_any_cast(tmp_path, wrap):
    with pytest.raises(SamplerOutputError) as info:
        _loop(tmp_path, sampler=_Fractional(wrap)).run()
    message = str(info.value)
    assert ".9" in message  # the value as returned, not truncated
    assert not (tmp_path / "run" / "rounds" / "round_000" / "selection.json").exists()
