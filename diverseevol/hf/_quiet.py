"""transformers' own progress bars ("Loading weights", "Writing model shards") hidden inside a block.

Used by every part that loads or saves weights (:mod:`._model`, :mod:`.gguf`, :mod:`.trainer`,
:mod:`.tiny`); it imports transformers only when the block is entered.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["quiet_transformers_progress"]


@contextlib.contextmanager
def quiet_transformers_progress(quiet: bool = True) -> Iterator[None]:
    """Hide transformers' own "Loading weights" / "Writing model shards" bars inside the block."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    if quiet and was_enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet and was_enabled:
            hf_logging.enable_progress_bar()
