"""Tests of one-shot selection (diverseevol.selection): context building, sampler run, record export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import diverseevol
from diverseevol.data import InstructionRecord
from diverseevol.errors import (
    IndexValidationError,
    MissingSignalError,
    PoolExhaustedError,
    UnknownSamplerError,
    ValidationError,
)
from diverseevol.selection import build_context, select_subset, selected_rows, write_selected_records


def _farthest_first(emb: np.ndarray, pool: list[int], k: int) -> tuple[list[int], list[float]]:
    """Brute-force greedy K-Center from a non-empty pool: full distance matrix, lowest index on ties."""
    x = emb.astype(np.float64)
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    centers = list(pool)
    picks, radii = [], []
    for _ in range(k):
        d = dist[:, centers].min(axis=1)
        d[centers] = -1.0
        i = int(np.flatnonzero(d == d.max())[0])
        picks.append(i)
        radii.append(float(d[i]))
        centers.append(i)
    return picks, radii


@pytest.fixture
def clustered() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    centers = np.array([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0], [50.0, 50.0]])
    labels = np.repeat(np.arange(4), 10)
    return (centers[labels] + rng.normal(size=(40, 2))).astype(np.float32), labels


def test_kcenter_matches_brute_force_farthest_first(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    emb, labels = clustered
    sel = select_subset(3, embeddings=emb, pool=[0])
    picks, radii = _farthest_first(emb, [0], 3)
    assert sel.indices.tolist() == picks
    np.testing.assert_allclose(sel.radii, radii, rtol=1e-5)
    assert sorted(labels[[0, *picks]].tolist()) == [0, 1, 2, 3]


def test_top_level_export_is_the_library_function() -> None:
    assert diverseevol.select_subset is select_subset


def test_pool_and_candidates_are_respected(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    emb, labels = clustered
    pool = np.flatnonzero(labels < 2)
    candidates = np.flatnonzero(labels == 3)
    sel = select_subset(4, embeddings=emb, pool=pool, candidates=candidates, params={"metric": "cosine"})
    assert len(set(sel.indices.tolist())) == 4
    assert set(sel.indices.tolist()) <= set(candidates.tolist())


def test_random_needs_only_the_number_of_records_and_is_deterministic_per_seed() -> None:
    a = select_subset(5, sampler="random", n_records=30, pool=[0, 1], seed=7).indices
    b = select_subset(5, sampler="random", n_records=30, pool=[0, 1], seed=7).indices
    c = select_subset(5, sampler="random", n_records=30, pool=[0, 1], seed=8).indices
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    assert a.dtype == np.int64 and not set(a.tolist()) & {0, 1}


def test_margin_picks_the_smallest_margins() -> None:
    margin = np.random.default_rng(0).random(25)
    sel = select_subset(4, sampler="margin", scores={"margin": margin})
    assert sorted(sel.indices.tolist()) == sorted(np.argsort(margin, kind="stable")[:4].tolist())
    assert sel.radii is None


def test_a_sampler_instance_is_run_as_given(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    emb, _ = clustered
    sampler = diverseevol.get_sampler("kcenter")
    assert select_subset(2, sampler=sampler, embeddings=emb, pool=[5]).indices.tolist() == \
        _farthest_first(emb, [5], 2)[0]
    with pytest.raises(ValidationError, match="params are constructor parameters"):
        select_subset(2, sampler=sampler, embeddings=emb, params={"metric": "cosine"})


def test_a_sampler_spec_is_one_way_to_give_the_parameters(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    emb, _ = clustered
    want = select_subset(3, sampler="kcenter", params={"metric": "cosine", "transform": "center"}, embeddings=emb,
                         pool=[0]).indices.tolist()
    for sampler, params in [("kcenter:metric=cosine,transform=center", None),
                            ("kcenter:transform=center", {"metric": "cosine"}),
                            ("kcenter:metric=cosine", {"metric": "cosine", "transform": "center"})]:
        got = select_subset(3, sampler=sampler, params=params, embeddings=emb, pool=[0]).indices.tolist()
        assert got == want, sampler
    with pytest.raises(ValidationError, match="'metric' is given twice"):
        select_subset(3, sampler="kcenter:metric=cosine", params={"metric": "euclidean"}, embeddings=emb)
    with pytest.raises(ValidationError, match="mode does not apply"):
        select_subset(3, sampler="kcenter:mode=one_time", embeddings=emb)
    with pytest.raises(ValidationError, match=r"Did you mean 'metric' \(not 'metrc'\)"):
        select_subset(3, sampler="kcenter:metrc=cosine", embeddings=emb)


def test_errors(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    emb, _ = clustered
    with pytest.raises(UnknownSamplerError, match="kcenter"):
        select_subset(2, sampler="kcentre", embeddings=emb)
    with pytest.raises(MissingSignalError, match="scores:margin"):
        select_subset(2, sampler="margin", embeddings=emb)
    with pytest.raises(PoolExhaustedError, match="k=39 is larger than the 38 candidate"):
        select_subset(39, embeddings=emb, pool=[0, 1])
    with pytest.raises(ValidationError, match=r"shape \(N, d\) = \(41, d\)"):
        select_subset(2, embeddings=emb, n_records=41)
    with pytest.raises(ValidationError, match=r"scores\['margin'\] must have shape \(40,\)"):
        select_subset(2, sampler="margin", embeddings=emb, scores={"margin": np.zeros(39)})
    with pytest.raises(IndexValidationError, match="disjoint"):
        select_subset(2, embeddings=emb, pool=[1, 2], candidates=[2, 3, 4])
    with pytest.raises(IndexValidationError):
        select_subset(2, embeddings=emb, pool=[40])
    with pytest.raises(ValidationError, match="number of records N"):
        select_subset(2, sampler="random")
    with pytest.raises(ValidationError, match="k must be a positive int"):
        select_subset(0, embeddings=emb)


class _Bad:
    requires = diverseevol.samplers.Requirements()

    def __init__(self, out: list[int]) -> None:
        self.out = out

    def select(self, ctx, k):  # type: ignore[no-untyped-def]
        return np.asarray(self.out)


@pytest.mark.parametrize(
    "out, fragment",
    [([5], "returned 1 indices for k=2"), ([5, 5], "duplicate"), ([0, 5], "not candidates")],
)
def test_bad_sampler_output_is_refused(out: list[int], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        select_subset(2, sampler=_Bad(out), n_records=10, pool=[0])


def test_build_context_derives_candidates_and_keeps_the_memmap(tmp_path: Path) -> None:
    np.save(tmp_path / "e.npy", np.arange(12, dtype=np.float32).reshape(6, 2))
    emb = np.load(tmp_path / "e.npy", mmap_mode="r")
    ctx = build_context(embeddings=emb, pool=[4, 1], seed=0)
    assert ctx.n_records == 6 and ctx.pool_idx.tolist() == [4, 1]
    assert ctx.candidate_idx.tolist() == [0, 2, 3, 5]
    assert isinstance(ctx.embeddings, np.memmap)


def test_export_writes_records_in_pick_order_with_meta(tmp_path: Path) -> None:
    records = [InstructionRecord(f"q{i}", "", f"a{i}", meta={"category": f"c{i}", "index": "clash"}) for i in range(5)]
    path = write_selected_records(tmp_path / "out.jsonl", records, np.array([3, 0]))
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    # records built in Python have no source object: their fields and meta, as a dict
    assert rows == [
        {"instruction": "q3", "input": "", "output": "a3", "category": "c3", "index": "clash"},
        {"instruction": "q0", "input": "", "output": "a0", "category": "c0", "index": "clash"},
    ]
    assert selected_rows(records, [3]) == [{"index": 3, "instruction": "q3", "input": "", "output": "a3",
                                            "category": "c3"}]
    assert selected_rows(records, []) == []
