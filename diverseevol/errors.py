"""The exception hierarchy of diverseevol.

Every exception raised on purpose by the library derives from :class:`DiverseEvolError` and
from the builtin exception a user would naturally catch (``ValueError``, ``ImportError``, ...),
so ``except ValueError`` keeps working in code that does not know about diverseevol.
"""

from __future__ import annotations

__all__ = [
    "DiverseEvolError",
    "ValidationError",
    "IndexValidationError",
    "NonFiniteEmbeddingError",
    "PoolExhaustedError",
    "DataFormatError",
    "OptionalDependencyError",
    "BackendUnavailableError",
    "UnknownSamplerError",
    "SamplerRegistrationError",
    "MissingSignalError",
    "SamplerOutputError",
    "RunDirectoryMismatchError",
    "RunDirectoryError",
    "ConfigError",
    "JudgeError",
    "DiverseEvolWarning",
    "PluginLoadWarning",
    "DuplicateRecordsWarning",
    "UnknownOptionError",
    "IgnoredOptionWarning",
]


class DiverseEvolError(Exception):
    """Base class of every error raised on purpose by diverseevol."""


class ValidationError(DiverseEvolError, ValueError):
    """An argument has the wrong shape, type or value."""


class IndexValidationError(ValidationError):
    """An index array is not integer, not 1-D, out of range, duplicated or overlaps another."""


class NonFiniteEmbeddingError(ValidationError):
    """Embeddings contain NaN or infinite values in the rows that are used."""


class PoolExhaustedError(DiverseEvolError, ValueError):
    """More records were requested than there are candidates left to select from."""


class DataFormatError(DiverseEvolError, ValueError):
    """A data file or record is malformed (invalid JSON, missing or non-string field, empty dataset)."""


class OptionalDependencyError(DiverseEvolError, ImportError):
    """A feature needs an optional dependency that is not installed; the message names the extra."""


class BackendUnavailableError(DiverseEvolError, RuntimeError):
    """A compute backend was requested explicitly but cannot run here (no GPU, no faiss-gpu...)."""


class UnknownSamplerError(DiverseEvolError, KeyError):
    """No sampler is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class SamplerRegistrationError(DiverseEvolError, ValueError):
    """A sampler cannot be registered (bad name, name taken, object is not a sampler)."""


class MissingSignalError(DiverseEvolError, ValueError):
    """A sampler needs a signal (embeddings, a score) that the selection context does not carry."""


class RunDirectoryMismatchError(DiverseEvolError, ValueError):
    """A run directory was made with other data or another configuration."""


class RunDirectoryError(DiverseEvolError, OSError):
    """A run directory cannot be read or written, or its files are corrupt."""


class ConfigError(DiverseEvolError, ValueError):
    """A configuration file or mapping has unknown keys, missing keys or values of the wrong type."""


class JudgeError(DiverseEvolError, RuntimeError):
    """The judge endpoint failed permanently (after retries) or answered outside the protocol."""


class DiverseEvolWarning(UserWarning):
    """Base class of warnings issued by diverseevol."""


class PluginLoadWarning(DiverseEvolWarning):
    """An entry-point plugin failed to load; it is skipped and the others stay usable."""


class DuplicateRecordsWarning(DiverseEvolWarning):
    """A dataset contains duplicate records; they are kept and reported."""


class SamplerOutputError(ValidationError):
    """A sampler's ``select`` returned something other than a 1-D array of integral row indices."""


class DegenerateEmbeddingError(ValidationError):
    """All or nearly all rows of an embedding matrix are identical, so selection on it is meaningless."""


class DegenerateEmbeddingsWarning(DiverseEvolWarning):
    """All or nearly all rows of an embedding matrix are identical (e.g. every record truncated to the
    prompt template); the message names the likely cause and the fix."""


__all__ += ["DegenerateEmbeddingError", "DegenerateEmbeddingsWarning"]


class NormBiasWarning(DiverseEvolWarning):
    """Selected records have a much larger mean embedding norm than the candidates (K-Center on raw,
    unnormalised embeddings chasing long-norm outliers); the message gives the figures and the fix."""


__all__ += ["NormBiasWarning"]


class UnknownOptionError(ValidationError, TypeError):
    """A keyword option is not accepted by the compute backend it was given to (a typo, or another backend's)."""


class IgnoredOptionWarning(DiverseEvolWarning):
    """An option was accepted but has no effect on the backend that runs (e.g. ``lazy`` on torch)."""


class ModelNotFoundError(DiverseEvolError, FileNotFoundError):
    """A model name that looks like a local path (``./x``, ``/x``, ``~/x``, ``x/y/``) does not exist,
    or a name that is neither a local path nor in the Hugging Face cache cannot be downloaded (a bare
    name, or any id under ``HF_HUB_OFFLINE``); it is not looked up on the Hugging Face Hub (write
    ``hub:<id>`` for a Hub model)."""


__all__ += ["ModelNotFoundError"]


class FileWriteError(DiverseEvolError, OSError):
    """A file could not be written (disk full, read-only file system, quota, I/O error); the
    message names the file, ``errno`` and ``filename`` are those of the failed write, and the
    previous version of the file is unchanged."""

    def __str__(self) -> str:  # the message already names the file: no "...: 'filename'" suffix
        message = self.strerror or (self.args[0] if self.args else "")
        return message if self.errno is None else f"[Errno {self.errno}] {message}"


__all__ += ["FileWriteError"]


class DataFileNotFoundError(DiverseEvolError, FileNotFoundError):
    """A data file given to :func:`diverseevol.load_instructions` does not exist."""


class OutputPathError(ValidationError):
    """An output path would replace an input, a file of a directory being read or another output, or
    is not what the command writes there (a folder where a file goes, a folder holding other files);
    see :func:`diverseevol.outputs.check_outputs`."""


__all__ += ["OutputPathError"]


class TrackingError(DiverseEvolError, RuntimeError):
    """An experiment tracker (TensorBoard, MLflow, W&B) cannot be used: its store is not writable,
    its server does not answer, or it failed while logging; the message names the tracker and the fix."""


__all__ += ["TrackingError"]
