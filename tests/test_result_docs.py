"""Every generated block in README.md and docs/*.md equals what tools/gen_result_docs.py renders
from its committed result file in docs/results/ (issue 24: figures that cannot drift)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_result_docs", ROOT / "tools" / "gen_result_docs.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_every_generated_block_matches_its_result_file() -> None:
    tool = _tool()
    assert tool.stale() == [], "run `python tools/gen_result_docs.py` and commit the docs"


def test_the_docs_hold_the_blocks_the_issue_asks_for() -> None:
    tool = _tool()
    found = {(rel, name) for rel in tool.DOCS for name, _ in tool.blocks((ROOT / rel).read_text(encoding="utf-8"))}
    for need in [("README.md", "demo-table"), ("README.md", "demo-time"), ("README.md", "ci-time"),
                 ("docs/demo.md", "demo-table"), ("docs/getting_started.md", "demo-time"),
                 ("docs/cli.md", "demo-time"), ("docs/huggingface.md", "dolly-max-length")]:
        assert need in found, need


def _copy(tmp_path: Path) -> Path:
    tool = _tool()
    for rel in tool.DOCS:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    shutil.copytree(ROOT / "docs" / "results", tmp_path / "docs" / "results")
    return tmp_path


def test_a_changed_result_file_or_a_hand_edit_makes_a_block_stale(tmp_path: Path) -> None:
    tool = _tool()
    root = _copy(tmp_path)
    assert tool.stale(root=root) == []
    # A new measurement in the result file: the README's and demo.md's tables are now stale.
    path = root / "docs" / "results" / "demo_5seeds.json"
    data = json.loads(path.read_text())
    final = max(e["pool_size"] for e in data["summary"]["by_sampler"] if e["sampler"] == "kcenter")
    entry = next(e for e in data["summary"]["by_sampler"] if e["sampler"] == "kcenter" and e["pool_size"] == final)
    entry["accuracy"]["mean"] += 1.0
    path.write_text(json.dumps(data))
    assert set(tool.stale(root=root)) == {"README.md: demo-table", "docs/demo.md: demo-table", "docs/results.md: demo-table"}
    # Regenerating fixes it; then a hand edit inside a block is caught.
    for rel in tool.DOCS:
        (root / rel).write_text(tool.render_doc((root / rel).read_text(), root))
    assert tool.stale(root=root) == []
    readme = root / "README.md"
    text = readme.read_text()
    start = text.index("<!-- generated:demo-time -->\n") + len("<!-- generated:demo-time -->\n")
    readme.write_text(text[:start] + "(edited by hand) " + text[start:])
    assert tool.stale(root=root) == ["README.md: demo-time"]


def test_the_demo_table_quotes_the_file(tmp_path: Path) -> None:
    """Hand-made results: the rendered cells are the file's numbers, the verdicts follow the adjusted intervals."""
    tool = _tool()
    root = tmp_path
    (root / "docs" / "results").mkdir(parents=True)
    stat = {"mean": 50.0, "low": 40.0, "high": 60.0, "n": 2}
    summary = [{"sampler": s, "pool_size": 30, "n_seeds": 2, "accuracy": stat, "heldout_loss": stat,
                "coverage": stat, "vendi": stat} for s in ("a", "random", "b")]
    summary.append({"sampler": "full", "pool_size": 1000, "n_seeds": 2, "accuracy": {"mean": 80.0, "low": None},
                    "heldout_loss": {"mean": None}, "coverage": {"mean": 20.0, "low": None}, "vendi": {"mean": None}})
    paired = [
        {"sampler": "a", "baseline": "random", "pool_size": 30, "metric": "accuracy", "mean": 3.0, "low_adj": 1.0,
         "high_adj": 5.0, "n_comparisons": 2},
        {"sampler": "a", "baseline": "random", "pool_size": 30, "metric": "heldout_loss", "mean": -0.2,
         "low_adj": -0.3, "high_adj": -0.1, "n_comparisons": 2},
        {"sampler": "b", "baseline": "random", "pool_size": 30, "metric": "accuracy", "mean": -3.0, "low_adj": -5.0,
         "high_adj": -1.0, "n_comparisons": 2},
        {"sampler": "b", "baseline": "random", "pool_size": 30, "metric": "heldout_loss", "mean": 0.0,
         "low_adj": -0.1, "high_adj": 0.1, "n_comparisons": 2},
    ]
    results = {"settings": {"samplers": ["a", "random", "b"], "seeds": [0, 1], "init_size": 10, "k": 10, "rounds": 2},
               "summary": {"by_sampler": summary}, "paired": paired}
    timing = {"conditions": {"command": "demo", "machine": "m", "date": "d", "load_start": 1.0, "load_end": 2.0}}
    (root / "docs" / "results" / "demo_5seeds.json").write_text(json.dumps(results))
    (root / "docs" / "results" / "demo_5seeds_timing.json").write_text(json.dumps(timing))
    text = tool.demo_table(root)
    assert "| `a` | 50.0 [40.0, 60.0] | 50.00 [40.00, 60.00] | 50.0 [40.0, 60.0] | 50.0 [40.0, 60.0] | " \
           "+3.0 [+1.0, +5.0] | -0.20 [-0.30, -0.10] |" in text
    assert "| `random` |" in text and "(baseline) | (baseline) |" in text
    assert "| full data (1,000 records) | 80.0 | - | 20.0 | | | |" in text
    assert "not contradicted by accuracy: `a`." in text and "on either metric: `b`." in text
    assert "seeds 0, 1" in text and "over 2 comparisons" in text and "load average 1.0" in text


def test_an_unknown_block_name_is_refused() -> None:
    tool = _tool()
    with pytest.raises(KeyError, match="known"):
        tool.render_doc("<!-- generated:nosuch -->\nx\n<!-- /generated:nosuch -->\n")
