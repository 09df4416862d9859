"""Issue 12 item 5 (loop part): degenerate embeddings (every record embedded identically, e.g.
truncated to the prompt template) are reported once per round, before sampling, with the cause
and the fix."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import loop_fakes as fakes

from diverseevol.errors import DegenerateEmbeddingsWarning


@pytest.fixture(autouse=True)
def _fast_disk(monkeypatch):
    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "0")


def _loop(tmp_path, **kw):
    return fakes.small_loop(tmp_path / "run", **kw)


def identical_rows(model, records):
    return np.tile(np.array([[0.5, -1.0, 2.0]], np.float32), (len(records), 1))


def test_identical_embeddings_warn_every_round_with_cause_and_fix(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _loop(tmp_path, embedder=identical_rows, sampler="kcenter", vendi=True).run()
    degenerate = [str(w.message) for w in caught if issubclass(w.category, DegenerateEmbeddingsWarning)]
    assert len(degenerate) == 3  # rounds 0, 1, 2 (vendi=True: the last embeds for the Vendi score)
    for t, message in enumerate(degenerate):
        assert f"round {t} embeddings" in message
        assert "max_length" in message and "template" in message


def test_nearly_identical_embeddings_warn_and_diverse_ones_do_not(tmp_path):
    def mostly_same(model, records):
        out = identical_rows(model, records)
        out[:3] = np.arange(9, dtype=np.float32).reshape(3, 3) * 10.0  # 77 of 80 rows identical
        return out

    with pytest.warns(DegenerateEmbeddingsWarning, match="round 0 embeddings"):
        _loop(tmp_path / "a", embedder=mostly_same, sampler="kcenter").run()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateEmbeddingsWarning)
        _loop(tmp_path / "b", embedder=fakes.FakeEmbedder(), sampler="kcenter").run()


def test_cached_identical_embeddings_are_checked_on_resume(tmp_path):
    loop = _loop(tmp_path, embedder=identical_rows, sampler="kcenter", cache_embeddings=True, judge=_fail_at(1))
    with pytest.warns(DegenerateEmbeddingsWarning), pytest.raises(RuntimeError, match="judge down"):
        loop.run()
    (tmp_path / "run" / "rounds" / "round_001" / "selection.json").unlink()  # reselect from the cache
    with pytest.warns(DegenerateEmbeddingsWarning, match="round 1 embeddings"):
        _loop(tmp_path, embedder=identical_rows, sampler="kcenter", cache_embeddings=True).run()


def _fail_at(t_fail):
    def judge(model, t):
        if t == t_fail:
            raise RuntimeError("judge down")
        return {}

    return judge
