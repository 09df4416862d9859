"""Issue 22 items 7, 10 and 12 (run directory): a cached signal replaced by another valid array is
detected on resume (its checksum is recorded when it is written), NaN in a cached ``.npy`` names the
file and does not blame the embedder, and a ``run_dir`` that is a regular file is a typed error.

The run directories are real (a run that failed in its judge at round 2, whose round 2 then
reselects from its caches); each file is replaced by hand, as a user or a faulty copy would.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import loop_fakes as fakes
from test_reliability_rundir import make, partial_run, rdir

from diverseevol.errors import RunDirectoryError
from diverseevol.run import EvolutionResult


@pytest.fixture(autouse=True)
def _fast_disk(monkeypatch):
    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "0")


def _stopped_before_selection(tmp_path, **kw):
    run_dir = partial_run(tmp_path, **kw)
    (rdir(run_dir, 2) / "selection.json").unlink()  # round 2 reselects from its cached signals
    return run_dir


def _refused(run_dir, pattern, **kw) -> str:
    loop = make(run_dir, **kw)
    with pytest.raises(RunDirectoryError, match=pattern) as info:
        loop.run()
    assert 2 not in loop.embedder.calls  # refused before anything was recomputed or selected
    return str(info.value)


REPLACEMENTS = {
    "rows permuted": lambda e: e[::-1].copy(),
    "one value nudged": lambda e: e + np.eye(*e.shape, dtype=e.dtype) * 1e-3,
    "another run's": lambda e: fakes.base_features().astype(e.dtype),
}


@pytest.mark.parametrize("name", sorted(REPLACEMENTS))
def test_cached_embeddings_replaced_by_a_valid_array_are_refused(tmp_path, name):
    run_dir = _stopped_before_selection(tmp_path)
    path = rdir(run_dir, 2) / "embeddings.npy"
    original = np.load(path)
    replaced = REPLACEMENTS[name](original)
    assert replaced.shape == original.shape and replaced.dtype == original.dtype
    np.save(path, replaced)
    message = _refused(run_dir, r"round_002.embeddings\.npy")
    assert "checksum" in message and "Delete" in message and str(path) in message


def test_deleting_the_named_file_recomputes_it(tmp_path):
    ref = make(tmp_path / "ref").run()
    run_dir = _stopped_before_selection(tmp_path)
    path = rdir(run_dir, 2) / "embeddings.npy"
    np.save(path, np.load(path)[::-1])
    _refused(run_dir, "embeddings")
    path.unlink()  # the fix the message names
    got = make(run_dir).run()
    for a, b in zip(got.pools, ref.pools):
        np.testing.assert_array_equal(a, b)


def test_cached_scores_replaced_by_a_valid_array_are_refused(tmp_path):
    run_dir = _stopped_before_selection(tmp_path, sampler="margin", cache_embeddings=False)
    path = rdir(run_dir, 2) / "scores" / "margin.npy"
    np.save(path, np.load(path)[::-1].copy())
    message = _refused(run_dir, r"round_002.scores.margin\.npy", sampler="margin", cache_embeddings=False)
    assert "checksum" in message


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_in_a_cached_array_names_the_file_not_the_embedder(tmp_path, value):
    run_dir = _stopped_before_selection(tmp_path)
    path = rdir(run_dir, 2) / "embeddings.npy"
    emb = np.load(path)
    emb[3, 1] = value
    np.save(path, emb)
    for sidecar in (True, False):  # with its checksum record, and as a run directory written before them
        if not sidecar:
            (rdir(run_dir, 2) / "embeddings.json").unlink()
        message = _refused(run_dir, r"round_002.embeddings\.npy")
        assert "embedder" not in message.lower() and "Delete" in message
        assert ("checksum" in message) if sidecar else ("row 3" in message and "NaN or Inf" in message)


def test_intact_caches_and_caches_without_a_checksum_record_are_used(tmp_path):
    ref = make(tmp_path / "ref").run()
    run_dir = _stopped_before_selection(tmp_path)
    record = json.loads((rdir(run_dir, 2) / "embeddings.json").read_text())
    assert record["shape"] == [fakes.N_RECORDS, fakes.DIM] and len(record["sha256"]) == 64
    (rdir(run_dir, 2) / "embeddings.json").unlink()  # as written by an older version
    loop = make(run_dir)
    got = loop.run()
    assert 2 not in loop.embedder.calls
    for a, b in zip(got.pools, ref.pools):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("where", ["the file", "below the file"])
def test_a_run_dir_that_is_a_regular_file_is_a_run_directory_error(tmp_path, where):
    target = tmp_path / "results.json"
    target.write_text("{}")
    run_dir = target if where == "the file" else target / "run"
    with pytest.raises(RunDirectoryError) as info:
        make(run_dir).run()
    text = str(info.value)
    assert str(target) in text and "is a file" in text and "run_dir" in text and "directory" in text
    assert target.read_text() == "{}"
    with pytest.raises(RunDirectoryError, match="is a file"):
        EvolutionResult.load(run_dir)


def test_a_record_left_by_a_deleted_array_never_blocks_its_recomputation(tmp_path, monkeypatch):
    """The user deleted the array (the fix), the embedder now gives other values, and the process is
    killed right after writing the new array: the old record must not refuse the new array."""
    from diverseevol.run import directory

    run_dir = _stopped_before_selection(tmp_path)
    path = rdir(run_dir, 2) / "embeddings.npy"
    path.unlink()
    real = directory.write_json

    def killed_after_the_array(target, obj):
        if Path(target).name == "embeddings.json":
            raise KeyboardInterrupt  # stands for kill -9 between the two writes
        return real(target, obj)

    monkeypatch.setattr(directory, "write_json", killed_after_the_array)

    class OtherEmbedder(fakes.FakeEmbedder):
        def __call__(self, model, records):
            return super().__call__(model, records) * 2.0

    with pytest.raises(KeyboardInterrupt):
        make(run_dir, embedder=OtherEmbedder()).run()
    monkeypatch.setattr(directory, "write_json", real)
    assert path.is_file() and not (rdir(run_dir, 2) / "embeddings.json").exists()
    assert make(run_dir, embedder=OtherEmbedder()).run().finished
