"""One switch for every progress bar: DIVERSEEVOL_PROGRESS=0 wins, no bars when stderr is not a terminal."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from diverseevol import _progress, kcenter_select
from diverseevol._progress import progress_bar, progress_enabled, show_progress

pytest.importorskip("tqdm")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _ClosedFile(io.StringIO):
    def isatty(self) -> bool:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        return True


class _Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def _set_stderr(monkeypatch, stream):
    # In the test body, not a fixture: pytest's capture puts its own sys.stderr back after setup.
    monkeypatch.setattr(sys, "stderr", stream)
    return stream


def _is_real_bar(bar) -> bool:
    return not isinstance(bar, _progress._NullBar)


@pytest.mark.parametrize("off", ["0", "false", "no", "off", "OFF"])
def test_env_off_wins_over_an_explicit_request(off, monkeypatch):
    terminal = _set_stderr(monkeypatch, _Terminal())
    monkeypatch.setenv("DIVERSEEVOL_PROGRESS", off)
    assert not progress_enabled(disable=False)  # what kcenter's size rule passes for large problems
    assert not show_progress(True)
    assert not _is_real_bar(progress_bar(range(3), disable=False))


def test_kcenter_progress_request_obeys_env_off(monkeypatch):
    terminal = _set_stderr(monkeypatch, _Terminal())
    # progress=True is what the size rule chooses for large problems; the env switch must still win
    monkeypatch.setenv("DIVERSEEVOL_PROGRESS", "0")
    emb = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    kcenter_select(emb, [], 20, random_state=0, progress=True)
    assert terminal.getvalue() == ""
    monkeypatch.setenv("DIVERSEEVOL_PROGRESS", "1")
    kcenter_select(emb, [], 20, random_state=0, progress=True)
    assert "k-center picks" in terminal.getvalue()  # the bar exists and is on when allowed


def test_no_bars_when_stderr_is_not_a_terminal(monkeypatch):
    pipe = _set_stderr(monkeypatch, _Pipe())
    monkeypatch.delenv("DIVERSEEVOL_PROGRESS", raising=False)
    assert not show_progress(True) and not progress_enabled(disable=False)
    emb = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    kcenter_select(emb, [], 20, random_state=0, progress=True)
    assert pipe.getvalue() == ""


@pytest.mark.parametrize("force", ["1", "true", "force", "always"])
def test_forced_bars_show_without_a_terminal(force, monkeypatch):
    pipe = _set_stderr(monkeypatch, _Pipe())
    monkeypatch.setenv("DIVERSEEVOL_PROGRESS", force)
    assert show_progress(True) and show_progress(None)
    assert not show_progress(False)  # a caller's "no" still hides its own bar
    assert _is_real_bar(progress_bar(range(3), disable=False))


def test_terminal_shows_bars_unless_asked_not_to(monkeypatch):
    terminal = _set_stderr(monkeypatch, _Terminal())
    monkeypatch.delenv("DIVERSEEVOL_PROGRESS", raising=False)
    assert show_progress(True) and progress_enabled(None) and progress_enabled(False)
    assert not progress_enabled(True) and not show_progress(False)


def test_notebook_stderr_counts_as_interactive(monkeypatch):
    stream = type("OutStream", (io.StringIO,), {"__module__": "ipykernel.iostream"})()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.delenv("DIVERSEEVOL_PROGRESS", raising=False)
    assert show_progress(True)


def test_closed_or_missing_stderr_means_no_bars(monkeypatch):
    monkeypatch.delenv("DIVERSEEVOL_PROGRESS", raising=False)
    closed = _ClosedFile()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    assert not show_progress(True)
    monkeypatch.setattr(sys, "stderr", None)
    assert not show_progress(True)
