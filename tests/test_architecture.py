"""The layering rules in pyproject.toml ([tool.importlinter]) hold: run import-linter on the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> list[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("lint-imports")
    if found is None:
        pytest.skip("import-linter is not installed (it is in the dev extra)")
    return [found]


def test_import_contracts_hold():
    proc = subprocess.run(
        [*_lint_imports(), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report
    assert "0 broken" in report, report


def test_contracts_cover_the_rules_of_the_issue():
    """The three rules of the architecture: core forbidden edges, loop without hf, a layers contract."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = {c["id"]: c for c in config["contracts"]}
    assert contracts["layers"]["type"] == "layers"
    core = contracts["core"]
    assert "diverseevol.kernels" in core["source_modules"]
    assert "diverseevol.samplers" in core["source_modules"]
    assert {"diverseevol.hf", "diverseevol.judge", "diverseevol.cli"} <= set(core["forbidden_modules"])
    assert contracts["loop-no-hf"]["forbidden_modules"] == ["diverseevol.hf"]


#: The old import paths and the one home each may import besides the deprecation helper.
OLD_HOMES = {
    "diverseevol.loop": ("diverseevol.run",),
    "diverseevol.rundir": ("diverseevol.run.directory", "diverseevol._files"),
    "diverseevol.distributed": ("diverseevol.comm",),
    "diverseevol.judge.llm": ("diverseevol.judge.loop_judge",),
    "diverseevol.hf.distributed": ("diverseevol.comm",),
}


def _graph():
    grimp = pytest.importorskip("grimp")  # installed with import-linter (dev extra)
    return grimp.build_graph("diverseevol")


def test_old_homes_import_only_their_new_home_and_nothing_imports_them():
    graph = _graph()
    for old, homes in OLD_HOMES.items():
        imported = graph.find_modules_directly_imported_by(old) - {"diverseevol._deprecation"}
        strays = sorted(m for m in imported if not any(m == h or m.startswith(h + ".") for h in homes))
        assert not strays, f"{old} may import only {homes}; it imports {strays}"
        assert not graph.find_modules_that_directly_import(old), f"the library still imports {old}"


def test_a_contract_forbids_import_circles_inside_the_packages():
    """`hf/_model` <-> `hf/gguf` and `kernels/backends` <-> `kernels/contract` were circles; the
    contract (run by test_import_contracts_hold) keeps every such circle out."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = {c["id"]: c for c in config["contracts"]}["no-circles"]
    assert contract["type"] == "acyclic_siblings"
    assert {"diverseevol.hf", "diverseevol.kernels"} <= set(contract["ancestors"])
