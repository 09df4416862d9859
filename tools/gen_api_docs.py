"""Render the public API's numpydoc docstrings to Markdown: ``docs/api.md``.

Usage::

    python tools/gen_api_docs.py            # writes docs/api.md
    python tools/gen_api_docs.py --check    # exit 1 if docs/api.md is out of date

Only the standard library (``inspect``) is used. Every name listed in the ``PAGES`` table is
imported, so the ``hf`` extra must be installed to render the Hugging Face section.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

#: object addresses in reprs change every run; dropped so the output is reproducible
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "api.md"

#: (section title, module, names or None for the module's ``__all__``)
PAGES: list[tuple[str, str, list[str] | None]] = [
    ("Top level", "diverseevol", ["kcenter_select", "vendi_score", "EvolutionLoop", "EvolutionResult",
                                  "load_instructions", "InstructionRecord", "format_prompt"]),
    ("Samplers", "diverseevol.samplers", ["Sampler", "SelectionContext", "register_sampler", "get_sampler",
                                          "get_sampler_class", "list_samplers", "unregister_sampler",
                                          "reload_plugins", "check_k", "Requirements", "Selection",
                                          "requirements_of", "run_sampler", "build_sampler",
                                          "parse_sampler_spec"]),
    ("Built-in samplers", "diverseevol.samplers", ["RandomSampler", "KCenterSampler", "LeastConfidenceSampler",
                                                   "MarginSampler", "EntropySampler", "KMeansSampler",
                                                   "FacilityLocationSampler", "NovelSumGreedySampler",
                                                   "BalancedRandomSampler", "KMeansRandomSampler", "KMQSampler",
                                                   "LongestSampler", "LengthMatchedRandomSampler",
                                                   "KCenterLengthDebiasedSampler", "LengthResidual"]),
    ("Sampler specs", "diverseevol.samplers.spec", None),
    ("Sampler contract check", "diverseevol.testing", None),
    ("One-shot selection", "diverseevol.selection", None),
    ("K-Center kernels", "diverseevol.kernels", None),
    ("Diversity", "diverseevol.diversity", None),
    ("Pool measurements", "diverseevol.measurements", None),
    ("Embedding transforms", "diverseevol.transforms", None),
    ("Norm-bias check", "diverseevol.norm_bias", None),
    ("Subset reports", "diverseevol.subset_report", None),
    ("Comparing samplers", "diverseevol.compare", None),
    ("Bake-off", "diverseevol.bakeoff", None),
    ("Bake-off from a configuration file", "diverseevol.bakeoff.from_config", None),
    ("Held-out judge", "diverseevol.judge.heldout", None),
    ("ROUGE-L", "diverseevol.judge.rouge", None),
    ("Run package", "diverseevol.run", None),
    ("Experiment tracking", "diverseevol.tracking", None),
    ("Multi-process runs", "diverseevol.comm", None),
    ("Thread policy", "diverseevol.threads", None),
    ("Assembly from settings", "diverseevol.assemble", None),
    ("Running a configuration", "diverseevol.assemble_config", None),
    ("Output paths", "diverseevol.outputs", None),
    ("Loop callables (protocols)", "diverseevol.protocols", None),
    ("Data", "diverseevol.data", None),
    ("Record formats", "diverseevol.data.formats", None),
    ("Rendering records", "diverseevol.render", None),
    ("Lossless export", "diverseevol.export", None),
    ("Run configuration", "diverseevol.config", None),
    ("Hugging Face parts", "diverseevol.hf", None),
    ("Evaluation", "diverseevol.judge", None),
    ("Reports", "diverseevol.report", None),
    ("Demo", "diverseevol.demo.run", None),
    ("Demo task suite", "diverseevol.demo.tasks", None),
    ("Demo models", "diverseevol.demo.model", None),
    ("Errors", "diverseevol.errors", None),
]

_SECTION = re.compile(r"^([A-Z][A-Za-z ]+)\n-{3,}\n", re.MULTILINE)
_PARAM_SECTIONS = {"Parameters", "Returns", "Yields", "Raises", "Attributes", "Other Parameters", "Warns"}


def _signature(obj: Any, name: str) -> str:
    try:
        target = obj.__init__ if inspect.isclass(obj) and obj.__init__ is not object.__init__ else obj
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return name
    params = list(sig.parameters.values())
    if inspect.isclass(obj) and params and params[0].name == "self":
        params = params[1:]
    text = str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty if inspect.isclass(obj)
                           else sig.return_annotation))
    return f"{name}{text}"


def _render_params(body: str) -> str:
    """``name : type`` lines followed by indented descriptions -> Markdown bullets."""
    out: list[str] = []
    for line in body.splitlines():
        if line and not line.startswith(" "):
            head, _, typ = line.partition(" : ")
            out.append(f"- **`{head.strip()}`**" + (f" ({typ.strip()})" if typ else "") + ":")
        elif line.strip():
            out.append("  " + line.strip())
    # join description lines onto their bullet
    merged: list[str] = []
    for line in out:
        if line.startswith("  ") and merged:
            merged[-1] += " " + line.strip()
        else:
            merged.append(line)
    return _prose("\n".join(merged))


def _render_doc(doc: str) -> str:
    doc = inspect.cleandoc(doc)
    parts = _SECTION.split(doc)
    out = [_prose(parts[0])]
    for title, body in zip(parts[1::2], parts[2::2]):
        body = body.strip("\n")
        out.append(f"**{title}**\n")
        if title in _PARAM_SECTIONS:
            out.append(_render_params(body))
        elif title == "Examples":
            out.append("```python\n" + body + "\n```")
        else:
            out.append(_prose(body))
    return "\n\n".join(p for p in out if p.strip())


def _prose(text: str) -> str:
    """RST-ish prose -> Markdown: ``code`` -> `code`, :role:`x` -> `x`, ``::`` blocks -> fences."""
    text = re.sub(r":(?:class|func|meth|attr|data|mod|doc|exc|obj):`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`")
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::"):
            out.append(line.rstrip()[:-1] if not line.rstrip().endswith(" ::") else line.rstrip()[:-3])
            i += 1
            block: list[str] = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                block.append(lines[i][4:] if lines[i].startswith("    ") else "")
                i += 1
            while block and not block[-1].strip():
                block.pop()
            while block and not block[0].strip():
                block.pop(0)
            out += ["", "```", *block, "```", ""]
            continue
        if line.startswith(">>> "):
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i])
                i += 1
            out += ["```python", *block, "```"]
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


def _members(obj: type) -> list[tuple[str, Any, Any]]:
    """Documented public methods and properties of ``obj``: ``(name, member, function)``."""
    out = []
    for name, member in vars(obj).items():
        if name.startswith("_") or not (inspect.isfunction(member) or isinstance(member, (classmethod, staticmethod, property))):
            continue
        func = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
        if func is None or not func.__doc__:
            continue
        out.append((name, member, func))
    return out


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python tools/gen_api_docs.py`; do not edit by hand.",
        "Index arrays are absolute row indices into the dataset Z unless a docstring says otherwise.",
        "",
    ]
    toc: list[str] = []
    body: list[str] = []
    for title, module_name, names in PAGES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            print(f"skipping {module_name}: {exc}", file=sys.stderr)
            continue
        names = list(names if names is not None else getattr(module, "__all__", []))
        toc.append(f"- [{title}](#{_anchor(title)}) (`{module_name}`)")
        body += [f"## {title}", ""]
        if module_name != "diverseevol":
            summary = (module.__doc__ or "").strip().split("\n\n")[0]
            if summary:
                body += [_prose(summary), ""]
        for name in names:
            try:
                obj = getattr(module, name)
            except AttributeError:
                print(f"skipping {module_name}.{name}: not found", file=sys.stderr)
                continue
            if inspect.ismodule(obj):
                continue
            qual = f"{module_name}.{name}"
            if not (inspect.isclass(obj) or callable(obj)):
                body += [f"### `{qual}`", "", f"Constant: `{_ADDRESS.sub('', repr(obj))}`"[:300], ""]
                continue
            body += [f"### `{qual}`", "", "```python", _signature(obj, name), "```", ""]
            if obj.__doc__:
                body += [_render_doc(obj.__doc__), ""]
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                for mname, member, func in _members(obj):
                    label = f"{name}.{mname}"
                    sig = label if isinstance(member, property) else _signature(func, label)
                    if not isinstance(member, property) and "(self" in sig:
                        sig = sig.replace("(self, ", "(").replace("(self)", "()")
                    body += [f"#### `{label}`" + (" (property)" if isinstance(member, property) else ""), ""]
                    if not isinstance(member, property):
                        body += ["```python", sig, "```", ""]
                    body += [_render_doc(func.__doc__), ""]
    lines += ["## Contents", "", *toc, "", *body]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/api.md differs from the docstrings")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date; run python tools/gen_api_docs.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
