"""Per-record scores under a model: uncertainty (Least-Confidence, Margin, Entropy) and loss (kMQ)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data import InstructionRecord
from ._fast_paths import check_compile, check_onednn
from .embedder import HFEmbedder, forward_pass

__all__ = ["HFScorer"]


class HFScorer:
    """Scorer for :class:`diverseevol.EvolutionLoop`: ``scorer(model, records) -> {name: (N,) array}``.

    For each record, rendered as :mod:`diverseevol.render` does (Alpaca prompt + response + eos,
    or the tokenizer's chat template for chat records), over its assistant tokens only (every
    assistant turn, eos or end-of-turn included), the mean of

    - ``"confidence"``: the probability of the most likely next token,
    - ``"margin"``: the top-1 minus the top-2 next-token probability,
    - ``"entropy"``: the next-token entropy (nats),
    - ``"loss"``: the negative log-likelihood of the actual next token (nats), i.e. the record's
      mean training loss under the model (the quality signal of the ``kmq`` sampler).

    Computed with ``topk(2)`` and ``logsumexp`` over the vocabulary (no full sort). The original
    DiverseEvol code ranked raw logits over all tokens, prompt included; probabilities over the
    response are comparable across records of different prompt lengths.

    Parameters
    ----------
    batch_size : int, default 32
    max_length : int, default 512
    progress : bool, default True
    embedder : HFEmbedder, optional
        When its last call (with ``scores=True``) was over the same model object and records,
        its scores are returned without another forward pass.
    tokenizer, comm : optional
        As for :class:`~diverseevol.hf.HFEmbedder`.
    template : {"auto", "alpaca", "chat"}, default "auto"
        As for :class:`~diverseevol.hf.HFEmbedder`; the chat template for chat records unless named.
    max_batch_tokens : int, optional
        As for :class:`~diverseevol.hf.HFEmbedder`.
    onednn : bool or "auto", default "auto"
        As for :class:`~diverseevol.hf.HFEmbedder`: on a CPU, the float32 linear layers (the
        LM head included) run through oneDNN during the pass (``"auto"``: unless PyTorch's BLAS is
        MKL on an Intel CPU).
    compile : bool or "auto", default False
        As for :class:`~diverseevol.hf.HFEmbedder`: the transformer body through ``torch.compile``.

    Notes
    -----
    :meth:`shares_pass_with` tells the loop when an embedder's
    :meth:`~diverseevol.hf.HFEmbedder.embed_and_score` gives this scorer's scores, so a round
    that needs both runs the model once. :meth:`record_lengths` gives the loop each record's
    length in tokens, for samplers that require lengths.
    """

    def __init__(
        self,
        batch_size: int = 32,
        max_length: int = 512,
        progress: bool = True,
        *,
        embedder: HFEmbedder | None = None,
        tokenizer: Any = None,
        comm: Any = None,
        template: str = "auto",
        max_batch_tokens: int | None = None,
        onednn: bool | str = "auto",
        compile: bool | str = False,
    ) -> None:
        check_compile(compile)
        self.onednn = check_onednn(onednn)
        self.max_batch_tokens = max_batch_tokens
        self.compile = compile
        self.batch_size = batch_size
        self.max_length = max_length
        self.progress = progress
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.comm = comm
        self.template = template
        self._lengths_key: tuple[Any, ...] | None = None
        self._lengths: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"HFScorer(batch_size={self.batch_size}, max_length={self.max_length})"

    def get_params(self) -> dict[str, Any]:
        """The constructor settings (recorded in the run directory's ``config.json``)."""
        params: dict[str, Any] = {"batch_size": self.batch_size, "max_length": self.max_length}
        if self.template != "auto":
            params["template"] = self.template
        if self.max_batch_tokens is not None:
            params["max_batch_tokens"] = self.max_batch_tokens
        if self.onednn != "auto":
            params["onednn"] = self.onednn
        if self.compile is not False:
            params["compile"] = self.compile
        return params

    def shares_pass_with(self, embedder: Any) -> bool:
        """Whether ``embedder.embed_and_score(model, records)`` returns this scorer's scores.

        True for the :class:`~diverseevol.hf.HFEmbedder` this scorer was built with, and for any
        HFEmbedder that renders and truncates records as this scorer does (same ``template``,
        ``max_length``, tokenizer and communicator); batch sizes do not change the scores.
        """
        if not isinstance(embedder, HFEmbedder) or embedder.template != self.template:
            return False
        if embedder is self.embedder:
            return True
        return (
            embedder.max_length == self.max_length
            and self.tokenizer is embedder.tokenizer
            and self.comm is embedder.comm
        )

    def record_lengths(self, model: Any, records: Sequence[InstructionRecord]) -> np.ndarray:
        """Each record's length in tokens: the whole rendered record (prompt, response, eos), not cut
        to ``max_length``, under this scorer's tokenizer (else the model's).

        Parameters
        ----------
        model : ModelHandle, (model, tokenizer) tuple, or a model with ``tokenizer`` given here
            Only its tokenizer is used.
        records : sequence of InstructionRecord, length N

        Returns
        -------
        ndarray of float64, shape (N,)
            Item ``i`` is the token count of ``records[i]``; the last result is kept for the same
            tokenizer and records (a loop asks once per round).
        """
        from ..render import encode_records
        from ._model import resolve_model

        tokenizer = self.tokenizer if self.tokenizer is not None else resolve_model(model)[1]
        records = list(records)
        key = (id(tokenizer), self.template, len(records), hash(tuple(records)))
        if self._lengths is None or self._lengths_key != key:
            ids, _ = encode_records(tokenizer, records, template=self.template)
            self._lengths = np.array([len(x) for x in ids], dtype=np.float64)
            self._lengths_key = key
        return self._lengths.copy()

    def __call__(self, model: Any, records: Sequence[InstructionRecord]) -> dict[str, np.ndarray]:
        """Return ``{"confidence", "margin", "entropy", "loss"}``, each a float64 array of shape (N,), row i =
        records[i]."""
        if self.embedder is not None and getattr(self.embedder, "template", "auto") == self.template:
            cached = self.embedder.cached_scores(model, records)
            if cached is not None:
                return cached
        _, scores = forward_pass(
            model,
            records,
            tokenizer=self.tokenizer,
            embeddings=False,
            scores=True,
            batch_size=self.batch_size,
            max_length=self.max_length,
            progress=self.progress,
            comm=self.comm,
            template=self.template,
            max_batch_tokens=self.max_batch_tokens,
            onednn=self.onednn,
            compile=self.compile,
        )
        assert scores is not None
        return scores
