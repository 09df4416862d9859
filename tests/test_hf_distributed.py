"""Two CPU processes (gloo, torch.distributed.run): sharded embedding/scoring/generation equal the
one-process results, and a 2-round loop picks the same pools as a one-process run."""

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
pytest.importorskip("peft")

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from diverseevol import EvolutionLoop
    from diverseevol.data import InstructionRecord
    from diverseevol.comm import LocalCommunicator
    from diverseevol.hf import HFEmbedder, HFGenerator, HFScorer, HFTrainer, load_model

    base, out = Path(sys.argv[1]), Path(sys.argv[2])
    words = ["add", "list", "poem", "why", "sum", "sky", "blue", "code", "tree", "sort"]
    rng = np.random.default_rng(0)
    records = [InstructionRecord(" ".join(rng.choice(words, size=rng.integers(1, 6))), "",
                                 f"{i} " + " ".join(rng.choice(words, size=rng.integers(1, 6))))
               for i in range(21)]
    trainer = HFTrainer(base, lora=True, epochs=1, batch_size=4, per_device_batch_size=2, lr=1e-3, progress=False)
    result = EvolutionLoop(records, trainer=trainer, embedder=HFEmbedder(batch_size=4, progress=False),
                           sampler="kcenter", init_size=4, k=4, rounds=2, seed=0, run_dir=out / "run",
                           progress=False, vendi=False).run()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    handle = load_model(base)
    emb, sc = HFEmbedder(batch_size=3, progress=False).embed_and_score(handle, records)
    gen = HFGenerator(max_new_tokens=4, batch_size=2, progress=False)(handle, [r.instruction for r in records[:5]])
    check = {}
    if world > 1:  # each rank also computes everything alone and compares with the sharded result
        emb1, sc1 = HFEmbedder(batch_size=3, progress=False, comm=LocalCommunicator()).embed_and_score(handle, records)
        check = {"emb_equal": bool(np.allclose(emb, emb1, atol=1e-5)),
                 "scores_equal": all(np.allclose(sc[k], sc1[k], rtol=1e-5) for k in sc)}
    with open(out / f"rank{rank}.json", "w") as f:
        json.dump({"pools": [p.tolist() for p in result.pools], "world": world, "emb": emb.tolist(),
                   "margin": sc["margin"].tolist(), "gen": gen, **check}, f)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(args: list[str], cwd: Path, timeout: float = 240) -> None:
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        DIVERSEEVOL_PROGRESS="0",
        TOKENIZERS_PARALLELISM="false",
    )
    # own process group, so a hang kills the launcher *and* its workers
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{args} timed out after {timeout} s:\n{err[-6000:]}") from None
    if proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{out[-3000:]}\n{err[-6000:]}")


def test_two_processes_match_one(tmp_path):
    from diverseevol.hf.tiny import save_tiny_model

    base = save_tiny_model(tmp_path / "base", seed=0)
    script = tmp_path / "run_loop.py"
    script.write_text(SCRIPT)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    _run([sys.executable, str(script), str(base), str(one)], tmp_path)
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(_free_port()),
            str(script),
            str(base),
            str(two),
        ],
        tmp_path,
    )
    single = json.loads((one / "rank0.json").read_text())
    ranks = [json.loads((two / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert single["world"] == 1 and all(r["world"] == 2 for r in ranks)
    for r in ranks:
        assert r["emb_equal"] and r["scores_equal"]
        assert r["pools"] == single["pools"]
        assert r["gen"] == single["gen"]
        np.testing.assert_allclose(r["emb"], single["emb"], atol=1e-5)
    assert [len(p) for p in single["pools"]] == [4, 8, 12]
    # only rank 0 wrote the run directory, and the run finished
    status = (
        json.loads((two / "run" / "status.json").read_text())
        if (two / "run" / "status.json").exists()
        else None
    )
    assert status is None or status.get("state") == "finished"
