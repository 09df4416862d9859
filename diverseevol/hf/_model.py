"""Model handles: what :class:`HFTrainer` returns and what the embedder / scorer / generator accept."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._progress import show_progress
from ..errors import ModelNotFoundError, ValidationError
from ._quiet import quiet_transformers_progress
from .gguf import convert_gguf

logger = logging.getLogger(__name__)

__all__ = [
    "HUB_PREFIX",
    "ModelHandle",
    "base_model",
    "body_and_head",
    "default_device",
    "load_model",
    "locate_model",
    "resolve_dtype",
    "resolve_model",
    "resolve_model_source",
]

#: Prefix that marks a model name as a Hugging Face Hub id, never a local path (``hub:org/name``).
HUB_PREFIX = "hub:"

#: File suffixes of model weights: a name ending so is a local file, never a Hub id.
_FILE_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt", ".pth", ".ckpt")


@dataclass
class ModelHandle:
    """A loaded causal LM with its tokenizer and where it came from.

    Attributes
    ----------
    model : transformers.PreTrainedModel
        Ready for inference (LoRA adapters merged), on its device, in eval mode.
    tokenizer : transformers tokenizer
        Has a pad token.
    path : Path or None
        Directory the round's weights were saved to (``None`` for an in-memory model).
    round : int or None
        The loop round that produced it.
    info : dict
        Training metadata (records, steps, final loss, wall time...).
    """

    model: Any
    tokenizer: Any
    path: Path | None = None
    round: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> Any:
        """The device of the model's parameters."""
        return next(self.model.parameters()).device


def default_device() -> Any:
    """``cuda:LOCAL_RANK`` when CUDA is available, else CPU (the rule of :func:`diverseevol.comm.rank_device`)."""
    from ..comm import rank_device

    return rank_device()


def resolve_dtype(dtype: Any, device: Any) -> Any:
    """Map ``"auto"`` / strings / None to a torch dtype: bf16 (or fp16) on CUDA, float32 on CPU."""
    import torch

    if dtype is None or dtype == "auto":
        if getattr(device, "type", str(device)) == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if isinstance(dtype, str):
        try:
            return getattr(torch, dtype)
        except AttributeError:
            raise ValidationError(
                f"Unknown dtype {dtype!r}; use 'auto', 'float32', 'bfloat16' or 'float16'."
            ) from None
    return dtype


def _looks_like_path(name: str) -> bool:
    """Whether ``name`` can only mean a local path (a Hub id is ``name`` or ``org/name``)."""
    seps = ("/", "\\")
    if name in (".", "..") or name.startswith(("./", "../", ".\\", "..\\", "/", "~")) or name.endswith(seps):
        return True
    if "\\" in name or (len(name) > 2 and name[1] == ":" and name[2] in seps):  # Windows separators / drive
        return True
    if name.count("/") > 1 or name.lower().endswith(_FILE_SUFFIXES):
        return True
    return "/" in name and Path(name).parent.is_dir()  # e.g. runs/model where runs/ is here


def resolve_model_source(name_or_path: str | os.PathLike[str]) -> str:
    """Return what to load a model from: an existing local path, or a Hugging Face Hub id.

    A name that exists locally is a path. A name that looks like a path but does not exist fails
    at once instead of going to the Hub (minutes of network retries, then an OSError): ``./x``,
    ``../x``, ``/x``, ``~/x``, a name ending with a separator, with more than one ``/``, with a
    weights suffix (``.gguf``, ``.safetensors``...), or ``a/b`` where the directory ``a`` exists
    here. Other names (``gpt2``, ``HuggingFaceTB/SmolLM2-135M``) are Hub ids; ``hub:<id>`` makes
    any name a Hub id explicitly.

    Parameters
    ----------
    name_or_path : str or PathLike
        A ``Path`` object is always a local path.

    Returns
    -------
    str
        The local path (``~`` expanded) or the Hub id (prefix removed).

    Raises
    ------
    ModelNotFoundError
        A local path (by type or by look) that does not exist. Derives from FileNotFoundError.
    ValidationError
        An empty name or ``hub:`` with nothing after it.
    """
    is_path = isinstance(name_or_path, os.PathLike)
    name = os.fspath(name_or_path) if is_path else name_or_path
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"a model name must be a non-empty path or Hub id; got {name_or_path!r}.")
    if not is_path and name.startswith(HUB_PREFIX):
        repo = name[len(HUB_PREFIX):].strip()
        if not repo:
            raise ValidationError(f"{name!r}: write the Hub id after {HUB_PREFIX!r}, e.g. 'hub:HuggingFaceTB/SmolLM2-135M'.")
        return repo
    local = Path(name).expanduser()
    if local.exists():
        return str(local)
    if is_path or _looks_like_path(name):
        raise ModelNotFoundError(
            f"model path {name!r} does not exist (looked for {local.absolute()}). It looks like a local "
            f"path, so it is not looked up on the Hugging Face Hub. Fix the path (a model directory or a "
            f".gguf file); for a Hub model write its id as 'org/name' or '{HUB_PREFIX}org/name'."
        )
    return name


