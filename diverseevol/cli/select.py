"""``diverseevol select``: one-shot selection of K records from a dataset (K-Center or any sampler)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    EXIT_OK,
    UsageError,
    add_data_options,
    argument,
    data_options,
    echo,
    nonneg_int,
    param,
    positive_int,
)

NAME = "select"
HELP = "select K records from a dataset with K-Center (or any sampler), one shot"
DESCRIPTION = (
    "Select K records from DATA and write DATA's own records to OUT, unchanged, in pick order\n"
    "(.json: a JSON array, .jsonl: one per line, .parquet: a table); --indices-out gives their\n"
    "row indices. The view of the data is an embeddings file (--embeddings, .npy of shape\n"
    "(N, d), memory-mapped) or a local model directory (--embedder): a causal LM embeds (and\n"
    "scores) the records, a sentence-transformers directory (modules.json) embeds their text.\n"
    "Under torchrun / accelerate launch each process embeds its share of DATA, the sampler runs\n"
    "once on rank 0 and rank 0 alone writes the outputs (docs/gpu_recipe.md#multi-node-selection)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", type=Path, help="instruction records (.json/.jsonl(.gz)/.parquet or a save_to_disk "
                                             "directory; Alpaca, Dolly, ShareGPT or OpenAI messages)")
    add_data_options(p)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--embeddings", type=Path, help=".npy file of shape (N, d), row i = record i of DATA")
    src.add_argument("--embedder", type=Path, help="local Hugging Face causal-LM directory, or sentence-transformers "
                                                   "directory (modules.json), used to embed DATA (extra hf / st)")
    p.add_argument("--k", type=positive_int, required=True, help="number of records to select")
    p.add_argument("--out", type=Path, required=True,
                   help="output file of DATA's selected records in pick order: .json, .jsonl (.gz) or .parquet")
    p.add_argument("--sampler", default="kcenter", help="any registered sampler (see `diverseevol samplers`)")
    p.add_argument("--param", type=param, action="append", default=[], metavar="KEY=VALUE",
                   help="sampler parameter, repeatable; values parsed as JSON when possible (e.g. --param metric=cosine)")
    p.add_argument("--pool", type=Path, default=None,
                   help="file of row indices already in the pool (JSON list or one integer per line); "
                        "they are never selected and K-Center measures distance to them")
    p.add_argument("--seed", type=nonneg_int, default=0,
                   help="seed of the sampler's random choices (e.g. K-Center's first center)")
    p.add_argument("--indices-out", type=Path, default=None, help="also write the selected row indices (.npy or .txt)")


def handle(args: argparse.Namespace) -> int:
    import numpy as np

    from .._progress import progress_enabled
    from .._validation import check_index_array
    from ..assemble import load_embeddings, record_embedder
    from ..comm import launched_communicator, rank_and_world
    from ..data import load_instructions
    from ..errors import IndexValidationError
    from ..export import export_format
    from ..outputs import check_outputs, claim_outputs
    from ..samplers import requirements_of
    from ..selection import read_index_file, select_subset, selection_spec, write_index_file, write_selected_records

    if args.embeddings is None and args.embedder is None:
        raise UsageError("select needs a view of the data: pass --embeddings FILE.npy or --embedder MODEL_DIR")
    rank, world = rank_and_world()
    if rank != 0 and args.embeddings is not None:
        return EXIT_OK  # nothing to embed: rank 0 selects and writes alone
    outputs = [("--out", args.out), ("--indices-out", args.indices_out)]
    inputs = [("DATA", args.data), ("--embeddings", args.embeddings), ("--embedder", args.embedder),
              ("--pool", args.pool)]
    (claim_outputs if rank == 0 else check_outputs)(outputs, inputs)  # one rank removes stale temporaries
    with argument("--sampler"):
        sampler = selection_spec(args.sampler, dict(args.param)).build()
    with argument("--out"):
        export_format(args.out)
    with argument("--format"):
        records = load_instructions(args.data, **data_options(args))
    n = len(records)
    with argument("--pool", (IndexValidationError,)):
        pool = read_index_file(args.pool, name="--pool") if args.pool is not None else np.zeros(0, dtype=np.int64)
        pool = check_index_array(pool, n, name="pool indices")
    if args.k > n - pool.size:
        raise UsageError(f"--k {args.k} is larger than the {n - pool.size} records that are not in the pool")
    need_scores = sorted(requirements_of(sampler).scores)
    if args.embeddings is not None:
        if need_scores:
            raise UsageError(
                f"sampler {args.sampler!r} needs model scores ({', '.join(need_scores)}); an embeddings file "
                f"does not carry them: pass --embedder MODEL_DIR instead"
            )
        with argument("--embeddings"):
            emb = load_embeddings(args.embeddings, n)
        picks = select_subset(args.k, sampler=sampler, embeddings=emb, pool=pool, n_records=n, seed=args.seed).indices
    else:
        embedder, model = record_embedder(args.embedder, scores=need_scores, progress=progress_enabled(),
                                          feature="--embedder")
        with launched_communicator() as comm:  # one process, or the launcher's ranks: each embeds its share
            picks = select_subset(args.k, sampler=sampler, records=records, embedder=embedder, model=model,
                                  pool=pool, seed=args.seed, comm=comm).indices
    if rank != 0:
        return EXIT_OK  # rank 0 writes the outputs
    write_selected_records(args.out, records, picks, source=args.data)
    if args.indices_out is not None:
        write_index_file(args.indices_out, picks)
    echo(f"selected {picks.size} of {n} records with {args.sampler!r} -> {args.out}"
         + (f" ({world} processes)" if world > 1 else ""))
    return EXIT_OK
