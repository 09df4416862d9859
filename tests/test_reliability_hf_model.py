"""Model names: a missing local path fails at once (never goes to the Hub); Hub ids stay possible."""

from __future__ import annotations

import os
import time

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from diverseevol.errors import DiverseEvolError, ModelNotFoundError, ValidationError
from diverseevol.hf._model import load_model, resolve_model, resolve_model_source
from diverseevol.hf.tiny import save_tiny_model

torch.set_num_threads(2)

MISSING_PATHS = ["./no_such_dir", "../no_such_dir", "/no/such/dir", "~/no_such_dir_xyz", "no_such_dir/",
                 "a/b/c", "weights.safetensors", "missing.gguf", "tests/no_such_model"]


@pytest.mark.parametrize("name", MISSING_PATHS)
def test_missing_path_looking_name_fails_at_once(name, monkeypatch):
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/ exists here
    with pytest.raises(ModelNotFoundError, match="does not exist") as info:
        resolve_model_source(name)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, DiverseEvolError)
    assert "hub:" in str(info.value)  # says how to ask for a Hub model instead
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError):
        load_model(name)
    assert time.perf_counter() - start < 5.0  # no network retries


def test_path_objects_are_always_local(tmp_path):
    with pytest.raises(ModelNotFoundError):
        resolve_model_source(tmp_path / "nothing")
    with pytest.raises(ModelNotFoundError):
        resolve_model(str(tmp_path / "nothing"))


@pytest.mark.parametrize("name", ["HuggingFaceTB/SmolLM2-135M", "gpt2", "meta-llama/Llama-2-7b-hf"])
def test_hub_ids_stay_hub_ids(name):
    assert resolve_model_source(name) == name


def test_hub_prefix_forces_a_hub_id():
    assert resolve_model_source("hub:HuggingFaceTB/SmolLM2-135M") == "HuggingFaceTB/SmolLM2-135M"
    assert resolve_model_source("hub:./looks-local") == "./looks-local"
    with pytest.raises(ValidationError, match="hub:"):
        resolve_model_source("hub:")
    with pytest.raises(ValidationError):
        resolve_model_source("  ")


def test_existing_local_paths_resolve(tmp_path, monkeypatch):
    base = save_tiny_model(tmp_path / "models" / "tiny", seed=0)
    monkeypatch.chdir(tmp_path)
    assert resolve_model_source("models/tiny") == "models/tiny"
    assert resolve_model_source("./models/tiny/") == str(base.relative_to(tmp_path)) or os.path.samefile(
        resolve_model_source("./models/tiny/"), base
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    assert os.path.samefile(resolve_model_source("~/models/tiny"), base)
    handle = load_model("~/models/tiny")
    assert handle.model.config.hidden_size == 64
