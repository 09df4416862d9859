"""``diverseevol samplers``: the registered samplers, plugins included."""

from __future__ import annotations

import argparse
import json

from .common import EXIT_OK, echo

NAME = "samplers"
HELP = "list the registered samplers (built-ins and plugins)"
DESCRIPTION = ("List every registered sampler with the signals it needs; plugins from the "
               "`diverseevol.samplers` entry-point group included.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=("list",), default="list", help="what to do (only `list`)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def handle(args: argparse.Namespace) -> int:
    from ..samplers import requirements_of
    from ..samplers.registry import get_sampler_class, list_samplers

    rows = []
    for name in list_samplers():
        cls = get_sampler_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()
        summary = " ".join(doc[0].split()) if doc else ""
        rows.append({"name": name, "requires": sorted(requirements_of(cls).to_strings()),
                     "class": f"{cls.__module__}.{cls.__qualname__}", "summary": summary})
    if args.json:
        echo(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max(len(r["name"]) for r in rows)
    req_w = max(len(", ".join(r["requires"]) or "-") for r in rows)
    echo(f"{'name'.ljust(width)}  {'requires'.ljust(req_w)}  summary")
    for r in rows:
        echo(f"{r['name'].ljust(width)}  {(', '.join(r['requires']) or '-').ljust(req_w)}  {r['summary']}")
    return EXIT_OK
