"""Exact K-Center over embeddings sharded across processes (torch.distributed).

Each process memory-maps only its own rows of Z from a .npy file and the processes agree on every
pick; the result equals single-process ``kcenter_select`` on the whole file.

Run it on CPUs (gloo) or GPUs (nccl, one process per GPU):

    torchrun --standalone --nproc_per_node 2 examples/kcenter_distributed.py
    torchrun --standalone --nproc_per_node 8 examples/kcenter_distributed.py --records 1000000 --dim 4096
    # several nodes: run on every node with the same endpoint
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \\
        examples/kcenter_distributed.py --emb /shared/z.npy

Without torchrun, ``python examples/kcenter_distributed.py`` starts 2 local CPU processes itself.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--emb",
        type=Path,
        default=None,
        help=".npy of Z (memory-mapped shards; written synthetic if missing)",
    )
    p.add_argument("--records", dest="n", type=int, default=20_000, help="rows of the synthetic Z")
    p.add_argument("--dim", dest="d", type=int, default=64, help="dimension of the synthetic Z")
    p.add_argument("--pool", type=int, default=100, help="size of the random initial pool (0: empty pool)")
    p.add_argument("--k", type=int, default=100, help="records to select")
    p.add_argument("--metric", choices=["euclidean", "cosine"], default="euclidean")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--strided", action="store_true", help="give rank r the rows r, r+W, r+2W, ... (not a block)"
    )
    p.add_argument("--out", type=Path, default=None, help="rank 0 saves the picks here (.npy)")
    p.add_argument("--check", action="store_true", help="rank 0 compares with single-process kcenter_select")
    p.add_argument("--nproc", type=int, default=2, help="processes to spawn when not started by torchrun")
    return p.parse_args(argv)


def make_data(n: int, d: int, seed: int) -> np.ndarray:
    """Clustered synthetic embeddings (float32), identical on every rank for the same seed."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(50, d)).astype(np.float32) * 4
    return centers[rng.integers(50, size=n)] + rng.normal(size=(n, d)).astype(np.float32)


def run(args: argparse.Namespace) -> None:
    import torch.distributed as dist

    from diverseevol.comm import rank_and_world, shard_slice
    from diverseevol.kernels.distributed import kcenter_select_distributed, load_shard

    rank, world = rank_and_world()
    if args.emb is not None:
        if rank == 0 and not args.emb.exists():
            tmp = args.emb.with_suffix(".tmp.npy")
            np.save(tmp, make_data(args.n, args.d, args.seed))
            os.replace(tmp, args.emb)
        dist.barrier()
        full = np.load(args.emb, mmap_mode="r")  # nothing is read until rows are used
    else:
        full = make_data(args.n, args.d, args.seed)
    n = int(full.shape[0])
    if args.strided:
        local_idx = np.arange(n, dtype=np.int64)[shard_slice(n, rank, world, strided=True)]
        local_emb = np.asarray(full[local_idx])  # a copy of this rank's rows only
    elif args.emb is not None:
        local_emb, local_idx = load_shard(str(args.emb), rank, world)  # memory-mapped block of rows
    else:
        rows = shard_slice(n, rank, world)  # a contiguous block of rows
        local_emb, local_idx = full[rows], np.arange(n, dtype=np.int64)[rows]
    pool = np.sort(np.random.default_rng(args.seed + 1).choice(n, size=args.pool, replace=False))

    t0 = time.perf_counter()
    picks, radii = kcenter_select_distributed(
        local_emb,
        local_idx,
        pool,
        args.k,
        metric=args.metric,
        random_state=args.seed,
        return_radii=True,
        progress=False,
    )
    elapsed = time.perf_counter() - t0
    if rank == 0:
        print(
            f"{world} ranks: selected {len(picks)} of {n} records in {elapsed:.2f} s; "
            f"first picks {picks[:5].tolist()}, final radius {radii[-1]:.4f}"
        )
        if args.out is not None:
            np.save(args.out, picks)
        if args.check:
            from diverseevol import kcenter_select

            ref = kcenter_select(
                full, pool, args.k, metric=args.metric, random_state=args.seed, backend="numpy"
            )
            same = bool(np.array_equal(ref, picks))
            print(f"same picks as single-process kcenter_select: {same}")
            if not same:
                raise SystemExit(1)


def _spawned(rank: int, world: int, init_file: str, args: argparse.Namespace) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        run(args)
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if "RANK" in os.environ:  # started by torchrun: one process of the job
        import torch
        import torch.distributed as dist

        from diverseevol.comm import TorchCommunicator

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
        TorchCommunicator.from_env()  # nccl on cuda:LOCAL_RANK when CUDA is available, else gloo
        try:
            run(args)
        finally:
            dist.destroy_process_group()
        return
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_spawned, args=(args.nproc, str(Path(tmp) / "init"), args), nprocs=args.nproc)


if __name__ == "__main__":
    main()
