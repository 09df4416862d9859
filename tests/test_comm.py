"""diverseevol.comm: the one module for multi-process work.

Two real gloo processes started with the launcher's environment (WORLD_SIZE=2, RANK=0/1) import the
loop, resolve the communicator and exchange data, and must not load diverseevol.hf or transformers.
The sharding helper is checked against numpy.array_split and hand-written splits, the rank lookup
against environment variables.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from diverseevol.comm import (
    LocalCommunicator,
    active_communicator,
    collective_device,
    gather_rows,
    rank_and_world,
    rank_device,
    resolve_communicator,
    run_on_rank0,
    shard_slice,
)
from diverseevol.errors import OptionalDependencyError, ValidationError

ROOT = Path(__file__).resolve().parents[1]

TWO_RANKS = textwrap.dedent(
    """
    import importlib, json, sys
    import numpy as np
    loop_module = "diverseevol.run"
    importlib.import_module(loop_module)
    from diverseevol.comm import TorchCommunicator, gather_rows, rank_and_world, resolve_communicator, run_on_rank0

    comm = resolve_communicator(None)
    value = run_on_rank0(comm, lambda: {"from": comm.rank})
    def fail():
        raise KeyError("only rank 0 runs this")
    try:
        run_on_rank0(comm, fail)
        error = None
    except KeyError as exc:
        error = str(exc)
    rows = gather_rows(comm, np.array([comm.rank, comm.rank + 2]), np.full((2, 3), comm.rank, np.float32), 4)
    comm.barrier()
    print(json.dumps({
        "loop_module": loop_module,
        "type": type(comm).__name__,
        "rank": comm.rank,
        "world": comm.world_size,
        "lookup": list(rank_and_world()),
        "value": value,
        "error": error,
        "rows": rows.tolist(),
        "loaded": [m for m in ("diverseevol.hf", "transformers") if m in sys.modules],
    }))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_rank_loop_resolves_torch_communicator_without_hf(tmp_path):
    pytest.importorskip("torch")
    script = tmp_path / "two_ranks.py"
    script.write_text(TWO_RANKS)
    port = str(_free_port())
    procs = []
    for rank in (0, 1):
        env = dict(
            os.environ,
            WORLD_SIZE="2",
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            OMP_NUM_THREADS="1",
            CUDA_VISIBLE_DEVICES="",  # gloo on CPU even on a GPU machine
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=180)
            assert p.returncode == 0, err[-3000:]
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:  # pragma: no cover
                p.kill()
    want_rows = [[0.0] * 3, [1.0] * 3, [0.0] * 3, [1.0] * 3]
    for rank, got in enumerate(outs):
        assert got["loaded"] == [], f"rank {rank} loaded {got['loaded']} to resolve a communicator"
        assert got["type"] == "TorchCommunicator"
        assert (got["rank"], got["world"]) == (rank, 2)
        assert got["lookup"] == [rank, 2]
        assert got["value"] == {"from": 0}  # rank 0's result on every rank
        assert got["error"] is not None and "only rank 0 runs this" in got["error"]
        assert got["rows"] == want_rows


@pytest.mark.parametrize("n", [0, 1, 2, 7, 10, 11, 100])
@pytest.mark.parametrize("world", [1, 2, 3, 4, 8])
def test_shard_slice_contiguous_matches_array_split(n, world):
    items = np.arange(n)
    shares = [items[shard_slice(n, r, world)] for r in range(world)]
    expected = np.array_split(items, world)  # the first n % world parts one longer
    for got, want in zip(shares, expected):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.concatenate(shares), items)  # contiguous, in order, covering
    sizes = [len(s) for s in shares]
    assert max(sizes) - min(sizes) <= 1


def test_shard_slice_hand_computed():
    assert [shard_slice(10, r, 3) for r in range(3)] == [slice(0, 4), slice(4, 7), slice(7, 10)]
    assert [shard_slice(2, r, 4) for r in range(4)] == [slice(0, 1), slice(1, 2), slice(2, 2), slice(2, 2)]
    order = np.array([9, 3, 5, 0, 8, 1, 7])
    assert order[shard_slice(len(order), 0, 3, strided=True)].tolist() == [9, 0, 7]
    assert order[shard_slice(len(order), 1, 3, strided=True)].tolist() == [3, 8]
    assert order[shard_slice(len(order), 2, 3, strided=True)].tolist() == [5, 1]


def test_shard_slice_keeps_memory_maps(tmp_path):
    np.save(tmp_path / "z.npy", np.arange(20, dtype=np.float32).reshape(10, 2))
    z = np.load(tmp_path / "z.npy", mmap_mode="r")
    part = z[shard_slice(10, 1, 3)]
    assert isinstance(part, np.memmap)
    np.testing.assert_array_equal(part[:, 0], [8, 10, 12])


@pytest.mark.parametrize(("n", "rank", "world"), [(10, 3, 3), (10, -1, 2), (10, 0, 0), (-1, 0, 1)])
def test_shard_slice_rejects_bad_arguments(n, rank, world):
    with pytest.raises(ValidationError, match="got"):
        shard_slice(n, rank, world)


