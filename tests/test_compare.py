"""`diverseevol compare` and diverseevol.compare: the table against subset_report computed directly,
labels and norms counted by hand, the same P_0 for every sampler of a seed, and the CLI outputs."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from kcenter_oracle import kcenter_oracle

from diverseevol import SelectionContext, get_sampler
from diverseevol.cli import EXIT_OK, EXIT_USAGE, main
from diverseevol.compare import compare_samplers, parse_sampler_spec, parse_sampler_specs, record_labels
from diverseevol.errors import ValidationError
from diverseevol.run.seeds import initial_pool, round_rng
from diverseevol.subset_report import subset_report

N, D = 240, 6


def _data(seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Four blobs of unequal size and norm, one label per blob."""
    rng = np.random.default_rng(seed)
    sizes = [120, 60, 40, 20]
    centers = rng.normal(size=(4, D)) * np.array([[1.0], [2.0], [4.0], [8.0]])
    labels = np.repeat([f"c{i}" for i in range(4)], sizes)
    emb = np.concatenate([c + rng.normal(scale=0.5, size=(s, D)) for c, s in zip(centers, sizes)])
    perm = rng.permutation(N)
    return emb[perm].astype(np.float32), labels[perm].tolist()


def _direct(emb, labels, name, params, k, seed, pool_size):
    """The protocol written out: the loop's P_0 (initial_pool) and round-0 generator (round_rng), subset_report."""
    pool = initial_pool(N, pool_size, seed)
    cand = np.setdiff1d(np.arange(N), pool)
    rng = round_rng(seed, 0)
    ctx = SelectionContext(pool_idx=pool, candidate_idx=cand, rng=rng, embeddings=emb)
    out = get_sampler(name, **params).select(ctx, k)
    picks = np.asarray(getattr(out, "indices", out))
    return pool, cand, picks, subset_report(emb, np.concatenate([pool, picks]), labels=labels)


def test_parse_sampler_specs():
    specs = parse_sampler_specs(["kcenter,kcenter:transform=whiten,metric=cosine,kmeans",
                                 'random,kcenter:transform="project:dim=4,kind=rademacher",prune=false'])
    assert [(s.name, s.kwargs) for s in specs] == [
        ("kcenter", {}),
        ("kcenter", {"transform": "whiten", "metric": "cosine"}),
        ("kmeans", {}),
        ("random", {}),
        ("kcenter", {"transform": "project:dim=4,kind=rademacher", "prune": False}),
    ]
    assert specs[1].label == "kcenter:transform=whiten,metric=cosine"
    assert parse_sampler_spec("kmeans:n_clusters=5").params == {"n_clusters": 5}
    bads = ["", "kcenter,,random", "=x", "kcenter:transform", 'kcenter:transform="whiten', "kcenter,kcenter"]
    for bad in bads:
        with pytest.raises(ValidationError):
            parse_sampler_specs(bad)


def test_table_matches_subset_report_computed_directly():
    emb, labels = _data()
    seeds, k, pool_size = [3, 4], 30, 10
    samplers = {"kcenter": ("kcenter", {}),
                "kcenter:transform=normalize": ("kcenter", {"transform": "normalize"}),
                "kmeans": ("kmeans", {}), "random": ("random", {})}
    result = compare_samplers(emb, k, list(samplers), seeds=seeds, pool_size=pool_size, labels=labels)
    rows = {r["sampler"]: r for r in result.rows()}
    assert list(rows) == list(samplers)
    data_norm = np.linalg.norm(emb.astype(np.float64), axis=1)
    for label, (name, params) in samplers.items():
        reps, picks_ratio, runs = [], [], result.runs_of(label)
        assert [r.seed for r in runs] == seeds
        for seed, run in zip(seeds, runs):
            pool, cand, picks, rep = _direct(emb, labels, name, params, k, seed, pool_size)
            np.testing.assert_array_equal(run.pool_idx, pool)
            np.testing.assert_array_equal(run.picks, picks)
            reps.append(rep)
            picks_ratio.append(data_norm[picks].mean() / data_norm[cand].mean())
            # counted by hand
            subset = np.concatenate([pool, picks])
            counts = Counter(labels[i] for i in subset)
            assert run.report.label_counts == dict(sorted(counts.items()))
            p = np.array(list(counts.values())) / len(subset)
            assert run.report.label_entropy == pytest.approx(float(-(p * np.log(p)).sum()))
            assert run.report.norm_ratio == pytest.approx(data_norm[subset].mean() / data_norm.mean())
        row = rows[label]
        assert row["n"] == pool_size + k
        for key in ("vendi", "novelsum", "covering_radius", "norm_ratio", "label_entropy"):
            want = np.mean([getattr(r, key) for r in reps])
            assert row[key] == pytest.approx(want, rel=1e-12), (label, key)
        assert row["picks_norm_ratio"] == pytest.approx(np.mean(picks_ratio), rel=1e-9)
        for c in ("c0", "c1", "c2", "c3"):
            assert row[f"label:{c}"] == pytest.approx(np.mean([r.label_counts.get(c, 0) for r in reps]))
        assert row["min_label_count"] == pytest.approx(np.mean([min(r.label_counts.get(c, 0) for c in
                                                                    ("c0", "c1", "c2", "c3")) for r in reps]))
        assert row["time_s"] >= 0
    # K-Center from P_0 is the exact greedy K-Center
    pool = result.runs_of("kcenter")[0].pool_idx
    want, _ = kcenter_oracle(emb, pool, None, k)
    np.testing.assert_array_equal(result.runs_of("kcenter")[0].picks, want)
    # the same P_0 for every sampler of a seed, another one per seed
    for seed in seeds:
        pools = {r.label: tuple(r.pool_idx) for r in result.runs if r.seed == seed}
        assert len(set(pools.values())) == 1
    assert tuple(result.runs_of("random")[0].pool_idx) != tuple(result.runs_of("random")[1].pool_idx)
    assert result.data_label_entropy == pytest.approx(
        -sum(c / N * math.log(c / N) for c in Counter(labels).values()))


