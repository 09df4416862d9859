"""``diverseevol export``: a run's selected records, unchanged, in the data's own shape."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import EXIT_OK, UsageError, add_data_options, argument, data_options, echo, nonneg_int, positive_int

NAME = "export"
HELP = "write a run's selected records, unchanged, in the data's own shape"
DESCRIPTION = (
    "Write the records of RUN_DIR's pool after round T (default: the last pool) to OUT in pick\n"
    "order, each the data's own record unchanged (.json: a JSON array, .jsonl: one per line,\n"
    ".parquet: a table), ready for the tool the data came from (TRL, LLaMA-Factory, axolotl)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory written by the loop")
    p.add_argument("--out", type=Path, required=True, help="output file: .json, .jsonl (.gz) or .parquet")
    p.add_argument("--round", type=nonneg_int, default=None, help="export the pool P_T decided in round T")
    p.add_argument("--data", type=Path, default=None,
                   help="the run's data (default: the data section of the run's configuration file)")
    add_data_options(p, "--data")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="keep only the first N records of the data, as a run started with records[:N] (default: "
                        "the first N when the data holds more records than the run and those N are the run's)")
    p.add_argument("--dataset-info", action="store_true",
                   help="also print the LLaMA-Factory dataset_info.json entry for OUT")


def handle(args: argparse.Namespace) -> int:
    from ..assemble_config import run_data
    from ..export import dataset_info_entry, export_format
    from ..outputs import claim_outputs
    from ..run.result import EvolutionResult

    with argument("--out"):
        export_format(args.out)
    given = data_options(args)
    if given and args.data is None:
        option = "--" + next(iter(given)).replace("_", "-")
        raise UsageError(f"{option} applies to --data; the run's configuration file says how its own data is read")
    if not args.run_dir.exists():
        raise FileNotFoundError(f"run directory {str(args.run_dir)!r} does not exist")
    if not args.run_dir.is_dir():
        raise UsageError(f"RUN_DIR {str(args.run_dir)!r} is a file; pass the run directory (its run_dir)")
    result = EvolutionResult.load(args.run_dir)
    if args.round is not None and args.round >= len(result.pools):
        raise UsageError(
            f"--round {args.round}: {result.run_dir} decided the pools of rounds 0 to {len(result.pools) - 1}; "
            f"pass one of them, or leave --round out for the last pool"
        )
    with argument("--data"):
        source = run_data(result, args.data)
    claim_outputs([("--out", args.out)], [
        ("RUN_DIR", args.run_dir),
        *source.inputs,
        ("the run's configuration file", source.config_file),
    ])
    with argument("--format"):
        records = source.records(**given)
    records = _limited(records, args.limit, result)
    path = result.export(args.out, round=args.round, records=records, source=source.path)
    chosen = result.subset_indices(args.round)
    echo(f"exported {chosen.size} records of {result.run_dir} -> {path}")
    if args.dataset_info:
        echo(json.dumps({path.stem: dataset_info_entry(path.name, [records[int(i)] for i in chosen])}, indent=2))
    return EXIT_OK


def _limited(records: list[Any], limit: int | None, result: Any) -> list[Any]:
    """``--limit N``: the first N records. Without it, the first n of a longer dataset when they are
    exactly the n records the run recorded (its data fingerprint), e.g. a run of ``records[:200]``."""
    if limit is not None:
        if limit > len(records):
            raise UsageError(f"--limit {limit}: the data has only {len(records)} records")
        return records[:limit]
    from ..data import data_fingerprint

    n = int((result.data or {}).get("n_records") or 0)
    if 0 < n < len(records):
        found = data_fingerprint(records[:n])
        if found == {k: result.data.get(k) for k in found}:
            echo(f"the run selected from the first {n} of the data's {len(records)} records (as --limit {n})")
            return records[:n]
    return records
