"""The CLI's shape (issue 21 item 4): one module per command, arguments beside the handler, one list.

Adding a command is one module and one entry of ``diverseevol.cli.COMMANDS``: shown with a toy
command registered only in that list.
"""

from __future__ import annotations

import argparse
import ast
import sys
import types
from pathlib import Path

import pytest

from diverseevol import cli
from diverseevol.cli import COMMANDS, EXIT_OK, EXIT_USAGE, build_parser, main

PACKAGE = Path(cli.__file__).parent
STDLIB = set(sys.stdlib_module_names)


def test_every_command_is_one_module_with_its_arguments_and_handler() -> None:
    names = [c.NAME for c in COMMANDS]
    assert names == ["demo", "run", "bakeoff", "embed", "select", "vendi", "report", "compare", "export", "samplers"]
    for command in COMMANDS:
        assert command.__name__ == f"diverseevol.cli.{command.NAME}"
        assert command.HELP and command.DESCRIPTION
        assert callable(command.add_arguments) and callable(command.handle)
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == names


def test_command_modules_import_only_the_standard_library_at_start_up() -> None:
    """`diverseevol --help` stays instant: the library is imported inside the handlers."""
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] in STDLIB for a in node.names), (path.name, ast.dump(node))
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module.split(".")[0] in STDLIB or node.module == "__future__", (path.name, node.module)
            elif isinstance(node, ast.ImportFrom):  # relative: only the package's own modules
                assert node.level == 1, (path.name, node.module)


def test_param_values_are_parsed_in_one_place() -> None:
    """`--param KEY=VALUE` goes through cli.common.param only (one call site to switch grammars)."""
    uses = [p.name for p in PACKAGE.glob("*.py") if "type=param" in p.read_text(encoding="utf-8")]
    assert uses == ["select.py"]
    from diverseevol.cli.common import param

    assert param("metric=cosine") == ("metric", "cosine") and param("n=3") == ("n", 3)
    with pytest.raises(argparse.ArgumentTypeError):
        param("novalue")


def test_a_new_command_is_one_module_and_one_registry_line(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    toy = types.ModuleType("toy")
    toy.NAME, toy.HELP, toy.DESCRIPTION = "toy", "a toy command", "Echo a number."

    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--n", type=cli.common.positive_int, required=True)

    def handle(args: argparse.Namespace) -> int:
        cli.common.echo(f"toy {args.n}")
        return EXIT_OK

    toy.add_arguments, toy.handle = add_arguments, handle
    monkeypatch.setattr(cli, "COMMANDS", (*COMMANDS, toy))
    assert main(["toy", "--n", "3"]) == EXIT_OK
    assert capsys.readouterr().out == "toy 3\n"
    assert main(["toy", "--n", "0"]) == EXIT_USAGE  # the shared argument types and exit codes apply
    assert main(["--help"]) == EXIT_OK and "a toy command" in capsys.readouterr().out
    assert main(["toy", "--debug", "--help"]) == EXIT_OK  # the general options are added for it
