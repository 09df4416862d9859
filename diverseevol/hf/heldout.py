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

    Parameters
    ----------
    max_length : int, default 512
        Sequences are cut as in training (:func:`~diverseevol.hf.tokenize_records`); a record
        whose whole response is cut contributes 0 tokens.
    batch_size : int, default 8
        Records per forward pass (length-sorted, right-padded).
    """

    def __init__(self, max_length: int = 512, batch_size: int = 8) -> None:
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)

    def __call__(self, handle: Any, records: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        tok = tokenize_records(handle.tokenizer, list(records), max_length=self.max_length, warn_truncated=False)
        n = len(tok)
        nll = np.zeros(n, dtype=np.float64)
        count = np.zeros(n, dtype=np.int64)
        order = np.argsort([len(ids) for ids in tok.input_ids], kind="stable")
        pad = handle.tokenizer.pad_token_id
        with torch.no_grad():
            for lo in range(0, n, self.batch_size):
                rows = order[lo : lo + self.batch_size]
                width = max(len(tok.input_ids[i]) for i in rows)
                ids = torch.full((len(rows), width), pad, dtype=torch.long)
                att = torch.zeros((len(rows), width), dtype=torch.long)
                for b, i in enumerate(rows):
                    ids[b, : len(tok.input_ids[i])] = torch.tensor(tok.input_ids[i])
                    att[b, : len(tok.input_ids[i])] = 1
                logits = handle.model(input_ids=ids.to(handle.device), attention_mask=att.to(handle.device)).logits
                logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
                per_token = -logp.gather(-1, ids[:, 1:].to(handle.device)[..., None])[..., 0].cpu().numpy()
                for b, i in enumerate(rows):
                    mask = _response_mask(tok, int(i), width)
                    nll[i] = float(per_token[b][mask].sum())
                    count[i] = int(mask.sum())
        return nll, count


def _response_mask(tok: Any, i: int, width: int) -> np.ndarray:
    """Positions p of the shifted sequence (predicting token p + 1) whose target is response text."""
    n = len(tok.input_ids[i])
    mask = np.zeros(width - 1, dtype=bool)
    if tok.loss_mask is not None:
        mask[: n - 1] = np.asarray(tok.loss_mask[i][1:n], dtype=bool)
    else:
        mask[max(int(tok.response_start[i]) - 1, 0) : n - 1] = True
    return mask


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
