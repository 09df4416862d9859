"""``diverseevol run``: the loop a YAML or TOML configuration file describes (resumed when it exists)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .common import EXIT_OK, echo, flag_names

NAME = "run"
HELP = "run DiverseEvol from a YAML or TOML configuration file"
DESCRIPTION = (
    "Run the loop described by CONFIG (sections data, model, sampler, budget, judge; keys\n"
    "run_dir and seed; see docs/cli.md). An existing run directory with the same data and\n"
    "configuration is resumed: finished rounds are not redone. Relative paths in CONFIG are\n"
    "relative to CONFIG's own folder."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="configuration file (.yaml/.yml needs pyyaml, .toml works out of the box)")
    p.add_argument("--overwrite", action="store_true", help="delete an existing run directory and start over")
    p.add_argument("--check", action="store_true",
                   help="validate the configuration (keys, values, the files it reads), print it and exit")
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


def handle(args: argparse.Namespace) -> int:
    from ..config import build_sampler, check_files, load_config, override

    config = override(load_config(args.config), sampler=args.sampler, run_dir=args.run_dir, report_to=args.report_to)
    build_sampler(config)  # fail fast on name / parameters (ConfigError naming sampler.params)
    check_files(config)
    if args.check:
        from .._files import redact_secrets, redact_text

        echo(redact_text(json.dumps(redact_secrets(config.to_dict()), indent=2)))
        return EXIT_OK
    from ..assemble_config import run_config

    with flag_names({"overwrite=True": "--overwrite"}), round_lines():
        result = run_config(config, overwrite=args.overwrite)
    echo(f"run finished: {config.run_dir}")
    summary = final_metrics_text(result)
    if summary:
        echo(summary)
    return EXIT_OK


def final_metrics_text(result: Any) -> str:
    """The last metrics row of an ``EvolutionResult``, as one line."""
    if not result.metrics:
        return ""
    last = result.metrics[-1]
    return "final round: " + ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in last.items() if not isinstance(v, (list, dict))
    )


@contextlib.contextmanager
def round_lines() -> Iterator[None]:
    """Show the loop's summary line of each round (``diverseevol.loop`` at INFO) whatever ``-v`` says.

    The loop logger is set to INFO for the run; a filter keeps its other INFO messages to the
    level the command line asked for. Both are undone afterwards.
    """
    from ..run.loop import ROUND_SUMMARY

    loop_logger = logging.getLogger("diverseevol.loop")
    wanted = loop_logger.getEffectiveLevel()

    def keep(record: logging.LogRecord) -> bool:
        return record.levelno >= wanted or bool(getattr(record, ROUND_SUMMARY, False))

    before = loop_logger.level
    loop_logger.setLevel(min(wanted, logging.INFO))
    loop_logger.addFilter(keep)
    try:
        yield
    finally:
        loop_logger.removeFilter(keep)
        loop_logger.setLevel(before)