_TRUE = {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """Whether the Hugging Face Hub may not be reached: ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``.

    Read from the environment now and from ``huggingface_hub``'s constants (read when it was
    imported): either one set means offline.
    """
    if any(os.environ.get(var, "").strip().upper() in _TRUE for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _hub_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _in_hub_cache(repo: str) -> bool:
    """Whether ``repo``'s ``config.json`` is in the local Hugging Face cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo, "config.json", cache_dir=_hub_cache())
    except ValueError:  # not a valid repo id: it cannot be in the cache
        return False
    return isinstance(found, str)


def locate_model(name_or_path: str | os.PathLike[str]) -> str:
    """Return where a model loads from without touching the network, or fail at once.

    :func:`resolve_model_source`'s rule first (an existing local path, or a missing path-looking
    name refused). Then a Hub id is checked against the local Hugging Face cache
    (``huggingface_hub``'s ``HF_HUB_CACHE``):

    - in the cache: the id (transformers loads it from there);
    - not in the cache and the Hub is off (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``):
      :class:`~diverseevol.errors.ModelNotFoundError`, instead of transformers' OSError;
    - a bare name (no ``/``, e.g. a mistyped local folder) not in the cache:
      ``ModelNotFoundError`` too, instead of minutes of Hub retries; write ``hub:<name>`` to
      download it;
    - otherwise (``org/name`` or ``hub:<id>``, online): the id, downloaded when loaded.

    Parameters
    ----------
    name_or_path : str or PathLike
        A local model directory or ``.gguf`` file, or a Hub id (``org/name``, ``hub:<id>``).

    Returns
    -------
    str
        The local path or the Hub id.

    Raises
    ------
    ModelNotFoundError
        As above; derives from FileNotFoundError. The message says to pass a local model
        folder or a ``.gguf`` file.
    ValidationError
        An empty name or ``hub:`` with nothing after it.
    """
    source = resolve_model_source(name_or_path)
    if isinstance(name_or_path, os.PathLike) or Path(source).expanduser().exists() or _in_hub_cache(source):
        return source
    forced = os.fspath(name_or_path).startswith(HUB_PREFIX)
    fix = "Pass a local model folder (holding config.json and the weights) or a .gguf file"
    if hub_offline():
        raise ModelNotFoundError(
            f"model {source!r} is neither a local path nor in the Hugging Face cache ({_hub_cache()}), and "
            f"HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set, so it cannot be downloaded. {fix}, or unset "
            f"HF_HUB_OFFLINE to download it from the Hub."
        )
    if not forced and "/" not in source:
        raise ModelNotFoundError(
            f"model {source!r} is neither a local path (looked for {Path(source).absolute()}) nor in the "
            f"Hugging Face cache ({_hub_cache()}); it is not looked up on the Hub. {fix}; to download a "
            f"Hub model write its id as 'org/name' or '{HUB_PREFIX}{source}'."
        )
    return source


def _is_gguf_file(path: str) -> bool:
    p = Path(path)
    if not p.is_file():
        return False
    if p.suffix.lower() == ".gguf":
        return True
    with open(p, "rb") as fh:
        return fh.read(4) == b"GGUF"


def load_model(
    path: str | Path,
    *,
    adapter: str | Path | None = None,
    gguf_file: str | Path | None = None,
    cache_dir: str | Path | None = None,
    dtype: Any = "auto",
    device: Any = None,
    merge: bool = True,
    progress: bool = False,
) -> ModelHandle:
    """Load a causal LM and its tokenizer for inference.

    Parameters
    ----------
    path : str or Path
        A local model directory, a ``.gguf`` file (converted once, as with ``gguf_file``) or a
        Hub id (from the Hugging Face cache, or downloaded: ``org/name`` or ``hub:<id>``). A
        name that cannot be loaded without the network when the network may not be used (a
        path-looking name that does not exist, a bare name not in the cache, any id not in the
        cache under ``HF_HUB_OFFLINE``) raises :class:`~diverseevol.errors.ModelNotFoundError` at
        once (see :func:`locate_model`).
    adapter : str or Path, optional
        A directory holding a peft LoRA adapter trained on ``path``; it is applied and, with
        ``merge=True``, merged into the weights.
    gguf_file : str or Path, optional
        A GGUF file: converted once to safetensors (see :func:`diverseevol.hf.gguf.convert_gguf`)
        and loaded from that cache; ``path`` is then ignored.
    cache_dir : str or Path, optional
        Cache of GGUF conversions.
    dtype : torch.dtype or str, default "auto"
        ``"auto"``: bfloat16 / float16 on CUDA, float32 on CPU.
    device : torch.device or str, optional
        Defaults to ``cuda:LOCAL_RANK`` when CUDA is available, else CPU.
    merge : bool, default True
        Merge the LoRA adapter into the weights (faster inference).
    progress : bool, default False
        Show transformers' weight-loading progress bar (only where bars are shown at all: see
        :func:`diverseevol._progress.show_progress`).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ._records import ensure_pad_token

    if gguf_file is None:
        path = locate_model(path)
        if _is_gguf_file(path):
            gguf_file = path
        elif Path(path).is_file():
            raise ValidationError(
                f"load_model expects a model directory, a .gguf file or a Hub id; got the file {str(path)!r}. "
                f"Pass the directory holding config.json and the weights."
            )
    if gguf_file is not None:
        path = convert_gguf(gguf_file, cache_dir=cache_dir)
    device = torch.device(device) if device is not None else default_device()
    torch_dtype = resolve_dtype(dtype, device)
    tok_source = (
        adapter if adapter is not None and (Path(adapter) / "tokenizer_config.json").exists() else path
    )
    tokenizer = AutoTokenizer.from_pretrained(str(tok_source))
    ensure_pad_token(tokenizer)
    with quiet_transformers_progress(not show_progress(progress)):
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype)
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter))
            if merge:
                model = model.merge_and_unload()
    model.to(device)
    model.eval()
    return ModelHandle(model=model, tokenizer=tokenizer, path=Path(adapter) if adapter else Path(path))


