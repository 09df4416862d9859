"""load_model("model.gguf") converts the GGUF file as gguf_file= does; other files get a clear message."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from diverseevol.errors import ValidationError
from diverseevol.hf import gguf as gguf_mod
from diverseevol.hf._model import load_model
from diverseevol.hf.tiny import save_tiny_model

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def converted_cache(tmp_path_factory):
    """A fake .gguf file whose conversion is already in the cache (a tiny model saved there)."""
    root = tmp_path_factory.mktemp("gguf")
    gguf = root / "model.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00fake-content")
    cache = root / "cache"
    save_tiny_model(cache / f"model-{gguf_mod._file_digest(gguf)}", seed=3)
    return gguf, cache


def test_load_model_converts_a_gguf_path_like_gguf_file(converted_cache):
    gguf, cache = converted_cache
    direct = load_model(str(gguf), cache_dir=cache)
    explicit = load_model("ignored", gguf_file=gguf, cache_dir=cache)
    assert direct.path == explicit.path == cache / f"model-{gguf_mod._file_digest(gguf)}"
    for a, b in zip(direct.model.parameters(), explicit.model.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_gguf_detected_by_magic_without_suffix(converted_cache, tmp_path):
    gguf, cache = converted_cache
    renamed = tmp_path / "model"
    renamed.write_bytes(gguf.read_bytes())
    # same content, other stem: converted again, so give it its cache entry
    save_tiny_model(cache / f"model-{gguf_mod._file_digest(renamed)}", seed=3)
    assert load_model(str(renamed), cache_dir=cache).model.config.hidden_size == 64


def test_other_files_are_refused_with_a_clear_message(tmp_path):
    weights = tmp_path / "config.json"
    weights.write_text("{}")
    with pytest.raises(ValidationError, match="expects a model directory, a .gguf file or a Hub id"):
        load_model(str(weights))
