"""``diverseevol report``: tables and plots of one or more run directories."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_OK, echo

NAME = "report"
HELP = "tables and plots of one or more run directories"
DESCRIPTION = ("Write a Markdown/CSV table of per-round metrics and PNG plots for RUN_DIR(s) into --out (a folder\n"
               "replaced as a whole) and print the table.")

#: What write_report writes in --out; the folder may hold nothing else.
WRITES = ("*.md", "*.csv", "*.png")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="run directories written by the loop")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: RUN_DIR/report for one run, ./report otherwise)")


def handle(args: argparse.Namespace) -> int:
    from ..outputs import OutputFolder, claim_outputs, replace_folder
    from ..report import write_report

    for d in args.run_dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"run directory {str(d)!r} does not exist")
    out = args.out or (args.run_dirs[0] / "report" if len(args.run_dirs) == 1 else Path("report"))
    claim_outputs([OutputFolder("--out", out, writes=WRITES)], [("RUN_DIR", d) for d in args.run_dirs])
    written = replace_folder(out, lambda tmp: write_report([str(d) for d in args.run_dirs], str(tmp)))
    table = (out / written["table"].name).read_text(encoding="utf-8")
    if table:
        echo(table)
    echo(f"report written to {out}")
    return EXIT_OK
