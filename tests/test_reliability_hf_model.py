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


# --------------------------------------------------------------------------------------------
# issue 22 item 10: a bare name that is neither a local path nor in the HF cache fails at once
# --------------------------------------------------------------------------------------------
@pytest.fixture
def no_network(monkeypatch):
    """Every socket connection attempt is recorded and refused: the oracle for "no network"."""
    import socket

    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network refused by the test")

    def no_lookup(host, *args, **kwargs):
        attempts.append(host)
        raise socket.gaierror("name lookup refused by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    return attempts


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub_constants

    cache = tmp_path / "hf_cache"
    cache.mkdir()
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    return cache


def _cache_repo(cache, repo):
    """Lay ``repo`` out as huggingface_hub does: models--org--name/{refs/main, snapshots/<rev>/}."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0123abcd")


@pytest.mark.parametrize("offline", [True, False])
def test_a_bare_name_neither_local_nor_cached_fails_at_once_without_network(
    offline, tmp_path, monkeypatch, no_network, empty_hub_cache
):
    import huggingface_hub.constants as hub_constants

    from diverseevol.hf import HFTrainer
    from diverseevol.hf._model import locate_model

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", offline)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError) as info:
        locate_model("no_such_model_xyz")
    text = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "no_such_model_xyz" in text and "local model folder" in text and ".gguf" in text
    assert ("HF_HUB_OFFLINE" in text) if offline else ("hub:no_such_model_xyz" in text)
    with pytest.raises(ModelNotFoundError, match="no_such_model_xyz"):
        load_model("no_such_model_xyz")
    from diverseevol.data import InstructionRecord

    records = [InstructionRecord("say a", "", "a"), InstructionRecord("say b", "", "b")]
    with pytest.raises(ModelNotFoundError, match="no_such_model_xyz"):
        HFTrainer("no_such_model_xyz", progress=False)(records, 0, tmp_path / "round0")
    assert time.perf_counter() - start < 5.0
    assert no_network == []


def test_offline_a_hub_id_not_in_the_cache_fails_at_once_naming_hf_hub_offline(
    monkeypatch, no_network, empty_hub_cache
):
    from diverseevol.hf._model import locate_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("someorg/not-cached", "hub:someorg/not-cached", "hub:gpt2"):
        with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE") as info:
            locate_model(name)
        assert "not-cached" in str(info.value) or "gpt2" in str(info.value)
        assert str(empty_hub_cache) in str(info.value)
    assert no_network == []


def test_names_in_the_hub_cache_and_local_paths_are_located(tmp_path, monkeypatch, no_network, empty_hub_cache):
    import huggingface_hub.constants as hub_constants

    from diverseevol.hf._model import locate_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _cache_repo(empty_hub_cache, "someorg/cached")
    _cache_repo(empty_hub_cache, "gpt2")
    assert locate_model("someorg/cached") == "someorg/cached"
    assert locate_model("hub:someorg/cached") == "someorg/cached"
    assert locate_model("gpt2") == "gpt2"
    (tmp_path / "local").mkdir()
    monkeypatch.chdir(tmp_path)
    assert locate_model("local") == "local"
    # online, an org/name Hub id not in the cache stays a Hub id (it is downloaded when loaded)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    assert locate_model("someorg/elsewhere") == "someorg/elsewhere"
    assert locate_model("hub:gpt3") == "gpt3"
    assert no_network == []


def test_embed_with_model_refuses_a_missing_model_with_a_typed_error(tmp_path, monkeypatch, no_network):
    from diverseevol.assemble import embed_with_model
    from diverseevol.data import InstructionRecord

    monkeypatch.chdir(tmp_path)
    for name in ("no_such_encoder", "./no_such_dir", "gone.gguf"):
        with pytest.raises(ModelNotFoundError, match="does not exist") as info:
            embed_with_model(name, [InstructionRecord("a", "", "b")], progress=False)
        assert isinstance(info.value, DiverseEvolError) and name in str(info.value)
        assert "local model folder" in str(info.value)
    assert no_network == []
