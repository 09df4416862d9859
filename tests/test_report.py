"""Reports of real run directories (EvolutionLoop + offline and pairwise judges) and of plain rows."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from diverseevol import EvolutionLoop, EvolutionResult
from diverseevol.data import InstructionRecord
from diverseevol.errors import ValidationError
from diverseevol.judge import Benchmark, ExactMatchJudge, PairwiseJudge, PairwiseLoopJudge
from diverseevol.judge.loopback import LoopbackChatServer, length_responder
from diverseevol.report import (
    RunMetrics,
    judge_metrics,
    load_runs,
    metric_table,
    pairwise_benchmarks,
    round_table,
    round_table_markdown,
    summary_table,
    table_markdown,
    write_csv,
    write_report,
)

N = 60
RECORDS = [InstructionRecord(f"task {i} family {i % 3}", "", f"answer {i}") for i in range(N)]
FEATURES = np.random.default_rng(0).normal(size=(N, 6))


@pytest.fixture(autouse=True)
def _fast_disk(monkeypatch):
    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "0")


def train(records, round, out_dir):
    """The 'model' knows the answers of the records it was trained on."""
    return {r.instruction: r.output for r in records}


def embed(model, records):
    return FEATURES


def generate(model, prompts):
    # Exact answers for known prompts; long answers for the pairwise toy judge grow with the model.
    return [model.get(p, f"{'word ' * len(model)}") for p in prompts]


def make_run(tmp_path, name, sampler, seed, server=None):
    exact = ExactMatchJudge([r.instruction for r in RECORDS], [r.output for r in RECORDS], generate,
                            groups=[f"family{i % 3}" for i in range(N)])
    judges = [exact]
    if server is not None:
        bench = Benchmark.from_lists("toy", ["q1", "q2", "q3"], ["word " * 60] * 3)
        pj = PairwiseJudge("toy", base_url=server.url, api_key="none", cache=tmp_path / "cache.sqlite", progress=False)
        judges.append(PairwiseLoopJudge(pj, bench, lambda model, prompts: ["word " * (5 * len(model))] * len(prompts)))

    def judge(model, round):
        out = {}
        for j in judges:
            out.update(j(model, round))
        return out

    loop = EvolutionLoop(RECORDS, trainer=train, embedder=embed, judge=judge, sampler=sampler, init_size=4, k=4,
                         rounds=3, seed=seed, run_dir=tmp_path / name, progress=False)
    loop.run()
    return tmp_path / name


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    with LoopbackChatServer(length_responder) as server:
        return [
            make_run(tmp, "kc", "kcenter", 0, server),
            make_run(tmp, "rand0", "random", 0, server),
            make_run(tmp, "rand1", "random", 1, server),
        ]


def test_tables_of_real_run_directories(run_dirs):
    runs = load_runs(run_dirs)
    assert [r.label for r in runs] == ["kcenter", "random", "random"]
    assert pairwise_benchmarks(runs) == ["toy"]
    assert judge_metrics(runs) == ["accuracy", "accuracy/family0", "accuracy/family1", "accuracy/family2"]
    table = summary_table(run_dirs)
    assert len(table) == 3
    # Oracle: the rows as the loop stored them.
    for row, d in zip(table, run_dirs):
        metrics = EvolutionResult.load(d).metrics
        rs = [m["toy/rs"] for m in metrics]
        best = int(np.argmax(rs))
        assert row["peak_rs"] == max(rs) and row["n_best"] == metrics[best]["pool_size"]
        assert row["best_wtr"] == max(m["toy/wtr"] for m in metrics)
        assert row["invalid"] == 0 and row["n_rounds"] == 4
    acc = metric_table(run_dirs, ["accuracy"])
    for row, d in zip(acc, run_dirs):
        metrics = EvolutionResult.load(d).metrics
        # Accuracy = share of Z in the pool, so the peak is the last round: pool 16 of 60.
        assert row["peak"] == pytest.approx(100 * 16 / 60) and row["n_at_peak"] == 16
        assert [m["pool_size"] for m in metrics] == [4, 8, 12, 16]


def test_write_report_files(run_dirs, tmp_path):
    written = write_report(run_dirs, tmp_path / "report")
    assert set(written) >= {"table", "table_csv", "metric_table_csv", "metrics_csv", "plot_rs", "plot_wtr",
                            "plot_accuracy", "plot_vendi"}
    md = written["table"].read_text()
    assert "| kcenter | 1 |" in md and "| random | 2 |" in md and "toy RS" in md and "accuracy peak" in md
    rows = list(csv.DictReader(io.StringIO(written["table_csv"].read_text())))
    assert [r["run"] for r in rows] == ["kc", "rand0", "rand1"]
    all_rows = list(csv.DictReader(io.StringIO(written["metrics_csv"].read_text())))
    assert len(all_rows) == 12 and {"label", "run", "round", "pool_size", "vendi", "accuracy"} <= set(all_rows[0])
    for key in ("plot_rs", "plot_wtr", "plot_accuracy", "plot_vendi"):
        data = written[key].read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_write_report_without_plots(run_dirs, tmp_path):
    written = write_report(run_dirs, tmp_path / "r", plots=False, labels=["KC", "R", "R"])
    assert not any(k.startswith("plot") for k in written)
    assert "| KC | 1 |" in written["table"].read_text()


def test_plain_rows_and_markdown_mean_std():
    rows_a = [{"round": t, "pool_size": 100 * (t + 1), "b/rs": v, "b/wtr": w}
              for t, (v, w) in enumerate([(50, 10), (70, 20), (60, 30)])]
    rows_b = [{"round": t, "pool_size": 100 * (t + 1), "b/rs": v, "b/wtr": w}
              for t, (v, w) in enumerate([(80, 5), (60, 5), (40, 5)])]
    runs = [RunMetrics.from_rows(rows_a, "kcenter", "s0"), RunMetrics.from_rows(rows_b, "kcenter", "s1")]
    table = summary_table(runs)
    assert [(r["peak_rs"], r["n_best"], r["best_wtr"]) for r in table] == [(70, 200, 30), (80, 100, 5)]
    md = table_markdown(table)
    # mean ± sample std over the two seeds: RS (70, 80) -> 75.00 ± 7.07; WTR (30, 5) -> 17.50 ± 17.68
    assert "| kcenter | 2 | 75.00 ± 7.07 | 17.50 ± 17.68 | 200/100 |" in md


def test_missing_and_null_values_are_skipped():
    rows = [{"round": 0, "pool_size": 10, "b/rs": None, "b/wtr": None, "vendi": None},
            {"round": 1, "pool_size": 20, "b/rs": 90.0, "b/wtr": 50.0, "vendi": 3.0}]
    table = summary_table([RunMetrics.from_rows(rows, "x")])
    assert table[0]["n_rounds"] == 1 and table[0]["n_best"] == 20


def test_csv_round_trip(tmp_path):
    text = write_csv([{"a": 1, "b": None}, {"a": 2, "c": "x,y"}], tmp_path / "t.csv")
    assert list(csv.DictReader(io.StringIO(text))) == [{"a": "1", "b": "", "c": ""}, {"a": "2", "b": "", "c": "x,y"}]


def test_bad_inputs():
    with pytest.raises(ValidationError, match="lacks 'round' or 'pool_size'"):
        RunMetrics.from_rows([{"round": 0}], "x")
    with pytest.raises(ValidationError, match="expected a run directory"):
        load_runs([42])
    with pytest.raises(ValidationError, match="labels"):
        load_runs([RunMetrics.from_rows([], "x")], labels=["a", "b"])


def test_runs_without_judge_metrics_and_empty_runs(tmp_path):
    rows = [{"round": t, "pool_size": 10 * (t + 1), "vendi": 2.0 + t, "covering_radius": 1.0 / (t + 1)} for t in range(3)]
    runs = [RunMetrics.from_rows(rows, "kcenter"), RunMetrics.from_rows([], "random", "crashed-early")]
    assert summary_table(runs) == [] and metric_table(runs) == []
    written = write_report(runs, tmp_path / "r")
    assert "No judge metrics" in written["table"].read_text()
    assert set(written) == {"table", "metrics_csv", "plot_vendi"}
    assert written["plot_vendi"].read_bytes()[:4] == b"\x89PNG"


def test_round_table_of_a_run_without_a_judge(tmp_path):
    rows = [{"round": t, "pool_size": 10 * (t + 1), "vendi": 2.0 + t, "covering_radius": 1.0 / (t + 1),
             "norm_ratio": None} for t in range(3)]
    table = round_table([RunMetrics.from_rows(rows, "kcenter")])
    assert [(r["round"], r["pool_size"], r["vendi"], r["covering_radius"]) for r in table] == [
        (0, 10, 2.0, 1.0), (1, 20, 3.0, 0.5), (2, 30, 4.0, 1 / 3)]
    assert "norm_ratio" not in table[0]  # no round recorded it
    md = round_table_markdown(table)
    assert "| round | pool size | Vendi | covering radius |" in md
    assert "| 1 | 20 | 3.000 | 0.500 |" in md and "| 2 | 30 | 4.000 | 0.333 |" in md
    text = write_report([RunMetrics.from_rows(rows, "kcenter")], tmp_path / "r", plots=False)["table"].read_text()
    assert "| 0 | 10 | 2.000 | 1.000 |" in text


def test_round_table_shows_the_judge_headline_metrics():
    rows = [{"round": 0, "pool_size": 5, "vendi": 1.5, "accuracy": 0.25, "accuracy/g1": 0.5},
            {"round": 1, "pool_size": 9, "vendi": None, "accuracy": 0.5, "accuracy/g1": 1.0}]
    table = round_table([RunMetrics.from_rows(rows, "random", "run-a")])
    assert [r["accuracy"] for r in table] == [0.25, 0.5] and "accuracy/g1" not in table[0]
    md = round_table_markdown(table)
    assert "### run-a (random)" in md and "| 1 | 9 |  | 0.500 |" in md