def resolve_model(model: Any, tokenizer: Any = None) -> tuple[Any, Any]:
    """Return ``(model, tokenizer)`` from a :class:`ModelHandle`, a ``(model, tokenizer)`` pair or a model.

    A bare model needs ``tokenizer``, or a ``config._name_or_path`` that
    ``AutoTokenizer.from_pretrained`` can load offline.
    """
    if isinstance(model, ModelHandle):
        return model.model, tokenizer if tokenizer is not None else model.tokenizer
    if isinstance(model, tuple) and len(model) == 2:
        return model[0], tokenizer if tokenizer is not None else model[1]
    if isinstance(model, (str, Path)):
        handle = load_model(model)
        return handle.model, tokenizer if tokenizer is not None else handle.tokenizer
    if tokenizer is None:
        name = getattr(getattr(model, "config", None), "_name_or_path", "")
        if not name:
            raise ValidationError(
                f"Got a bare {type(model).__name__} without a tokenizer; pass a diverseevol.hf.ModelHandle, "
                "a (model, tokenizer) tuple, or tokenizer=... to the embedder / scorer / generator."
            )
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(name)
    from ._records import ensure_pad_token

    ensure_pad_token(tokenizer)
    return model, tokenizer


def base_model(model: Any) -> Any:
    """The transformers model inside a peft wrapper (which keeps the LoRA layers in place), else ``model`` itself."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def body_and_head(model: Any) -> tuple[Any, Any]:
    """Split a causal LM into its transformer body (gives ``last_hidden_state``) and its LM head."""
    inner = base_model(model)
    body = getattr(inner, "base_model", inner)
    if body is inner:
        decoder = getattr(inner, "get_decoder", None)
        body = decoder() if callable(decoder) else inner
    head = inner.get_output_embeddings()
    return body, head
