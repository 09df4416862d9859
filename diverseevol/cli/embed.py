"""``diverseevol embed``: a dataset's embeddings to a ``.npy`` file (memory-mapped, resumable)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_OK, UsageError, argument, echo, positive_int

NAME = "embed"
HELP = "embed a dataset with a local model into a .npy file (resumable; sharded under torchrun)"
DESCRIPTION = (
    "Embed every record of DATA with MODEL and write OUT, a float32 .npy of shape (N, d), row i =\n"
    "record i, ready for `select --embeddings` and `compare --embeddings`. MODEL is a local causal-LM\n"
    "directory or .gguf file (mean-pooled hidden states) or a sentence-transformers directory\n"
    "(modules.json), detected as `select --embedder` does. The rows go to OUT.partial chunk by chunk\n"
    "(OUT.progress.json says how far); a killed run started again goes on from the last finished\n"
    "chunk, and OUT appears only when complete. Under torchrun each rank embeds its share and rank 0\n"
    "writes the file."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", type=Path, help="instruction records (.json/.jsonl(.gz)/.parquet or a save_to_disk "
                                             "directory; Alpaca, Dolly, ShareGPT or OpenAI messages)")
    p.add_argument("--embedder", type=Path, required=True,
                   help="local Hugging Face causal-LM directory (or .gguf file), or sentence-transformers directory")
    p.add_argument("--out", type=Path, required=True, help="output .npy file, float32 of shape (N, d)")
    p.add_argument("--format", default=None, help="record format of DATA when detection is not wanted: alpaca, "
                                                  "dolly, sharegpt or openai")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="embedder batch size (default: the embedder's own)")
    p.add_argument("--max-length", type=positive_int, default=None,
                   help="token limit per record of a causal LM (default: the embedder's own, 512)")
    p.add_argument("--chunk-size", type=positive_int, default=256,
                   help="records per chunk: the unit of progress and of resuming")


def handle(args: argparse.Namespace) -> int:
    from .._progress import progress_enabled
    from ..comm import launched_communicator, rank_and_world
    from ..embed_file import embed_file, partial_paths
    from ..outputs import check_outputs, claim_outputs

    if args.out.suffix != ".npy":
        raise UsageError(f"--out {str(args.out)!r}: the embeddings are written as a .npy file; name it FILE.npy")
    partial, progress_file = partial_paths(args.out)
    rank = rank_and_world()[0]
    (claim_outputs if rank == 0 else check_outputs)(  # one rank removes stale temporaries
        [("--out", args.out), ("--out's partial file", partial), ("--out's progress file", progress_file)],
        [("DATA", args.data), ("--embedder", args.embedder)])
    options = {"batch_size": args.batch_size, "max_length": args.max_length}
    if args.max_length is not None and (args.embedder / "modules.json").is_file():
        raise UsageError("--max-length applies to a causal LM; a sentence-transformers model has its own limit")
    with launched_communicator(), argument("--format"):  # the process group it starts is destroyed at the end
        path = embed_file(args.data, args.embedder, args.out, format=args.format, chunk_size=args.chunk_size,
                          progress=progress_enabled(), **{k: v for k, v in options.items() if v is not None})
    if rank != 0:
        return EXIT_OK  # rank 0 wrote the file and reports it
    import numpy as np

    emb = np.load(path, mmap_mode="r")
    echo(f"embedded {emb.shape[0]} records ({emb.shape[1]} dimensions) with {args.embedder} -> {path}")
    return EXIT_OK