def test_no_labels_and_bad_arguments():
    emb, _ = _data()
    result = compare_samplers(emb, 5, "random", pool_size=0)
    row = result.rows()[0]
    assert row["label_entropy"] is None and row["n"] == 5 and not any(k.startswith("label:") for k in row)
    assert "label_entropy" not in result.to_markdown()
    with pytest.raises(ValidationError, match="needs model scores"):
        compare_samplers(emb, 5, "margin")
    with pytest.raises(ValidationError, match="k must be"):
        compare_samplers(emb, N, "random", pool_size=10)
    with pytest.raises(ValidationError, match="labels must have one entry per record"):
        compare_samplers(emb, 5, "random", labels=["a"])


@pytest.mark.parametrize("spec, seed", [("random", 3), ("kcenter", 5), ("kcenter:metric=cosine", 0)])
def test_pool_and_picks_are_the_loops_p0_and_first_picks(tmp_path: Path, spec: str, seed: int):
    """Issue 21: for the same seed and data, compare's P_0 and picks are an EvolutionLoop's P_0 and round-0 picks."""
    import loop_fakes as fakes

    from diverseevol import EvolutionLoop
    from diverseevol.samplers.spec import parse_sampler_spec

    init_size, k = 7, 6
    parsed = parse_sampler_spec(spec)
    loop = EvolutionLoop(fakes.make_records(), trainer=fakes.FakeTrainer(), embedder=fakes.FakeEmbedder(),
                         sampler=parsed.name, sampler_params=parsed.kwargs, init_size=init_size, k=k, rounds=1,
                         seed=seed, run_dir=tmp_path / "run", progress=False)
    result = loop.run()
    p0, first = result.pools[0], result.new_indices[0]
    # M_0's view of Z, as the loop's round 0 embedded it (the fake model is the mean of P_0's features)
    emb0 = fakes.FakeEmbedder()(fakes.model_from_rows(list(p0), 0), fakes.make_records())
    run = compare_samplers(emb0, k, spec, seeds=[seed], pool_size=init_size).runs[0]
    np.testing.assert_array_equal(run.pool_idx, p0)
    np.testing.assert_array_equal(run.picks, first)
    assert len(set(first.tolist())) == k and not set(first.tolist()) & set(p0.tolist())


def test_sizes_are_checked_with_the_numbers_that_matter():
    from diverseevol.compare import check_budget

    emb, _ = _data()
    # issue 22 item 10: the default pool size larger than N named "-80 records outside the initial pool"
    with pytest.raises(ValidationError, match=r"pool_size 100 \(--pool-size\) must be smaller than the number of "
                                              r"records, 20.*Lower pool_size below 20") as info:
        compare_samplers(emb[:20], 5, "random")
    assert "-80" not in str(info.value)
    with pytest.raises(ValidationError, match=r"k must be an int in \[1, N - pool_size\] = \[1, 10\]"):
        check_budget(20, 11, 10)
    assert check_budget(20, np.int64(10), 10) == 10
    with pytest.raises(ValidationError, match="pool_size must be a non-negative int"):
        check_budget(20, 1, -1)


def test_a_mode_is_refused_and_old_spellings_warn():
    emb, _ = _data()
    with pytest.raises(ValidationError, match="mode=one_time.*Drop mode="):
        compare_samplers(emb, 5, "kcenter:mode=one_time")
    with pytest.warns(DeprecationWarning, match="write 'kcenter:transform=normalize'"):
        old = compare_samplers(emb, 5, "kcenter@normalize", pool_size=10)
    new = compare_samplers(emb, 5, "kcenter:transform=normalize", pool_size=10)
    assert old.samplers == new.samplers == ["kcenter:transform=normalize"]
    np.testing.assert_array_equal(old.runs[0].picks, new.runs[0].picks)
    with pytest.raises(ValidationError, match="listed twice"):  # two spellings of one spec
        compare_samplers(emb, 5, "kcenter:metric=cosine,prune=false,kcenter:prune=false,metric=cosine")


