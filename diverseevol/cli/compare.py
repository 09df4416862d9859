"""``diverseevol compare``: several samplers on one set of embeddings, side by side."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from .common import (
    EXIT_OK,
    UsageError,
    add_data_options,
    argument,
    data_options,
    echo,
    nonneg_int,
    positive_int,
    seed_list,
)

NAME = "compare"
HELP = "compare samplers on one set of embeddings (diversity, label balance, norm bias, time)"
DESCRIPTION = (
    "Run each sampler per seed from the same random initial pool (--pool-size records) and\n"
    "measure the initial pool + K picks: Vendi, NovelSum, covering radius, norm ratios and, with\n"
    "--label, per-label counts and their entropy. Prints one table (means over seeds) and writes\n"
    "compare.csv, compare.md, runs.json and PNG plots to --out, a folder replaced as a whole.\n"
    "The view of the data is an embeddings file (--embeddings; `diverseevol embed` writes one) or a\n"
    "local model directory (--embedder) that embeds DATA first. Decide before spending GPU hours."
)
EPILOG = (
    "Sampler specs: NAME or NAME:KEY=VALUE,KEY=VALUE, e.g. kcenter:transform=whiten,metric=cosine;\n"
    'quote a value with commas: kcenter:transform=\'"project:dim=256,kind=rademacher"\'.'
)

#: What compare writes in --out (Comparison.write); the folder may hold nothing else.
WRITES = ("compare.csv", "compare.md", "runs.json", "*.png")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", type=Path, help="instruction records (.json/.jsonl(.gz)/.parquet or a save_to_disk "
                                             "directory; any record format); row i = embedding row i")
    add_data_options(p)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--embeddings", type=Path, help=".npy file of shape (N, d), memory-mapped (`diverseevol embed` "
                                                     "writes one)")
    src.add_argument("--embedder", type=Path, help="local Hugging Face causal-LM directory, or sentence-transformers "
                                                   "directory (modules.json), used to embed DATA (extra hf / st)")
    p.add_argument("--k", type=positive_int, required=True, help="records each sampler selects")
    p.add_argument("--samplers", action="append", default=None, metavar="LIST",
                   help="comma-separated sampler specs, repeatable "
                        "(default: kcenter,kcenter:transform=whiten,kmeans,random)")
    p.add_argument("--label", default=None, help="record field with a label to count per subset (e.g. category)")
    p.add_argument("--seeds", type=seed_list, default=(0,), help="comma-separated seeds; each gets its own initial pool")
    p.add_argument("--pool-size", type=nonneg_int, default=100, help="random initial pool P_0 before the picks")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder for the CSV, Markdown, runs and plots (replaced as a whole; a new folder, "
                        "or one compare wrote before)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")


def handle(args: argparse.Namespace) -> int:
    from .._optional import is_available
    from .._progress import progress_enabled
    from ..assemble import embed_with_model, load_embeddings
    from ..compare import DEFAULT_SAMPLERS, build_samplers, check_budget, compare_samplers, record_labels
    from ..data import load_instructions
    from ..errors import ValidationError
    from ..outputs import OutputFolder, claim_outputs, replace_folder

    try:  # a bad spec or parameter is a usage error, found before any work
        specs = [spec for spec, _ in build_samplers(args.samplers or list(DEFAULT_SAMPLERS))]
    except ValidationError as exc:
        raise UsageError(str(exc)) from None
    if args.embeddings is None and args.embedder is None:
        raise UsageError("compare needs a view of the data: pass --embeddings FILE.npy (`diverseevol embed` writes "
                         "one) or --embedder MODEL_DIR")
    claim_outputs([OutputFolder("--out", args.out, writes=WRITES)],
                  [("DATA", args.data), ("--embeddings", args.embeddings), ("--embedder", args.embedder)])
    with argument("--format"):
        records = load_instructions(args.data, **data_options(args))
    n = len(records)
    if args.embeddings is not None:
        with argument("--embeddings"):
            emb = load_embeddings(args.embeddings, n)
    try:
        check_budget(n, args.k, args.pool_size)
    except ValidationError as exc:
        raise UsageError(str(exc)) from None
    if args.embedder is not None:
        emb, _ = embed_with_model(args.embedder, records, progress=progress_enabled(), feature="--embedder")
    labels = None
    if args.label:
        with argument("--label"):
            labels = record_labels(records, args.label)
        _check_labels(labels, args.label)
    result = compare_samplers(emb, args.k, specs, seeds=list(args.seeds), pool_size=args.pool_size, labels=labels)
    plots = not args.no_plots
    if plots and not is_available("matplotlib"):
        print('diverseevol compare: matplotlib is not installed; plots skipped (pip install "diverseevol[plot]")',
              file=sys.stderr)
        plots = False
    written = replace_folder(args.out, lambda tmp: result.write(tmp, plots=plots))
    echo(result.conditions())
    echo()
    echo(result.to_text())
    echo()
    for name, path in written.items():
        echo(f"{name}: {args.out / path.name}")
    return EXIT_OK


def _check_labels(labels: Sequence[Any], field: str) -> None:
    """``--label`` names one value per record (a string, a number): not a list or a mapping."""
    for i, value in enumerate(labels):
        if isinstance(value, (list, dict, set)) or not isinstance(value, Hashable):
            raise UsageError(
                f"--label {field!r}: record {i} holds a {type(value).__name__} ({str(value)[:60]}), not one label; "
                f"name a field with one value per record, such as Dolly's 'category'"
            )
