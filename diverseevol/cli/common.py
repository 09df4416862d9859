"""What every command of the ``diverseevol`` command line shares: exit codes, the usage error, the
help formatter, argument types, printing, and the rule that turns errors into exit codes.

Exit codes (docs/cli.md): 0 success; 1 runtime error; 2 usage error. The rule:

* **2**, the command line or the configuration file asks for something that cannot be done:
  a bad or missing option, a value out of range, options that do not fit together or do not fit
  the data (``--k`` larger than the candidates, an embeddings file whose row count is not the
  data's, ``--round`` not a round of the run, ``--label`` not one value per record, an index
  file's values), an unknown sampler, an invalid configuration (a key, a value, a file it names
  that does not exist), an output that would replace an input (:mod:`diverseevol.outputs`).
  Nothing has been started or written.
* **1**, a file cannot be read as what it should be, or the work fails: a file named on the
  command line that does not exist, malformed data (not JSON, no records, a field of the wrong
  type, a ``.npy`` that is not a 2-D array of numbers, NaN embeddings), a run directory made with
  other data or settings, a failure while training, a full disk.

Only the standard library is imported here: ``diverseevol --help`` stays instant.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

__all__ = [
    "EXIT_OK",
    "EXIT_RUNTIME",
    "EXIT_USAGE",
    "Command",
    "Formatter",
    "UsageError",
    "add_data_options",
    "argument",
    "data_options",
    "echo",
    "flag_names",
    "nonneg_float",
    "nonneg_int",
    "param",
    "positive_int",
    "seed_list",
    "text_encoding",
    "usage_error_types",
]

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A command-line argument is invalid (exit code 2)."""


class Command(Protocol):
    """One command: a module with these names, listed once in :data:`diverseevol.cli.COMMANDS`."""

    NAME: str  #: the command's name (``diverseevol NAME``)
    HELP: str  #: one line for ``diverseevol --help``
    DESCRIPTION: str  #: the paragraph of ``diverseevol NAME --help``

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's own arguments (the general options are added for it)."""

    def handle(self, args: argparse.Namespace) -> int:
        """Do the command: parse nothing more, call the library, print; return the exit code."""


#: Placeholders of help texts that :class:`Formatter` fills from the data registries when help is
#: shown (the registries import numpy: building the parser must not).
_RECORD_FORMATS = "{record formats}"
_FILE_TYPES = "{file types}"


def _registry_help(text: str) -> str:
    if _RECORD_FORMATS not in text and _FILE_TYPES not in text:
        return text
    from ..data import file_type_summaries, record_format_summaries

    def listing(entries: Mapping[str, str]) -> str:
        return "; ".join(f"{name}: {summary}" for name, summary in entries.items()).replace("%", "%%")

    return text.replace(_RECORD_FORMATS, listing(record_format_summaries())).replace(
        _FILE_TYPES, listing(file_type_summaries()))


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults that say something (not for flags, counters or unset options), and fills in
    the registered record formats and file types."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS \
                or isinstance(action, argparse._CountAction):
            return _registry_help(action.help or "")
        return _registry_help(super()._get_help_string(action))


# --------------------------------------------------------------------------------------------
# argument types: one parser per kind of value, for every command
# --------------------------------------------------------------------------------------------
def seed_list(text: str) -> tuple[int, ...]:
    """``--seeds 0,1,2``: distinct non-negative integers (a negative seed is a usage error)."""
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 0,1,2, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise argparse.ArgumentTypeError(
            f"expected distinct comma-separated non-negative integers such as 0,1,2, got {text!r}")
    return seeds


