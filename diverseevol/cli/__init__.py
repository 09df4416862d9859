"""The ``diverseevol`` command.

Subcommands: ``demo`` (offline comparison of samplers on a synthetic task suite), ``run`` (a run
from a YAML/TOML configuration), ``embed`` (a dataset's embeddings to a .npy file), ``select`` (one-shot selection over a dataset and its
embeddings), ``vendi`` (diversity of a dataset), ``report`` (tables and plots of run
directories), ``compare`` (several samplers on one set of embeddings), ``bakeoff`` (recipes x
seeds judged on held-out records), ``export`` (a run's selected records) and ``samplers`` (list the registered samplers).

Each command is one module of this package holding its arguments beside its handler
(``NAME``, ``HELP``, ``DESCRIPTION``, optional ``EPILOG``, ``add_arguments(parser)``,
``handle(args) -> int``; see :class:`~diverseevol.cli.common.Command`), listed once in
:data:`COMMANDS`. Adding a command is one new module and one line there. What commands share
(exit codes, argument types, the help formatter, the error rule) is in :mod:`diverseevol.cli.common`.
The commands parse, call the library and print; the work is in the library.

Exit codes: 0 success, 1 runtime error, 2 usage error (see :mod:`diverseevol.cli.common` for the
rule). Errors are printed as one line on stderr; ``--debug`` adds the traceback.

Only the standard library is imported at start-up, so ``diverseevol --help`` is instant; each
command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from . import bakeoff, compare, demo, embed, export, report, run, samplers, select, vendi
from .common import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, Command, Formatter, UsageError, usage_error_types

__all__ = ["COMMANDS", "EXIT_OK", "EXIT_RUNTIME", "EXIT_USAGE", "UsageError", "build_parser", "main"]

#: The commands, in the order ``diverseevol --help`` lists them: one line per command.
COMMANDS: tuple[Command, ...] = (demo, run, bakeoff, embed, select, vendi, report, compare, export, samplers)  # type: ignore[assignment]

logger = logging.getLogger("diverseevol.cli")


def _version() -> str:
    from .._version import __version__

    return __version__


def _general_options(suppress: bool) -> argparse.ArgumentParser:
    """``--debug``, ``-v``, ``--no-progress``. Commands repeat them with SUPPRESS defaults, so that
    ``diverseevol --debug demo`` and ``diverseevol demo --debug`` both work."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("general options")
    kw: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    g.add_argument("--debug", action="store_true", help="show the full traceback of errors and debug logs", **kw)
    g.add_argument("-v", "--verbose", action="count", help="more log output (-v info, -vv debug)",
                   **(kw or {"default": 0}))
    g.add_argument("--no-progress", action="store_true",
                   help="hide progress bars (also: DIVERSEEVOL_PROGRESS=0)", **kw)
    return p


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``diverseevol`` command, one sub-parser per module of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="diverseevol",
        description=(
            "Self-evolving, diversity-based data selection (DiverseEvol) for instruction tuning.\n\n"
            "Start with `diverseevol demo`: an offline comparison of K-Center, random,\n"
            "least-confidence and margin sampling on a synthetic task suite with a tiny model."
        ),
        epilog="Run `diverseevol COMMAND --help` for the options of a command. Exit codes: 0 ok, 1 runtime error, 2 usage error.",
        formatter_class=Formatter,
        parents=[_general_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _general_options(suppress=True)
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, parents=[common], formatter_class=Formatter, help=command.HELP,
                           description=command.DESCRIPTION, epilog=getattr(command, "EPILOG", None))
        command.add_arguments(p)
        p.set_defaults(handler=command.handle)
    return parser


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


def _setup_logging(verbose: int, debug: bool) -> None:
    level = logging.DEBUG if debug or verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    root = logging.getLogger("diverseevol")
    if not any(getattr(h, "_diverseevol_cli", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._diverseevol_cli = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)


@contextlib.contextmanager
def _progress_switch(off: bool) -> Iterator[None]:
    """``--no-progress``: ``DIVERSEEVOL_PROGRESS=0`` for the command (every bar of the library asks
    :func:`~diverseevol._progress.show_progress`), then the caller's value back."""
    from .._progress import ENV_VAR

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


def _one_line(exc: BaseException) -> str:
    """The error as one line, with secrets and key-shaped strings removed (:func:`~diverseevol._files.redact_text`)."""
    from .._files import redact_text

    text = redact_text(" ".join(str(exc).split())) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, UsageError) else text


def _run_command(args: argparse.Namespace, debug: bool) -> int:
    """Run the parsed command; errors become one line on stderr and an exit code."""
    try:
        return args.handler(args)
    except BrokenPipeError:  # e.g. `diverseevol samplers | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        print("diverseevol: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the command's error boundary
        usage = isinstance(exc, usage_error_types())
        if debug:
            from .._files import redact_text

            print(redact_text(traceback.format_exc()), file=sys.stderr, end="")
        print(f"diverseevol {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE if usage else EXIT_RUNTIME
