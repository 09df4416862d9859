"""benchmarks/embed.py's adjacent matmul reference: stretches, the rates around them, and the score, on a fake clock."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture()
def embed_module(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location("embed_bench_under_test", BENCH / "embed.py")
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "embed_bench_under_test", mod)
    spec.loader.exec_module(mod)
    return mod


class _Clock:
    """perf_counter / process_time stand-in: advanced by hand, and by every fake GEMM timing."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _install(mod, monkeypatch, rates: list[float], gemm_seconds: float = 0.25):
    clock = _Clock()
    monkeypatch.setattr(mod.time, "perf_counter", clock)
    monkeypatch.setattr(mod.time, "process_time", clock)
    asked: list[int] = []
    queue = list(rates)

    def fake_rate(model, rows, repeats=3):  # noqa: ANN001, ANN202
        asked.append(rows)
        clock.t += gemm_seconds
        return {"blas": queue.pop(0), "onednn": 0.0}

    monkeypatch.setattr(mod, "gemm_rate", fake_rate)
    return clock, asked


def test_stretches_rates_and_score_by_hand(embed_module, monkeypatch):
    mod = embed_module
    clock, asked = _install(mod, monkeypatch, [100e9, 300e9, 200e9])
    ref = mod.AdjacentReference(model=None, interval=2.0)
    ref.start()  # first rate: 100e9, timed at the default 2,048 rows
    clock.t += 1.0
    ref.after_batch(real_tokens=900, padded_tokens=1000)  # 1 s: the stretch stays open
    clock.t += 1.5
    ref.after_batch(real_tokens=800, padded_tokens=1000)  # 2.5 s: closed, rate 300e9 at 1,000 padded rows
    clock.t += 0.5
    ref.after_batch(real_tokens=400, padded_tokens=600)
    wall_gemm, cpu_gemm = ref.finish()  # closes the last stretch (0.5 s) with rate 200e9 at 600 rows
    assert asked == [2048, 1000, 600]
    assert ref.stretches == [(2.5, 1700, 100e9, 300e9), (0.5, 400, 300e9, 200e9)]
    assert wall_gemm == pytest.approx(0.75) and cpu_gemm == pytest.approx(0.75)
    flops_per_token = 1e6
    done = flops_per_token * (1700 + 400)
    possible = 2.5 * 200e9 + 0.5 * 250e9
    assert ref.fraction(flops_per_token) == pytest.approx(done / possible)
    # the next pass starts its reference at the last stretch's mean padded batch
    clock2, asked2 = _install(mod, monkeypatch, [50e9])
    ref.start()
    assert asked2 == [600] and ref.stretches == [] and ref.spent_w == pytest.approx(0.25)


def test_warm_up_batches_outside_a_pass_are_ignored(embed_module, monkeypatch):
    mod = embed_module
    _clock, asked = _install(mod, monkeypatch, [])
    ref = mod.AdjacentReference(model=None, interval=1.0)
    ref.after_batch(10, 10)
    assert ref.finish() == (0.0, 0.0) and asked == [] and ref.stretches == []
    off = mod.AdjacentReference(model=None, interval=0.0)
    off.start()
    off.after_batch(10, 10)
    assert off.finish() == (0.0, 0.0) and not off.enabled and asked == []


def test_drift_reports_the_correlation_of_pass_and_reference(embed_module):
    mod = embed_module
    ref = mod.AdjacentReference(model=None, interval=1.0)
    # the pass runs at exactly half the rate around each stretch, whatever that rate: correlation +1, 0.50 each
    ref.stretches = [(1.0, int(r / 2 / 1e6), r, r) for r in (100e9, 200e9, 300e9, 150e9)]
    text = ref.drift(1e6)
    assert "correlation +1.00 over 4 stretches" in text and "0.50-0.50 of it" in text
    assert ref.fraction(1e6) == pytest.approx(0.5)
    ref.stretches = ref.stretches[:2]
    assert ref.drift(1e6) == "too few stretches"
