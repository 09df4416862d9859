"""Uncertainty scores computed inside the forward pass, from the hidden states the pass already has.

Per position, from the LM head's logits: the highest next-token probability, the top-1 minus
top-2 probability, the next-token entropy and the negative log-probability of the actual next
token (``topk(2)`` and ``logsumexp`` over the vocabulary, never a full sort); per record, their
mean over the positions that predict an assistant token (the last one: the record's ``loss``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..samplers.uncertainty import UNCERTAINTY_SCORES

__all__ = ["SCORE_NAMES", "batch_scores", "token_scores"]

#: Score names, in the column order of :func:`token_scores` and :func:`batch_scores`: the scores
#: the uncertainty samplers read (:data:`diverseevol.samplers.uncertainty.UNCERTAINTY_SCORES`),
#: then the mean response-token negative log-likelihood ``"loss"`` (read by ``kmq``).
SCORE_NAMES: tuple[str, ...] = (*UNCERTAINTY_SCORES, "loss")

#: Bound on logits materialised at once when scoring (positions x vocabulary).
_MAX_LOGIT_ELEMENTS = 1 << 25


def token_scores(head: Any, hidden: Any, targets: Any) -> Any:
    """Per position (rows of ``hidden``): max probability, top1 - top2, entropy and the negative
    log-probability of ``targets`` (the next tokens, shape (M,)); shape (M, 4), float32.

    Uses ``topk(2)`` and ``logsumexp`` over the vocabulary, never a full sort.
    """
    import torch

    vocab = head.weight.shape[0]
    chunk = max(1, _MAX_LOGIT_ELEMENTS // vocab)
    out = torch.empty((hidden.shape[0], len(SCORE_NAMES)), dtype=torch.float32, device=hidden.device)
    for a in range(0, hidden.shape[0], chunk):
        logits = head(hidden[a : a + chunk]).float()
        log_z = torch.logsumexp(logits, dim=-1)
        out[a : a + chunk, 3] = log_z - logits.gather(1, targets[a : a + chunk, None]).squeeze(1)
        top2 = torch.topk(logits, k=min(2, vocab), dim=-1).values
        p1 = torch.exp(top2[:, 0] - log_z)
        p2 = torch.exp(top2[:, 1] - log_z) if vocab > 1 else torch.zeros_like(p1)
        probs = torch.exp(logits - log_z[:, None])
        entropy = log_z - (probs * logits).sum(-1)
        out[a : a + chunk, 0] = p1
        out[a : a + chunk, 1] = p1 - p2
        out[a : a + chunk, 2] = entropy.clamp_min(0.0)
    return out


def batch_scores(head: Any, hidden: Any, mask: Any, predicts: np.ndarray, ids: Any) -> Any:
    """Mean per-record token scores of one right-padded batch; float64 tensor (B, 4) on the model's
    device (columns in :data:`SCORE_NAMES` order), NaN without response tokens.

    ``predicts`` (bool, shape (B, T)): position p predicts an assistant token p + 1
    (:meth:`~diverseevol.hf._records.TokenizedRecords.prediction_mask`); ``ids`` (B, T): the
    batch's token ids, whose token p + 1 is the target of position p.
    """
    import torch

    bsz = mask.shape[0]
    predicting = torch.as_tensor(predicts, device=mask.device)
    rows = predicting.nonzero(as_tuple=True)[0]
    following = torch.roll(ids, shifts=-1, dims=1)  # [b, p] = ids[b, p + 1]; predicts is False at p = T - 1
    token_sc = token_scores(head, hidden[predicting], following[predicting])
    sums = torch.zeros((bsz, len(SCORE_NAMES)), dtype=torch.float64, device=mask.device)
    sums.index_add_(0, rows, token_sc.double())
    counts = torch.bincount(rows, minlength=bsz).double()
    means = sums / counts[:, None]
    means[counts == 0] = float("nan")
    return means