def test_record_labels():
    from diverseevol.data import InstructionRecord

    recs = [{"instruction": "a", "category": "x"}, InstructionRecord("b", meta={"category": "y"})]
    assert record_labels(recs, "category") == ["x", "y"]
    with pytest.raises(ValidationError, match=r"Record 1 has no field 'topic'.*'category'"):
        record_labels([{"topic": "t"}, recs[1]], "topic")


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path: Path):
    emb, labels = _data(seed=1)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"task {i}", "context": "", "response": f"answer {i}",
                                        "category": labels[i]}) + "\n" for i in range(N)))
    path = tmp_path / "emb.npy"
    np.save(path, emb)
    return data, path, emb, labels


def _read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as fh:
        return {row["sampler"]: row for row in csv.DictReader(fh)}


def test_cli_compare_writes_the_table_csv_markdown_and_plots(files, tmp_path: Path, capsys):
    pytest.importorskip("matplotlib")
    data, path, emb, labels = files
    out = tmp_path / "cmp"
    rc = main(["compare", str(data), "--embeddings", str(path), "--k", "25", "--samplers",
               "kcenter,kcenter:transform=whiten,kmeans", "--samplers", "random", "--label", "category",
               "--seeds", "0,1", "--pool-size", "15", "--out", str(out)])
    assert rc == EXIT_OK
    printed = capsys.readouterr().out
    assert "kcenter:transform=whiten" in printed and "vendi" in printed and "(!)" in printed
    table = _read_csv(out / "compare.csv")
    assert list(table) == ["kcenter", "kcenter:transform=whiten", "kmeans", "random"]
    params = {"kcenter": ("kcenter", {}), "kcenter:transform=whiten": ("kcenter", {"transform": "whiten"}),
              "kmeans": ("kmeans", {}), "random": ("random", {})}
    for label, (name, kw) in params.items():
        reps = [_direct(emb, labels, name, kw, 25, seed, 15)[3] for seed in (0, 1)]
        row = table[label]
        assert int(row["n"]) == 40
        for key in ("vendi", "novelsum", "covering_radius", "norm_ratio", "label_entropy"):
            assert float(row[key]) == pytest.approx(np.mean([getattr(r, key) for r in reps]), rel=1e-12), key
        for c in sorted(set(labels)):
            want = np.mean([r.label_counts.get(c, 0) for r in reps])
            assert float(row[f"label:{c}"]) == pytest.approx(want)
    md = (out / "compare.md").read_text()
    assert "| sampler |" in md and "Mean records per label" in md and "seeds [0, 1]" in md
    runs = json.loads((out / "runs.json").read_text())
    assert len(runs) == 8 and {r["seed"] for r in runs} == {0, 1}
    for png in ("diversity.png", "labels.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_compare_no_plots_and_usage_errors(files, tmp_path: Path, capsys):
    data, path, _, _ = files
    out = tmp_path / "np"
    base = ["compare", str(data), "--embeddings", str(path), "--out", str(out)]
    assert main([*base, "--k", "5", "--samplers", "random", "--no-plots", "--pool-size", "0"]) == EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == ["compare.csv", "compare.md", "runs.json"]
    capsys.readouterr()
    for extra, msg in [
        (["--k", "5", "--samplers", "kcentre"], "kcentre"),
        (["--k", "5", "--samplers", "kcenter:metrik=cosine"], "metrik"),
        (["--k", "5", "--samplers", "margin"], "needs model scores"),
        (["--k", "5", "--seeds", "a,b"], "--seeds"),
        (["--k", str(N), "--samplers", "random"], "--k"),
    ]:
        assert main([*base, *extra]) == EXIT_USAGE, extra
        assert msg in capsys.readouterr().err
    assert main([*base, "--k", "5", "--samplers", "random", "--label", "topic"]) != EXIT_OK
    assert "no field 'topic'" in capsys.readouterr().err


def test_compare_keeps_the_data_label_counts_for_the_all_records_bar(files, tmp_path: Path) -> None:
    from collections import Counter

    from diverseevol.compare import compare_samplers

    _, _, emb, labels = files
    result = compare_samplers(emb, 10, ["random", "kcenter"], pool_size=5, seeds=[0, 1], labels=list(labels))
    assert result.data_label_counts == dict(Counter(labels))
    assert sum(result.data_label_counts.values()) == len(labels)
    pytest.importorskip("matplotlib")
    paths = result.plot(tmp_path / "plots")
    assert set(paths) == {"diversity_plot", "labels_plot"}
