"""Reference-response loss of a Hugging Face causal LM on held-out records.

:class:`HFResponseLoss` is the ``loss`` callable of :class:`diverseevol.judge.heldout.HeldoutJudge`:
for each record, the summed negative log-likelihood of its response tokens (the tokens the
trainer trains on: the Alpaca response or the assistant turns of a chat record) given everything
before them, and how many such tokens there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._records import tokenize_records

__all__ = ["HFRecordAnswers", "HFResponseLoss"]


class HFResponseLoss:
    """``loss(handle, records) -> (nll_sum, n_tokens)``, both of shape (n,), in record order.

    Computed by the scorer's pass (:func:`~diverseevol.hf.embedder.forward_pass` with
    ``scores=True``): the LM head runs only at the positions that predict a response token, a
    bounded chunk of logits at a time, so no (batch, length, vocabulary) logits are materialised
    (8 x 256 x 49,152 float32 logits and their log-softmax were 0.8 GB for SmolLM2-135M). The
    record's summed negative log-likelihood is its mean ``"loss"`` score times its response-token
    count. Runs in this process alone (no sharding over ``torch.distributed`` ranks).

    Parameters
    ----------
    max_length : int, default 512
        Sequences are cut as in training (:func:`~diverseevol.hf.tokenize_records`); a record
        whose whole response is cut contributes 0 tokens (and 0 to ``nll_sum``).
    batch_size : int, default 8
        Sets the batch memory: a forward pass holds up to ``batch_size x max_length`` padded
        tokens of length-sorted records (more records when they are short).
    """

    def __init__(self, max_length: int = 512, batch_size: int = 8) -> None:
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)

    def __call__(self, handle: Any, records: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(nll_sum, n_tokens)``: float64 and int64 arrays of shape (n,), item i for ``records[i]``."""
        from ..comm import LocalCommunicator
        from .embedder import forward_pass

        records = list(records)
        tok = tokenize_records(handle.tokenizer, records, max_length=self.max_length, warn_truncated=False)
        # positions p predicting a response token p + 1: the tokens the trainer trains on
        count = np.array([int(tok.mask(i)[1:].sum()) for i in range(len(tok))], dtype=np.int64)
        if not records:
            return np.zeros(0, dtype=np.float64), count
        _, scores = forward_pass(
            handle,
            records,
            embeddings=False,
            scores=True,
            batch_size=self.batch_size,
            max_length=self.max_length,
            progress=False,
            comm=LocalCommunicator(),
            warn_truncated=False,
        )
        assert scores is not None
        nll = np.where(count > 0, np.nan_to_num(scores["loss"]) * count, 0.0)
        return nll, count


class HFRecordAnswers:
    """``answers(handle, records) -> list of str``: greedy answers to held-out records' prompts.

    An Alpaca/Dolly record's prompt is its Alpaca template up to ``### Response:`` (as in
    training); a chat record's is every turn before its last assistant turn, through the
    tokenizer's chat template with the generation prompt.

    Parameters
    ----------
    **generator
        Keyword arguments of :class:`~diverseevol.hf.HFGenerator` (``max_new_tokens``,
        ``batch_size``...); decoding is greedy unless ``do_sample=True``.
    """

    def __init__(self, **generator: Any) -> None:
        from .generation import HFGenerator

        self.alpaca = HFGenerator(apply_template=True, **generator)
        self.verbatim = HFGenerator(apply_template=False, **generator)

    def __call__(self, handle: Any, records: Sequence[Any]) -> list[str]:
        from ..render import chat_messages

        answers: list[str | None] = [None] * len(records)
        chat = [i for i, r in enumerate(records) if r.is_chat]
        plain = [i for i, r in enumerate(records) if not r.is_chat]
        if plain:
            for i, a in zip(plain, self.alpaca(handle, [records[i] for i in plain])):
                answers[i] = a
        if chat:
            prompts = []
            for i in chat:
                messages = chat_messages(records[i])
                last = max(j for j, m in enumerate(messages) if m["role"] == "assistant")
                prompts.append(handle.tokenizer.apply_chat_template(messages[:last], tokenize=False,
                                                                    add_generation_prompt=True))
            for i, a in zip(chat, self.verbatim(handle, prompts)):
                answers[i] = a
        return [a or "" for a in answers]