def positive_int(text: str) -> int:
    """An integer >= 1 (``--k``, ``--rounds``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def nonneg_int(text: str) -> int:
    """An integer >= 0 (``--seed``, ``--round``, ``--pool-size``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def nonneg_float(text: str) -> float:
    """A number >= 0, ``inf`` included, NaN refused (``--q``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 (or inf), got {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number >= 0 (or inf), got {text}")
    return value


def text_encoding(text: str) -> str:
    """``--encoding``: a text codec Python knows (``utf-8``, ``utf-8-sig``, ``latin-1``...)."""
    try:
        codecs.lookup(text)
    except LookupError:
        raise argparse.ArgumentTypeError(
            f"expected a text encoding Python knows, such as utf-8, utf-8-sig or latin-1, got {text!r}") from None
    return text


def _file_type(text: str) -> str:
    """``--file-type``: one of the file types the loader reads (:func:`diverseevol.data.file_type_names`)."""
    from ..data import file_type_names

    names = file_type_names()
    if text not in names:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(names)}, got {text!r}")
    return text


def add_data_options(p: argparse.ArgumentParser, data: str = "DATA") -> None:
    """``--format``, ``--file-type`` and ``--encoding``: how the records of ``data`` are read.

    Their values go to :func:`~diverseevol.data.load_instructions` through :func:`data_options`.
    The help lists the registered record formats and file types when it is shown.
    """
    p.add_argument("--format", default=None, metavar="FORMAT",
                   help=f"record format of {data}, detected from the first record when omitted: {_RECORD_FORMATS}")
    p.add_argument("--file-type", type=_file_type, default=None, metavar="TYPE",
                   help=f"file type of {data}, from its suffix and content when omitted: {_FILE_TYPES}")
    p.add_argument("--encoding", type=text_encoding, default=None,
                   help=f"text encoding of {data} (default utf-8); utf-8-sig for a file that starts with a "
                        f"byte-order mark")


def data_options(args: argparse.Namespace) -> dict[str, str]:
    """The :func:`~diverseevol.data.load_instructions` keyword arguments of :func:`add_data_options`, as given."""
    given = {"format": args.format, "file_type": args.file_type, "encoding": args.encoding}
    return {name: value for name, value in given.items() if value is not None}


def param(text: str) -> tuple[str, Any]:
    """``--param KEY=VALUE``: the one parser of sampler parameters on the command line.

    The value follows the one value grammar of sampler specs
    (:func:`diverseevol.samplers.spec.parse_param_value`): a JSON literal (``3``, ``true``,
    ``"x"``, ``[1, 2]``), else the string written; an empty value is refused.
    """
    from ..errors import ValidationError
    from ..samplers.spec import parse_param

    try:
        return parse_param(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# --------------------------------------------------------------------------------------------
# printing and errors
# --------------------------------------------------------------------------------------------
def echo(msg: str = "") -> None:
    """Print one line of the command's output (stdout, flushed)."""
    print(msg, flush=True)


@contextlib.contextmanager
def argument(option: str, errors: tuple[type[BaseException], ...] | None = None) -> Iterator[None]:
    """Errors of the value given as ``option`` are usage errors (exit 2), prefixed with the option.

    ``errors`` (default: the library's ``ValidationError``) are the exception types that mean the
    value is wrong; others (a missing file, malformed data) stay runtime errors.
    """
    from ..errors import UnknownSamplerError, ValidationError

    try:
        yield
    except UnknownSamplerError:  # already a usage error, with its own type in the message
        raise
    except errors or (ValidationError,) as exc:
        raise UsageError(f"{option}: {type(exc).__name__}: {exc}") from exc


@contextlib.contextmanager
def flag_names(names: Mapping[str, str]) -> Iterator[None]:
    """Library messages that name a Python argument (``overwrite=True``) name the command's flag instead.

    The error is raised again with the same type; its text has each key of ``names`` replaced by
    its value (``{"overwrite=True": "--overwrite"}``).
    """
    try:
        yield
    except Exception as exc:
        text = str(exc)
        new = text
        for python, flag in names.items():
            new = new.replace(python, flag)
        if new == text:
            raise
        try:
            again = type(exc)(new)
        except Exception:  # noqa: BLE001 - a type that cannot be rebuilt from its message keeps its text
            raise exc from None
        raise again from exc


def usage_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions that mean exit code 2 (see the module docstring); every other one is 1."""
    from ..errors import ConfigError, OutputPathError, UnknownSamplerError

    return (UsageError, ConfigError, UnknownSamplerError, OutputPathError)
