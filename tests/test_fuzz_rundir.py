"""Fuzz the run-directory reader and resume on randomly corrupted copies of a real small run.

A small run of the fake parts (tests/loop_fakes.py; embeddings and scores cached) is made once.
Each case copies it, corrupts one to three of the library's files (truncation, random bytes, a
flipped byte, another JSON value, a deletion, a .npy of another length or dtype, an edited index
list), then reads it with RunDirectory / EvolutionResult.load and resumes it with the same loop.
Files under ``model/`` belong to the trainer and are not corrupted.

Oracle (tests/fuzz_support.py): a correct result or a typed DiverseEvolError with a message.
``load``: pools are 1-D integer arrays of distinct rows in range. Resume: the pools equal the
uncorrupted run's (a corrupted file is either refused, or recomputed, never silently used).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

import loop_fakes as fakes
from fuzz_support import examples, outcome

from diverseevol.run import EvolutionLoop, EvolutionResult, RunDirectory

N = 30
SETTINGS = {"init_size": 5, "k": 3, "rounds": 2, "sampler": "kcenter", "cache_embeddings": True, "seed": 1}


def _loop(run_dir: Path, sampler: str = "kcenter") -> EvolutionLoop:
    return EvolutionLoop(
        fakes.make_records(N),
        trainer=fakes.FakeTrainer(),
        embedder=fakes.FakeEmbedder(),
        scorer=fakes.FakeScorer(),
        judge=fakes.FakeJudge(),
        run_dir=run_dir,
        progress=False,
        **{**SETTINGS, "sampler": sampler},
    )


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> tuple[Path, list[list[int]]]:
    run = tmp_path_factory.mktemp("fuzz_rundir") / "run"
    result = _loop(run).run()
    return run, [np.asarray(p).tolist() for p in result.pools]


def _library_files(run: Path) -> list[str]:
    return sorted(
        str(p.relative_to(run))
        for p in run.rglob("*")
        if p.is_file() and "model" not in p.relative_to(run).parts and p.name != ".lock"
    )


json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-5, N + 5), st.floats(allow_nan=False), st.text(max_size=5)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def corruption(draw, path: Path) -> str:
    """Corrupt the file at ``path`` in place; return a description."""
    data = path.read_bytes()
    kinds = ["truncate", "bytes", "flip", "delete", "json"]
    if path.suffix == ".npy":
        kinds += ["npy_len", "npy_dtype", "npy_shape", "npy_nan"]
    if path.name in ("pool.json", "selection.json"):
        kinds += ["edit_indices"] * 3
    kind = draw(st.sampled_from(kinds))
    if kind == "truncate":
        path.write_bytes(data[: draw(st.integers(0, max(len(data) - 1, 0)))])
    elif kind == "bytes":
        path.write_bytes(draw(st.binary(max_size=40)))
    elif kind == "flip" and data:
        i = draw(st.integers(0, len(data) - 1))
        path.write_bytes(data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1 :])
    elif kind == "delete":
        path.unlink()
    elif kind == "json":
        path.write_text(json.dumps(draw(json_values)))
    elif kind.startswith("npy"):
        arr = np.load(path)
        if kind == "npy_len":
            arr = (
                arr[: draw(st.integers(0, max(len(arr) - 1, 0)))]
                if draw(st.booleans())
                else np.concatenate([arr, arr[:2]])
            )
        elif kind == "npy_dtype":
            arr = arr.astype(draw(st.sampled_from([np.float16, np.int64, np.complex64, np.bool_])))
        elif kind == "npy_shape":
            arr = arr.reshape(-1) if arr.ndim > 1 else arr[:, None]
        else:
            arr = arr.astype(np.float64)
            arr.reshape(-1)[draw(st.integers(0, arr.size - 1))] = np.nan
        np.save(path, arr)
    elif kind == "edit_indices":
        obj = json.loads(data)
        new = draw(
            st.one_of(
                st.lists(st.integers(-2, N + 2), max_size=8),
                st.lists(st.floats(0, N, allow_nan=False), min_size=1, max_size=4),
                st.sampled_from([[0, 0, 1], [N], [-1], [2**63], [1.5]]),
            )
        )
        if isinstance(obj, dict):
            key = draw(st.sampled_from(sorted(obj) or ["indices"]))
            obj[key] = new
        else:
            obj = new
        path.write_text(json.dumps(obj))
    return f"{kind} {path.name}"


@examples(60)
@given(data=st.data())
def test_corrupted_run_is_refused_or_read_correctly(original, data) -> None:
    run, pools = original
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "run"
        shutil.copytree(run, copy)
        files = _library_files(copy)
        chosen = data.draw(
            st.lists(st.sampled_from(files), min_size=1, max_size=3, unique=True), label="files"
        )
        for name in chosen:
            data.draw(corruption(copy / name), label="corruption")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome(lambda: RunDirectory(copy).read_header())
            ok, result = outcome(EvolutionResult.load, copy)
            if ok:
                for pool in result.pools:
                    pool = np.asarray(pool)
                    assert pool.ndim == 1 and np.issubdtype(pool.dtype, np.integer), pool
                    assert len(np.unique(pool)) == len(pool) and ((pool >= 0) & (pool < N)).all(), pool
            ok, resumed = outcome(lambda: _loop(copy).run())
        if ok:
            got = [np.asarray(p).tolist() for p in resumed.pools]
            assert got == pools, f"resume after {chosen} gave other pools: {got} != {pools}"
