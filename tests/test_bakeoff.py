"""The bake-off engine: shared P_0 and round 0, held-out records never selected, resume, paired intervals."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from diverseevol import EvolutionResult
from diverseevol.bakeoff import BakeoffSettings, HeldoutSpec, paired_differences, run_bakeoff, split_heldout
from diverseevol.errors import ValidationError

from bakeoff_fakes import CATEGORIES, Parts, make_records

RECIPES = ("random", "kcenter", "kcenter:mode=one_time")


def settings(**kw):
    base = dict(samplers=RECIPES, baseline="random", heldout=HeldoutSpec(label_field="category", per_label=3),
                init_size=6, k=4, rounds=2, seeds=(0, 1))
    base.update(kw)
    return BakeoffSettings(**base)


def events(log: Path) -> Counter:
    return Counter(tuple(line.split()[1:]) for line in log.read_text().splitlines())


@pytest.fixture
def log(tmp_path, monkeypatch):
    path = tmp_path / "calls.log"
    path.write_text("")
    monkeypatch.setenv("BAKEOFF_LOG", str(path))
    return path


def test_round0_is_paid_once_per_seed_and_every_recipe_starts_from_it(tmp_path, log):
    result = run_bakeoff(make_records(), settings(), Parts(), tmp_path / "b", plots=False, progress=False)
    calls = events(log)
    assert calls[("train", "0")] == 2          # one M_0 per seed, not one per recipe (3 recipes)
    assert calls[("embed", "0")] == 2          # Z embedded by M_0 once per seed
    assert calls[("judge", "0")] == 2
    # rounds 1 and 2 are trained per recipe: 3 recipes x 2 seeds
    assert calls[("train", "1")] == 6 and calls[("train", "2")] == 6
    # one-time K-Center and random never embed after round 0; iterative K-Center embeds in round 1
    assert calls[("embed", "1")] == 2 and calls[("embed", "2")] == 0
    assert {s: c for s, c in result.round0_computed.items()} == {0: {"train": 1, "embed": 1, "judge": 1},
                                                                   1: {"train": 1, "embed": 1, "judge": 1}}
    for seed in (0, 1):
        pools0 = [EvolutionResult.load(tmp_path / "b" / row["run_dir"]).pools[0]
                  for row in result.rows if row["seed"] == seed and row["round"] == 0]
        assert len(pools0) == 3 and all(np.array_equal(p, pools0[0]) for p in pools0)
        firsts = {row["sampler"]: row["heldout_loss"] for row in result.rows if row["seed"] == seed and row["round"] == 0}
        assert len(set(firsts.values())) == 1  # one M_0: the same round-0 metrics for every recipe


def test_heldout_records_are_never_selected(tmp_path):
    records = make_records()
    result = run_bakeoff(records, settings(), Parts(), tmp_path / "b", plots=False, progress=False)
    held = set(result.heldout_idx.tolist())
    assert len(held) == 3 * len(CATEGORIES)
    labels = [records[i].meta["category"] for i in result.heldout_idx]
    assert Counter(labels) == {c: 3 for c in CATEGORIES}
    for row in result.rows:
        pool = EvolutionResult.load(tmp_path / "b" / row["run_dir"]).pools[row["round"]]
        assert not held & set(result.train_idx[pool].tolist())
    data = json.loads((tmp_path / "b" / "results.json").read_text())
    assert set(data["heldout_idx"]) == held


def test_rerun_resumes_without_training_and_writes_the_same_rows(tmp_path, log):
    out = tmp_path / "b"
    run_bakeoff(make_records(), settings(), Parts(), out, plots=False, progress=False)
    first = (out / "results.json").read_bytes()
    log.write_text("")
    again = run_bakeoff(make_records(), settings(), Parts(), out, plots=False, progress=False)
    assert not [e for e in events(log) if e[0] == "train"]
    assert (out / "results.json").read_bytes() == first
    assert again.round0_computed == {0: {}, 1: {}}


def test_a_crashed_bakeoff_resumes_to_the_rows_of_an_uninterrupted_one(tmp_path, monkeypatch):
    monkeypatch.setenv("BAKEOFF_FAIL_ROUND", "2")
    with pytest.raises(RuntimeError, match="injected"):
        run_bakeoff(make_records(), settings(), Parts(), tmp_path / "crashed", plots=False, progress=False)
    monkeypatch.delenv("BAKEOFF_FAIL_ROUND")
    resumed = run_bakeoff(make_records(), settings(), Parts(), tmp_path / "crashed", plots=False, progress=False)
    clean = run_bakeoff(make_records(), settings(), Parts(), tmp_path / "clean", plots=False, progress=False)
    assert resumed.rows == clean.rows
    assert resumed.paired == clean.paired


def test_two_workers_give_the_rows_of_a_serial_run(tmp_path):
    serial = run_bakeoff(make_records(), settings(), Parts(), tmp_path / "serial", plots=False, progress=False)
    parallel = run_bakeoff(make_records(), settings(), Parts(), tmp_path / "par", workers=2, plots=False,
                           progress=False)
    assert parallel.rows == serial.rows
    assert (tmp_path / "par" / "results.json").read_bytes() == (tmp_path / "serial" / "results.json").read_bytes()


def test_worker_processes_report_every_recipe_and_seed_to_echo(tmp_path):
    lines = []
    run_bakeoff(make_records(), settings(), Parts(), tmp_path / "par", workers=2, plots=False, progress=False,
                echo=lines.append)
    s = settings()
    for seed in s.seeds:
        for spec in s.samplers:
            assert sum(line.startswith(f"[seed {seed}] {spec}: ") for line in lines) == 1, (seed, spec, lines)
        assert f"[seed {seed}] done" in lines
        # a seed's recipes are reported before the seed is done
        assert lines.index(f"[seed {seed}] done") > max(i for i, line in enumerate(lines)
                                                        if line.startswith(f"[seed {seed}] "
                                                                           f"{s.samplers[-1]}: "))


def test_rows_carry_loss_generation_metric_lengths_and_per_label_values(tmp_path):
    result = run_bakeoff(make_records(), settings(), Parts(), tmp_path / "b", plots=False, progress=False)
    assert len(result.rows) == 3 * 2 * 3  # recipes x seeds x pool sizes
    sizes = sorted({r["pool_size"] for r in result.rows})
    assert sizes == [6, 10, 14]
    row = result.rows[-1]
    for key in ("sampler", "seed", "pool_size", "heldout_loss", "rouge_l", "mean_words", "run_dir"):
        assert key in row
    assert set(row["per_label"]) == set(CATEGORIES)
    assert row["heldout_loss"] == pytest.approx(np.mean([row["per_label"][c]["heldout_loss"] for c in CATEGORIES]))
    final = result.paired_at("heldout_loss")
    assert {p["sampler"] for p in final} == {"kcenter", "kcenter:mode=one_time"}
    assert all(p["n"] == 2 for p in final)
    text = (tmp_path / "b" / "results.md").read_text()
    assert "kcenter:mode=one_time" in text and "heldout_loss - random" in text


def test_paired_differences_match_a_hand_computation():
    # differences kcenter - random over seeds 0..2: 1, 2, 3 -> mean 2, sd 1, se 1/sqrt(3)
    rows = []
    for seed, (base, other, third) in enumerate([(10.0, 11.0, 9.0), (10.0, 12.0, 9.0), (10.0, 13.0, 12.0)]):
        rows += [{"sampler": "random", "seed": seed, "pool_size": 5, "m": base},
                 {"sampler": "kcenter", "seed": seed, "pool_size": 5, "m": other},
                 {"sampler": "kmeans", "seed": seed, "pool_size": 5, "m": third}]
    out = {p["sampler"]: p for p in paired_differences(rows, baseline="random", metrics=["m"])}
    p = out["kcenter"]
    # t quantiles from tables: t_{0.975, 2} = 4.302653, t_{1 - 0.025/4, 2} = t_{0.99375, 2} = 8.860..., m = 2
    half = 4.302653 / np.sqrt(3)
    assert p["mean"] == pytest.approx(2.0)
    assert (p["low"], p["high"]) == pytest.approx((2 - half, 2 + half), abs=1e-5)
    assert p["n"] == 3 and p["seeds"] == [0, 1, 2] and p["n_comparisons"] == 2
    # Bonferroni over 2 comparisons: the 97.5% two-sided interval, t_{0.9875, 2} = 6.205347
    half_adj = 6.205347 / np.sqrt(3)
    assert (p["low_adj"], p["high_adj"]) == pytest.approx((2 - half_adj, 2 + half_adj), abs=1e-5)
    q = out["kmeans"]  # differences -1, -1, 2: mean 0, sd sqrt(3)
    assert q["mean"] == pytest.approx(0.0)
    assert q["high"] == pytest.approx(4.302653, abs=1e-5)


def test_paired_differences_skip_missing_values_and_unpaired_seeds():
    rows = [{"sampler": "random", "seed": 0, "pool_size": 5, "m": 1.0},
            {"sampler": "kcenter", "seed": 0, "pool_size": 5, "m": None},
            {"sampler": "kcenter", "seed": 1, "pool_size": 5, "m": 2.0}]
    assert paired_differences(rows, baseline="random", metrics=["m"]) == []


def test_split_heldout_refuses_a_label_it_would_empty():
    with pytest.raises(ValidationError, match="per_label = 20 holds out every record of label 'alpha'"):
        split_heldout(make_records(), HeldoutSpec(label_field="category", per_label=20))


@pytest.mark.parametrize("kw, message", [
    (dict(baseline="least_confidence"), "baseline 'least_confidence' is not one of"),
    (dict(samplers=("random", "random")), "lists 'random' twice"),
    (dict(samplers=("random",)), "at least two recipes"),
    (dict(seeds=()), "at least one seed"),
    (dict(seeds=(1, 1)), "repeat a seed"),
])
def test_settings_refuse_bad_input_with_a_fix(kw, message):
    with pytest.raises(ValidationError, match=message):
        settings(**kw)


def test_a_budget_larger_than_the_selectable_records_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="larger than the 51 selectable records"):
        run_bakeoff(make_records(), settings(init_size=40, k=10, rounds=2), Parts(), tmp_path / "b", plots=False,
                    progress=False)


def test_an_unknown_recipe_is_refused_before_any_training(tmp_path, log):
    with pytest.raises(Exception, match="kcentre"):
        run_bakeoff(make_records(), settings(samplers=("random", "kcentre")), Parts(), tmp_path / "b", plots=False,
                    progress=False)
    assert log.read_text() == ""


def test_plots_are_written_with_a_band_only_for_several_seeds(tmp_path):
    pytest.importorskip("matplotlib")
    result = run_bakeoff(make_records(), settings(seeds=(0,)), Parts(), tmp_path / "b", plots=True, progress=False)
    names = sorted(p.name for p in result.files if p.suffix == ".png")
    assert names == ["heldout_loss.png", "mean_words.png", "rouge_l.png"]
