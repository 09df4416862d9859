"""Tokenisation of instruction records, rendered by :mod:`diverseevol.render`.

One sequence per record. Alpaca template (Alpaca/Dolly records): ``prompt tokens`` (with the
tokenizer's own special prefix, e.g. ``<s>``) followed by ``response tokens + eos``; the prompt
and the response are tokenised separately, as in the Stanford Alpaca training code, so the
boundary between them is exact. Chat template (chat records, or ``template="chat"``): the
tokenizer's ``apply_chat_template`` text, each segment tokenised on its own. Either way training
labels are ``-100`` on every token that is not assistant text (every assistant turn of a
multi-turn record is trained on), and uncertainty scores average over the assistant tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import check_scalar
from ..data import InstructionRecord
from ..errors import ValidationError
from ..render import encode_records

__all__ = [
    "IGNORE_INDEX",
    "CausalLMCollator",
    "TokenizedRecords",
    "TrainingDataset",
    "ensure_pad_token",
    "tokenize_records",
]

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


@dataclass(frozen=True)
class TokenizedRecords:
    """Token ids of a list of records.

    Attributes
    ----------
    input_ids : list of list of int
        ``input_ids[i]`` is record ``i``'s full sequence, truncated to ``max_length``.
    response_start : numpy.ndarray of int64, shape (N,)
        Position of the first response (assistant) token in ``input_ids[i]``; equals
        ``len(input_ids[i])`` when truncation removed the whole response.
    loss_mask : list of numpy.ndarray of bool, optional
        ``loss_mask[i][p]``: token ``p`` of record ``i`` is assistant text (trained on, scored).
        None means every token from ``response_start[i]`` on.
    """

    input_ids: list[list[int]]
    response_start: np.ndarray
    loss_mask: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        """Sequence lengths, shape (N,), int64."""
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def mask(self, i: int) -> np.ndarray:
        """Record ``i``'s loss mask, bool of shape (len(input_ids[i]),): True on assistant tokens."""
        if self.loss_mask is not None:
            return self.loss_mask[i]
        m = np.zeros(len(self.input_ids[i]), dtype=bool)
        m[int(self.response_start[i]) :] = True
        return m

    def labels(self, i: int) -> list[int]:
        """Training labels of record ``i``: ``-100`` on prompt tokens, the token id on response tokens."""
        ids = self.input_ids[i]
        if self.loss_mask is None:
            start = int(self.response_start[i])
            return [IGNORE_INDEX] * start + ids[start:]
        return [tok if keep else IGNORE_INDEX for tok, keep in zip(ids, self.loss_mask[i].tolist())]

    def prediction_mask(self, rows: Sequence[int], width: int) -> np.ndarray:
        """Which positions predict an assistant token, for the records ``rows`` padded to ``width``.

        Returns
        -------
        numpy.ndarray of bool, shape (len(rows), width)
            Entry ``[b, p]`` is True when token ``p + 1`` of record ``rows[b]`` is assistant text
            (position ``p``'s next-token distribution is scored).
        """
        out = np.zeros((len(rows), width), dtype=bool)
        for b, i in enumerate(rows):
            m = self.mask(int(i))[1 : width + 1]
            out[b, : m.size] = m
        return out


def ensure_pad_token(tokenizer: Any) -> None:
    """Give ``tokenizer`` a pad token when it has none (eos, else unk), as LLaMA tokenizers need."""
    if tokenizer.pad_token_id is not None:
        return
    fallback = tokenizer.eos_token or tokenizer.unk_token
    if fallback is None:
        raise ValidationError(
            "The tokenizer has no pad, eos or unk token, so batches cannot be padded; "
            "set one with tokenizer.add_special_tokens({'pad_token': '<pad>'}) and resize the model's embeddings."
        )
    tokenizer.pad_token = fallback


