"""benchmarks/gpu_check.py --dry-run: the GPU check's code runs on the CPU at toy sizes and writes every section."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_dry_run_writes_every_section(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["dry_run"] is True
    sections = ("env", "kcenter_torch_fp32", "kcenter_bf16_storage", "kcenter_faiss_gpu", "embed_smollm2",
                "embed_llama1b", "lora_step", "vendi")
    for name in sections:
        assert name in res, name
        assert "error" not in res[name], (name, res[name])
    assert res["env"]["matmul_tflops"] > 0 and res["env"]["copy_bandwidth_gb_s"] > 0
    k = res["kcenter_torch_fp32"]
    assert k["picks_equal_numpy_subset"] is True
    assert k["pick_ms"] > 0 and k["bw_fraction"] > 0
    assert res["kcenter_bf16_storage"]["pick_ms"] > 0
    assert res["embed_llama1b"]["tokens_per_s"] > 0 and 0 < res["embed_llama1b"]["fraction_of_matmul_rate"]
    assert res["vendi"]["vendi"] > 1
    if "skipped" not in res["lora_step"]:
        assert res["lora_step"]["step_s"] > 0