def test_old_home_hf_distributed_warns_and_still_resolves():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")  # diverseevol.hf needs both
    import diverseevol.comm as comm

    with pytest.warns(DeprecationWarning, match=r"diverseevol\.hf\.distributed is deprecated.*diverseevol\.comm"):
        import diverseevol.hf.distributed as old
    assert old.TorchCommunicator is comm.TorchCommunicator
    assert old.active_communicator is comm.active_communicator and old.gather_rows is comm.gather_rows
    order = np.array([4, 2, 0, 3, 1])  # shard_indices is the strided share
    assert old.shard_indices(order, 1, 2).tolist() == [2, 3]
    assert old.shard_indices(order, 0, 2).dtype == np.int64


def test_old_home_distributed_warns_and_still_resolves():
    import diverseevol.comm as comm

    with pytest.warns(DeprecationWarning, match=r"diverseevol\.distributed is deprecated.*diverseevol\.comm"):
        import diverseevol.distributed as old
    assert old.LocalCommunicator is comm.LocalCommunicator
    assert old.resolve_communicator is comm.resolve_communicator


@pytest.fixture
def no_process_group():
    if "torch" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():  # pragma: no cover
            pytest.skip("a process group is initialised in this process")


def test_rank_and_world_from_environment(monkeypatch, no_process_group):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert rank_and_world() == (0, 1)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert rank_and_world() == (2, 4)
    monkeypatch.setenv("WORLD_SIZE", "")  # set but empty: as if unset
    monkeypatch.setenv("RANK", "0")
    assert rank_and_world() == (0, 1)


@pytest.mark.parametrize(("rank", "world", "match"), [("1", "two", "WORLD_SIZE"), ("4", "4", "RANK=4")])
def test_rank_and_world_rejects_bad_environment(monkeypatch, no_process_group, rank, world, match):
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("WORLD_SIZE", world)
    with pytest.raises(ValidationError, match=match):
        rank_and_world()


def test_rank_lookup_does_not_import_torch():
    code = "import sys; from diverseevol.comm import rank_and_world; print(*rank_and_world(), 'torch' in sys.modules)"
    env = dict(os.environ, RANK="1", WORLD_SIZE="3")
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["1", "3", "False"]


def test_resolve_communicator_without_torch_names_the_extra(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(OptionalDependencyError, match=r'pip install "diverseevol\[hf\]"') as info:
        resolve_communicator(None)
    assert isinstance(info.value, ImportError)
    assert "WORLD_SIZE=2" in str(info.value)


def test_resolve_communicator_single_process_and_given(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert isinstance(resolve_communicator(None), LocalCommunicator)
    mine = LocalCommunicator()
    assert resolve_communicator(mine) is mine
    with pytest.raises(ValidationError, match="barrier"):
        resolve_communicator(type("NoBarrier", (), {"rank": 0, "world_size": 1, "broadcast_object": None})())


class _FakeRank:
    """Rank ``rank`` of 2; broadcast_object returns what rank 0 would have sent (``sent``)."""

    world_size = 2

    def __init__(self, rank: int, sent: object = None) -> None:
        self.rank, self.sent, self.broadcasts = rank, sent, []

    def broadcast_object(self, obj, src=0):
        self.broadcasts.append(obj)
        return obj if self.rank == src else self.sent

    def barrier(self):
        pass


def test_run_on_rank0_sends_value_and_exception():
    calls = []
    assert run_on_rank0(LocalCommunicator(), lambda: calls.append(1) or 5) == 5
    rank0 = _FakeRank(0)
    assert run_on_rank0(rank0, lambda: "x") == "x"
    assert rank0.broadcasts == [(True, "x")]
    with pytest.raises(ZeroDivisionError):
        run_on_rank0(rank0, lambda: 1 / 0)
    assert rank0.broadcasts[-1][0] is False and isinstance(rank0.broadcasts[-1][1], ZeroDivisionError)
    assert run_on_rank0(_FakeRank(1, (True, [1, 2])), lambda: calls.append(2)) == [1, 2]
    with pytest.raises(KeyError, match="boom"):
        run_on_rank0(_FakeRank(1, (False, KeyError("boom"))), lambda: calls.append(3))
    assert calls == [1]  # fn ran on rank 0 of the local run only, never on rank 1


def test_active_communicator_and_local_gather(no_process_group):
    assert active_communicator(LocalCommunicator()) is None
    fake = _FakeRank(0)
    assert active_communicator(fake) is fake
    if "torch" not in sys.modules:
        assert active_communicator() is None
    rows = np.arange(6.0).reshape(3, 2)
    got = gather_rows(None, np.array([2, 0, 1]), rows, 3)
    np.testing.assert_array_equal(got, rows[[1, 2, 0]])


def test_device_rule(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert rank_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert rank_device() == torch.device("cuda", 1)  # LOCAL_RANK modulo the visible GPUs
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert rank_device() == torch.device("cuda", 3)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 2)
    assert collective_device("nccl") == torch.device("cuda", 2)
    assert collective_device("gloo") == torch.device("cpu")
