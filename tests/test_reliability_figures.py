"""Issue 22 item 9: every figure is written through one atomic writer (``_files.write_figure``):
a full disk in the middle of a PNG raises FileWriteError naming the file, and leaves neither a
truncated PNG under the final name nor a temporary file; a previous figure stays as it was."""

from __future__ import annotations

import errno
import io
import re
from pathlib import Path

import numpy as np
import pytest

import diverseevol
from diverseevol._files import is_temp_name, write_figure
from diverseevol.errors import FileWriteError

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _fast_disk(monkeypatch):
    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "0")


class FakeFigure:
    """Writes half its bytes, then the disk is full."""

    def __init__(self, fail: bool = True) -> None:
        self.fail = fail
        self.calls: list[dict] = []

    def savefig(self, fh, **kwargs):
        self.calls.append(kwargs)
        fh.write(PNG + b"x" * 500)
        if self.fail:
            raise OSError(errno.ENOSPC, "No space left on device")
        fh.write(b"y" * 500)


def _left_over(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if is_temp_name(p.name)]


def test_a_full_disk_mid_figure_leaves_no_truncated_file(tmp_path):
    path = tmp_path / "plots" / "curve.png"
    with pytest.raises(FileWriteError) as info:
        write_figure(FakeFigure(), path, dpi=120)
    assert info.value.errno == errno.ENOSPC and str(path) in str(info.value)
    assert "full" in str(info.value) and isinstance(info.value, OSError)
    assert not path.exists() and _left_over(path.parent) == []


def test_a_previous_figure_is_kept_and_a_good_write_replaces_it(tmp_path):
    path = tmp_path / "curve.png"
    fig = FakeFigure(fail=False)
    write_figure(fig, path, dpi=80)
    assert fig.calls == [{"format": "png", "dpi": 80}]  # the format comes from the name, not the temp file's
    before = path.read_bytes()
    with pytest.raises(FileWriteError):
        write_figure(FakeFigure(), path)
    assert path.read_bytes() == before and _left_over(tmp_path) == []


@pytest.fixture
def full_disk_savefig(monkeypatch):
    """matplotlib renders the real figure, but only half of it reaches the disk."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    real = Figure.savefig

    def savefig(self, fname, **kwargs):
        buf = io.BytesIO()
        real(self, buf, **kwargs)
        half = buf.getvalue()[: len(buf.getvalue()) // 2]
        if hasattr(fname, "write"):
            fname.write(half)
        else:  # saved in place: the truncated PNG lands under the final name
            Path(fname).write_bytes(half)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", savefig)


def test_the_report_plot_through_a_full_disk(tmp_path, full_disk_savefig):
    from diverseevol.report import plot_metrics_vs_pool

    rows = [{"round": t, "pool_size": 10 + 5 * t, "vendi": 2.0 + t} for t in range(3)]
    out = tmp_path / "vendi.png"
    from diverseevol.report import RunMetrics

    with pytest.raises(FileWriteError, match=re.escape(str(out))):
        plot_metrics_vs_pool([RunMetrics.from_rows(rows, "kcenter")], ["vendi"], out)
    assert not out.exists() and _left_over(tmp_path) == []


def test_the_compare_plots_through_a_full_disk(tmp_path, full_disk_savefig):
    from diverseevol.compare import compare_samplers

    emb = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    result = compare_samplers(emb, 5, ["random", "kcenter"], pool_size=10, labels=["a", "b"] * 30)
    with pytest.raises(FileWriteError, match="diversity.png"):
        result.plot(tmp_path / "out")
    assert not (tmp_path / "out" / "diversity.png").exists() and _left_over(tmp_path / "out") == []


def test_no_figure_is_saved_in_place_anywhere_in_the_package():
    root = Path(diverseevol.__file__).parent
    direct = [
        f"{p.relative_to(root)}:{i}"
        for p in sorted(root.rglob("*.py"))
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if ".savefig(" in line and p.name != "_files.py"
    ]
    assert direct == [], "use diverseevol._files.write_figure: " + ", ".join(direct)
