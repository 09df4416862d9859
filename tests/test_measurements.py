"""diverseevol.measurements, the one home of pool measurements: covering radius against a brute force
(scipy's cdist), Vendi against the vendi-score package, the loop's per-round signals keyed by the metrics schema,
and every consumer (loop, subset_report, compare) using the same functions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from diverseevol import measurements
from diverseevol.errors import ValidationError
from diverseevol.measurements import (
    RADIUS_METRICS,
    SIGNAL_KEYS,
    covering_radius,
    label_counts,
    pool_measurements,
    pool_signals,
)

vendi = pytest.importorskip("vendi_score.vendi", reason="the vendi-score package (dev extra) is the oracle")


def _emb(n: int = 150, d: int = 7, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.2, 5.0, size=(n, 1))  # unequal norms: Euclidean and cosine radii differ
    return (rng.normal(size=(n, d)) * scale).astype(np.float32)


def _brute_radius(x: np.ndarray, subset: np.ndarray, reference: np.ndarray, metric: str) -> float:
    return float(cdist(x[reference].astype(np.float64), x[subset].astype(np.float64), metric=metric).min(axis=1).max())


@pytest.mark.parametrize("metric", RADIUS_METRICS)
@pytest.mark.parametrize("block_rows", [1, 7, 2048])
def test_covering_radius_against_cdist(metric: str, block_rows: int) -> None:
    x = _emb()
    rng = np.random.default_rng(1)
    subset = rng.choice(len(x), size=12, replace=False)
    reference = np.setdiff1d(np.arange(len(x)), subset)[::3]
    for ref in (None, reference):
        want = _brute_radius(x, subset, np.arange(len(x)) if ref is None else ref, metric)
        got = covering_radius(x, subset, reference_idx=ref, metric=metric, block_rows=block_rows)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_covering_radius_reads_a_memmap_and_refuses_bad_input(tmp_path) -> None:
    x = _emb(60, 4)
    np.save(tmp_path / "e.npy", x)
    mm = np.load(tmp_path / "e.npy", mmap_mode="r")
    subset = np.array([5, 0, 41])
    assert covering_radius(mm, subset, metric="euclidean") == pytest.approx(
        _brute_radius(x, subset, np.arange(60), "euclidean"), rel=1e-9)
    with pytest.raises(ValidationError, match="metric must be one of"):
        covering_radius(x, subset, metric="manhattan")
    with pytest.raises(ValidationError):
        covering_radius(x, [], metric="euclidean")
    zero = x.copy()
    zero[3] = 0.0
    with pytest.raises(ValidationError, match="all-zero row"):
        covering_radius(zero, [3, 4])


def test_the_loop_subset_report_and_compare_share_the_one_covering_radius() -> None:
    import diverseevol.subset_report as subset_report
    from diverseevol.compare import compare_samplers

    assert subset_report.covering_radius is measurements.covering_radius
    assert subset_report.novelsum is measurements.novelsum and subset_report.label_entropy is measurements.label_entropy
    x = _emb(80, 5)
    pool = np.arange(10)
    everything = np.arange(80)
    # the loop's figure covers Z \ P_t; the report's and compare's cover all of Z (P's own rows are at distance 0)
    assert pool_measurements(x, pool, everything[10:], "euclidean")["covering_radius"] == pytest.approx(
        _brute_radius(x, pool, everything[10:], "euclidean"), rel=1e-9)
    assert subset_report.subset_report(x, pool).covering_radius == pytest.approx(
        _brute_radius(x, pool, everything, "cosine"), rel=1e-9)
    run = compare_samplers(x, 5, "random", pool_size=10).runs[0]
    assert run.report.covering_radius == pytest.approx(_brute_radius(x, run.subset_idx, everything, "cosine"), rel=1e-9)


def test_vendi_against_the_vendi_score_package() -> None:
    x = _emb(90, 6).astype(np.float64)
    pool = np.random.default_rng(2).choice(90, size=25, replace=False)
    got = pool_measurements(x, pool, np.setdiff1d(np.arange(90), pool))["vendi"]
    assert got == pytest.approx(float(vendi.score_dual(x[pool], q=1)), rel=1e-9)
    from diverseevol.subset_report import subset_report

    for q in (0.5, 1.0, 2.0):
        rep = subset_report(x, pool, q=q)
        assert rep.vendi == pytest.approx(float(vendi.score_dual(x[pool], q=q)), rel=1e-9), q


def test_pool_signals_are_keyed_by_the_metrics_schema() -> None:
    from diverseevol.run.result import METRIC_KEYS
    from diverseevol.run.result import SIGNAL_KEYS as RESULT_SIGNAL_KEYS

    assert RESULT_SIGNAL_KEYS is SIGNAL_KEYS and set(SIGNAL_KEYS) <= set(METRIC_KEYS)
    x = _emb(40, 5).astype(np.float64)
    ref = _emb(40, 3, seed=9).astype(np.float64)
    labels = ["b", "a", "c", "a"] * 10
    pool = np.array([3, 17, 0, 22, 9, 31])
    cand = np.setdiff1d(np.arange(40), pool)
    got = pool_signals(x, pool, cand, metric="cosine", reference_embeddings=ref, labels=labels)
    assert list(got) == list(SIGNAL_KEYS)
    assert got["covering_radius"] == pytest.approx(_brute_radius(x, pool, cand, "cosine"), rel=1e-9)
    assert got["vendi"] == pytest.approx(float(vendi.score_dual(x[pool])), rel=1e-9)
    assert got["vendi_reference"] == pytest.approx(float(vendi.score_dual(ref[pool])), rel=1e-9)
    assert got["pool_sq_norm_mean"] == pytest.approx(float((x[pool] ** 2).sum(1).mean()))
    assert got["all_sq_norm_mean"] == pytest.approx(float((x**2).sum(1).mean()))
    norms = np.linalg.norm(x, axis=1)
    assert got["norm_ratio"] == pytest.approx(norms[pool].mean() / norms.mean())
    # by hand: row i has label "bac a"[i % 4]: rows 3, 17, 9, 31 -> a; 0 -> b; 22 -> c
    assert got["label_counts"] == {"a": 4, "b": 1, "c": 1}
    p = np.array(list(got["label_counts"].values())) / pool.size
    assert got["label_entropy"] == pytest.approx(float(-(p * np.log(p)).sum()))
    assert got["novelsum"] == pytest.approx(measurements.novelsum(x, pool))
    # without embeddings, a reference space or labels: those figures are None; NovelSum only for small pools
    bare = pool_signals(None, pool, cand)
    assert all(v is None for v in bare.values())
    assert pool_signals(x, pool, cand, novelsum_max_pool=5)["novelsum"] is None
    assert pool_signals(x, pool, cand, covering_radius=0.25)["covering_radius"] == 0.25


def test_label_counts_sort_labels_and_mixed_types() -> None:
    assert list(label_counts([10, 2, 2, 1])) == [1, 2, 10]
    assert label_counts(["b", 1, "b"]) == {1: 1, "b": 2}
    assert label_counts([]) == {}
