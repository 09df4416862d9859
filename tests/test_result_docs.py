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
                 ("docs/cli.md", "demo-time"), ("docs/huggingface.md", "dolly-max-length"),
                 ("docs/results.md", "dolly-bakeoff-design"), ("docs/results.md", "dolly-bakeoff-fresh"),
                 ("README.md", "dolly-bakeoff-verdict"), ("docs/samplers.md", "dolly-bakeoff-verdict"),
                 ("docs/demo.md", "demo-cross-machine"), ("README.md", "demo-cross-machine-verdict")]:
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
    assert set(tool.stale(root=root)) == {"README.md: demo-table", "docs/demo.md: demo-table", "docs/results.md: demo-table",
                                          "docs/demo.md: demo-cross-machine"}
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


def test_the_real_model_bakeoff_table_quotes_the_file(tmp_path: Path) -> None:
    """Hand-made bake-off results: means, t-intervals and per-category paired differences checked by hand."""
    tool = _tool()
    root = tmp_path
    (root / "docs" / "results").mkdir(parents=True)
    # Two recipes, three seeds, final pool 30. Losses: random 2.0, 2.2, 2.4; kc 2.1, 2.4, 2.3.
    # Per-category "x" losses: random 1, 2, 3; kc 2, 2, 5 -> paired differences 1, 0, 2: mean 1.0,
    # sd 1.0, t(0.975, 2) = 4.302653 -> half-width 4.302653 / sqrt(3) = 2.484138.
    loss = {"random": [2.0, 2.2, 2.4], "kc": [2.1, 2.4, 2.3]}
    cat_x = {"random": [1.0, 2.0, 3.0], "kc": [2.0, 2.0, 5.0]}
    rows = []
    for recipe in ("random", "kc"):
        for seed in range(3):
            rows.append({"sampler": recipe, "seed": seed, "round": 0, "pool_size": 10, "heldout_loss": 3.0,
                         "mean_words": 10.0, "label_counts": {"x": 10}, "per_label": {"x": {"heldout_loss": 3.0}}})
            rows.append({"sampler": recipe, "seed": seed, "round": 1, "pool_size": 30,
                         "heldout_loss": loss[recipe][seed], "rouge_l": 0.2, "mean_words": 20.0 + seed,
                         "label_counts": {"x": 20, "y": 10 + seed},
                         "per_label": {"x": {"heldout_loss": cat_x[recipe][seed], "rouge_l": 0.2},
                                       "y": {"heldout_loss": 2.0, "rouge_l": 0.2}}})
    paired = [{"sampler": "kc", "baseline": "random", "pool_size": 30, "metric": "heldout_loss", "mean": 0.0667,
               "low_adj": 0.01, "high_adj": 0.12, "n_comparisons": 1},
              {"sampler": "kc", "baseline": "random", "pool_size": 30, "metric": "rouge_l", "mean": 0.0,
               "low_adj": -0.01, "high_adj": 0.01, "n_comparisons": 1}]
    results = {
        "rows": rows, "paired": paired, "heldout_idx": [5, 6], "n_train": 100, "data_mean_words": 12.5,
        "generation_metric": "rouge_l: test", "multiple_comparisons": "Bonferroni",
        "settings": {"samplers": ["random", "kc"], "baseline": "random", "seeds": [0, 1, 2], "init_size": 10,
                     "k": 20, "rounds": 1, "label_field": "category", "heldout": {"per_label": 1}},
        "timing": {"wall_time_s": 100.0, "workers": 2,
                   "per_seed_recipe_s": {"0": {"random": 10.0, "kc": 20.0}, "1": {"random": 12.0, "kc": 30.0},
                                         "2": {"random": 14.0, "kc": 25.0}}},
        "conditions": {"stage": "fresh", "command": "bench", "commit": "abc", "machine": "m", "date": "d",
                       "load_min": 2.0, "load_median": 2.1, "load_max": 2.5, "how": ""},
    }
    (root / "docs" / "results" / "bakeoff_dolly_fresh.json").write_text(json.dumps(results))
    text = tool.bakeoff_dolly("bakeoff_dolly_fresh.json", root)
    # random's loss: mean 2.2, sd 0.2, half-width 4.302653 * 0.2 / sqrt(3) = 0.496828.
    assert "| `random` | 30 | 2.2000 [1.7032, 2.6968] | 0.2000 [0.2000, 0.2000] | (baseline) | (baseline) | 21.0 [" in text
    assert "| `kc` | 30 | 2.2667 [" in text and "+0.0667 [+0.0100, +0.1200]" in text
    assert "| `kc` | +1.000 [-1.484, +3.484] | +0.000 [+0.000, +0.000] |" in text
    assert "| `random` | 2.000 [-0.484, 4.484] | 2.000 [2.000, 2.000] |" in text
    assert "| `kc` | 20.0 | 11.0 |" in text  # records per category, mean over seeds
    assert "not contradicted by ROUGE-L: none" in text and "on either metric: `kc`." in text
    assert "fresh seeds 0, 1, 2" in text and "load average 2.0 to 2.5" in text
    assert "per recipe and seed, median: `random` 12 s, `kc` 25 s" in text and "30 s to 42 s" in text


