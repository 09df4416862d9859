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
