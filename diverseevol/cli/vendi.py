"""``diverseevol vendi``: the Vendi score of a dataset or a subset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import EXIT_OK, UsageError, argument, echo, nonneg_float

NAME = "vendi"
HELP = "Vendi score (effective number of distinct records) of a dataset or subset"
DESCRIPTION = (
    "Compute the Vendi score of DATA's embeddings (cosine-similarity kernel): 1 for identical\n"
    "records, N for N orthogonal ones. Uses the d x d side, so it scales to large N."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", type=Path, nargs="?", default=None,
                   help="the records (JSON/JSONL); optional, used to check the row count of the embeddings")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--embeddings", type=Path, help=".npy file of shape (N, d)")
    src.add_argument("--embedder", type=Path, help="local Hugging Face causal-LM directory used to embed DATA (extra hf)")
    p.add_argument("--q", type=nonneg_float, default=1.0,
                   help="order of the entropy, >= 0 or inf (1 = Shannon, the paper's)")
    p.add_argument("--indices", type=Path, default=None,
                   help="score only these rows (JSON list, one integer per line, or .npy), e.g. a selected pool")
    p.add_argument("--json", action="store_true", help="print a JSON object instead of a sentence")


def handle(args: argparse.Namespace) -> int:
    import numpy as np

    from .._progress import progress_enabled
    from .._validation import check_index_array
    from ..assemble import embed_with_model, load_embeddings
    from ..diversity import vendi_score
    from ..errors import IndexValidationError
    from ..selection import read_index_file

    records = None
    if args.data is not None:
        from ..data import load_instructions

        records = load_instructions(args.data)
    if args.embeddings is not None:
        with argument("--embeddings"):
            emb = load_embeddings(args.embeddings, len(records) if records is not None else None)
    else:
        if records is None:
            raise UsageError("--embedder needs DATA: the records to embed")
        emb, _ = embed_with_model(args.embedder, records, progress=progress_enabled(), feature="--embedder")
    if args.indices is not None:
        with argument("--indices", (IndexValidationError,)):
            idx = check_index_array(read_index_file(args.indices, name="--indices"), emb.shape[0], name="--indices")
        emb = np.asarray(emb[np.sort(idx)])
    score = float(vendi_score(np.asarray(emb), q=args.q))
    if args.json:
        echo(json.dumps({"vendi": score, "q": args.q, "n": int(emb.shape[0]), "d": int(emb.shape[1])}))
    else:
        echo(f"Vendi score (q={args.q:g}): {score:.4f} over {emb.shape[0]} records of dimension {emb.shape[1]}")
    return EXIT_OK