def tokenize_records(
    tokenizer: Any,
    records: Sequence[InstructionRecord],
    *,
    max_length: int = 512,
    add_eos: bool = True,
    warn_truncated: bool = True,
    template: str = "auto",
) -> TokenizedRecords:
    """Tokenise ``records`` as rendered by :func:`diverseevol.render.render_record` (see the module docstring).

    Parameters
    ----------
    tokenizer : transformers tokenizer
        Any Hugging Face tokenizer. Alpaca template: the prompt is encoded with its special
        tokens (bos), the response without. Chat template: needs ``tokenizer.chat_template``.
    records : sequence of InstructionRecord
    max_length : int, default 512
        Sequences are cut to their first ``max_length`` tokens (the end of long responses is
        dropped first, as in the Alpaca training code).
    add_eos : bool, default True
        Alpaca template: append ``tokenizer.eos_token_id`` to every response (the chat
        template ends turns itself).
    warn_truncated : bool, default True
        Log a warning when truncation removes a record's whole response (it then adds no
        training loss and has no score); embedding-only callers pass False.
    template : {"auto", "alpaca", "chat"}, default "auto"
        ``auto``: the chat template for chat records, the Alpaca template otherwise.

    Returns
    -------
    TokenizedRecords
        With ``loss_mask`` set when some record has more than one assistant turn.
    """
    check_scalar(max_length, "max_length", int, min_val=2, what="tokens per record")
    records = list(records)
    for i, rec in enumerate(records):
        if not isinstance(rec, InstructionRecord):
            raise ValidationError(
                f"records[{i}] is {type(rec).__name__}, expected diverseevol.data.InstructionRecord; "
                "load data with diverseevol.load_instructions or build InstructionRecord objects."
            )
    if not records:
        return TokenizedRecords([], np.zeros(0, dtype=np.int64))
    full_ids, full_masks = encode_records(tokenizer, records, template=template, add_eos=add_eos)
    input_ids: list[list[int]] = []
    masks: list[np.ndarray] = []
    starts = np.empty(len(records), dtype=np.int64)
    n_cut = 0
    contiguous = True  # every mask is prompt then response: response_start alone describes it
    for i, (seq, m) in enumerate(zip(full_ids, full_masks)):
        mask = np.asarray(m, dtype=bool)
        if len(seq) > max_length:
            seq, mask = seq[:max_length], mask[:max_length]
            n_cut += 1
        hits = np.flatnonzero(mask)
        starts[i] = hits[0] if hits.size else len(seq)
        contiguous = contiguous and bool(mask[starts[i] :].all())
        input_ids.append(list(seq))
        masks.append(mask)
    n_empty = sum(1 for m in masks if not m.any())
    if n_cut:
        logger.info(
            "%d of %d records were truncated to max_length=%d tokens", n_cut, len(records), max_length
        )
    if n_empty and warn_truncated:
        logger.warning(
            "%d of %d records lost their whole response to truncation at max_length=%d; they add no "
            "training loss and score as NaN. Raise max_length to keep them.",
            n_empty,
            len(records),
            max_length,
        )
    return TokenizedRecords(input_ids, starts, None if contiguous else masks)


class CausalLMCollator:
    """Right-pad ``input_ids`` (pad id), ``attention_mask`` (0) and ``labels`` (-100) to the batch maximum."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = int(pad_token_id)
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            width = (width + m - 1) // m * m
        n = len(features)
        ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
        for i, f in enumerate(features):
            k = len(f["input_ids"])
            ids[i, :k] = torch.tensor(f["input_ids"], dtype=torch.long)
            mask[i, :k] = 1
            if "labels" in f:
                labels[i, :k] = torch.tensor(f["labels"], dtype=torch.long)
        out = {"input_ids": ids, "attention_mask": mask}
        if any("labels" in f for f in features):
            out["labels"] = labels
        return out


class TrainingDataset:
    """A map-style dataset of ``{"input_ids", "labels"}`` for the HF ``Trainer``."""

    def __init__(self, tokenized: TokenizedRecords) -> None:
        self.tokenized = tokenized

    def __len__(self) -> int:
        return len(self.tokenized)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return {"input_ids": self.tokenized.input_ids[i], "labels": self.tokenized.labels(i)}
