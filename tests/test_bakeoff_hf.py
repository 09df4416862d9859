"""A bake-off from a configuration file with the tiny offline LLaMA: held-out loss and ROUGE-L per model."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("yaml")

from diverseevol.bakeoff.from_config import run_bakeoff_config  # noqa: E402
from diverseevol.data import InstructionRecord  # noqa: E402
from diverseevol.hf import HFResponseLoss  # noqa: E402
from diverseevol.hf.tiny import save_tiny_model  # noqa: E402

from hf_fixtures import tiny_handle  # noqa: E402

torch.set_num_threads(2)
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

WORDS = ["add", "list", "poem", "why", "sum", "sky", "blue", "code", "tree", "sort"]


def write_data(path, n=36):
    rng = np.random.default_rng(0)
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({
                "instruction": " ".join(rng.choice(WORDS, size=rng.integers(1, 5))),
                "context": "",
                "response": f"{i} " + " ".join(rng.choice(WORDS, size=rng.integers(1, 6))),
                "category": ["open_qa", "brainstorming"][i % 2],
            }) + "\n")


def test_response_loss_counts_only_response_tokens_and_matches_a_manual_sum():
    handle = tiny_handle(seed=1)
    records = [InstructionRecord("say hi", "", "hi there"), InstructionRecord("add", "1 2", "3")]
    nll, count = HFResponseLoss(max_length=128, batch_size=1)(handle, records)
    from diverseevol.hf import tokenize_records

    tok = tokenize_records(handle.tokenizer, records, max_length=128)
    for i in range(2):
        ids = torch.tensor([tok.input_ids[i]])
        with torch.no_grad():
            logp = torch.log_softmax(handle.model(input_ids=ids).logits[0, :-1].float(), -1)
        start = int(tok.response_start[i])
        targets = ids[0, start:]
        manual = -logp[start - 1:].gather(-1, targets[:, None]).sum().item()
        assert count[i] == len(tok.input_ids[i]) - start
        assert nll[i] == pytest.approx(manual, rel=1e-5)
    # batching (right padding) does not change the figures
    nll2, count2 = HFResponseLoss(max_length=128, batch_size=2)(handle, records)
    np.testing.assert_allclose(nll2, nll, rtol=1e-5)
    np.testing.assert_array_equal(count2, count)


def test_bakeoff_from_a_config_file_with_the_tiny_model(tmp_path):
    base = save_tiny_model(tmp_path / "base", seed=0)
    write_data(tmp_path / "data.jsonl")
    (tmp_path / "bakeoff.yaml").write_text(f"""
data: {{path: data.jsonl}}
model:
  name_or_path: {base}
  trainer: {{lora: true, epochs: 1, batch_size: 8, per_device_batch_size: 8, lr: 0.001, progress: false, max_length: 320}}
  embedder: {{batch_size: 16, progress: false}}
budget: {{init_size: 4, k: 4, rounds: 1}}
bakeoff:
  samplers: [random, kcenter]
  baseline: random
  heldout: {{label_field: category, per_label: 2}}
  generation: {{max_new_tokens: 8, batch_size: 4}}
""")
    result = run_bakeoff_config(tmp_path / "bakeoff.yaml", tmp_path / "out", seeds=[0], plots=False, progress=False)
    assert len(result.rows) == 2 * 2  # 2 recipes x pools of 4 and 8
    for row in result.rows:
        assert np.isfinite(row["heldout_loss"]) and 0.0 <= row["rouge_l"] <= 1.0
        assert set(row["per_label"]) == {"open_qa", "brainstorming"}
    assert result.round0_computed == {0: {"train": 1, "embed": 1, "judge": 1}}
    assert len(result.heldout_idx) == 4
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["settings"]["samplers"] == ["random", "kcenter"]


def _cli(*args, cwd):
    import subprocess
    import sys

    env = {**os.environ, "DIVERSEEVOL_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "diverseevol", "bakeoff", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def _write_config(tmp_path, base, **bakeoff):
    section = {"samplers": ["random", "kcenter:mode=one_time"], "baseline": "random",
               "heldout": {"label_field": "category", "per_label": 2}, "generation": False, **bakeoff}
    import yaml

    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "data": {"path": "data.jsonl"},
        "model": {"name_or_path": str(base), "trainer": {"lora": True, "epochs": 1, "batch_size": 4,
                                                          "per_device_batch_size": 4, "lr": 0.001, "progress": False,
                                                          "max_length": 320},
                  "embedder": {"batch_size": 16, "progress": False}},
        "budget": {"init_size": 4, "k": 4, "rounds": 1},
        "bakeoff": section,
    }))
    return tmp_path / "c.yaml"


def test_the_bakeoff_command_runs_resumes_and_refuses_misfits_with_exit_2(tmp_path):
    base = save_tiny_model(tmp_path / "base", seed=0)
    write_data(tmp_path / "data.jsonl")
    cfg = _write_config(tmp_path, base)
    first = _cli(cfg, "--seeds", "0", "--out", "out", "--no-plots", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "heldout_loss - random" in first.stdout
    data = (tmp_path / "out" / "results.json").read_bytes()
    timing = json.loads((tmp_path / "out" / "timing.json").read_text())
    assert timing["round0_computed"] == {"0": {"train": 1, "embed": 1, "judge": 1}}
    again = _cli(cfg, "--seeds", "0", "--out", "out", "--no-plots", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "out" / "results.json").read_bytes() == data
    assert json.loads((tmp_path / "out" / "timing.json").read_text())["round0_computed"] == {"0": {}}

    bad = _write_config(tmp_path, base, baseline="least_confidence")
    r = _cli(bad, "--out", "o2", cwd=tmp_path)
    assert r.returncode == 2 and "baseline 'least_confidence' is not one of" in r.stderr
    bad = _write_config(tmp_path, base, heldout={"label_field": "category", "per_label": 30})
    r = _cli(bad, "--out", "o3", cwd=tmp_path)
    assert r.returncode == 2 and "holds out every record of label" in r.stderr
    assert not (tmp_path / "o3" / "results.json").exists()
    cfg = _write_config(tmp_path, base)
    r = _cli(cfg, "--out", "data.jsonl", cwd=tmp_path)
    assert r.returncode == 2 and "data.jsonl" in r.stderr
    assert (tmp_path / "data.jsonl").read_text().count("\n") == 36