def test_the_cross_machine_table_names_what_held_and_what_changed(tmp_path: Path) -> None:
    """Hand-made results for two machines: a recipe ahead on one and level on the other is reported as changed."""
    tool = _tool()
    (tmp_path / "docs" / "results").mkdir(parents=True)

    def results(a_loss_high: float, acc_mean: float) -> dict:
        stat = {"mean": acc_mean, "low": acc_mean - 10, "high": acc_mean + 10, "n": 2}
        summary = [{"sampler": s, "pool_size": 30, "n_seeds": 2, "accuracy": stat, "heldout_loss": stat}
                   for s in ("a", "random", "b")]
        summary.append({"sampler": "full", "pool_size": 1000, "n_seeds": 2, "accuracy": stat})

        def row(s: str, metric: str, low: float, high: float) -> dict:
            return {"sampler": s, "baseline": "random", "pool_size": 30, "metric": metric, "mean": (low + high) / 2,
                    "low_adj": low, "high_adj": high, "n_comparisons": 2}

        paired = [row("a", "accuracy", 1.0, 5.0), row("a", "heldout_loss", -0.3, a_loss_high),
                  row("b", "accuracy", -5.0, -1.0), row("b", "heldout_loss", -0.1, 0.1)]
        return {"settings": {"samplers": ["a", "random", "b"], "seeds": [0, 1], "init_size": 10, "k": 10,
                             "rounds": 2}, "summary": {"by_sampler": summary}, "paired": paired}

    res = tmp_path / "docs" / "results"
    (res / "demo_5seeds.json").write_text(json.dumps(results(-0.1, 50.0)))
    (res / "demo_5seeds_avx2.json").write_text(json.dumps(results(0.2, 47.5)))
    (res / "demo_5seeds_avx2_conditions.json").write_text(json.dumps(
        {"conditions": {"command": "demo --seeds 0,1", "how": "AVX2 only", "machine": "m", "date": "d"}}))
    text = tool.demo_cross_machine(tmp_path)
    assert "| `a` | 50.0 [40.0, 60.0] | 47.5 [37.5, 57.5] |" in text
    assert "| ahead / level |" in text and "| behind / behind |" in text
    assert "hold under both instruction sets: `b` behind;" in text
    assert "changed: `a` (ahead -> level); accuracy alone ahead of `random` under both: `a`, under one only: none." in text
    assert tool.demo_cross_machine_verdict(tmp_path).startswith("Verdicts (")
    assert "| full data | 50.0 [40.0, 60.0] | 47.5 [37.5, 57.5] |" in text
