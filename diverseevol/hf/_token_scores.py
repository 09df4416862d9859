"""Uncertainty scores computed inside the forward pass, from the hidden states the pass already has.

Per position, from the LM head's logits: the highest next-token probability, the top-1 minus
top-2 probability and the next-token entropy (``topk(2)`` and ``logsumexp`` over the vocabulary,
never a full sort); per record, their mean over the positions that predict an assistant token.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..samplers.uncertainty import UNCERTAINTY_SCORES

__all__ = ["SCORE_NAMES", "batch_scores", "token_scores"]

#: Score names, in the column order of :func:`token_scores` and :func:`batch_scores`: the scores
#: the uncertainty samplers read (:data:`diverseevol.samplers.uncertainty.UNCERTAINTY_SCORES`).
SCORE_NAMES: tuple[str, ...] = UNCERTAINTY_SCORES

#: Bound on logits materialised at once when scoring (positions x vocabulary).
_MAX_LOGIT_ELEMENTS = 1 << 25


def token_scores(head: Any, hidden: Any) -> Any:
    """Per position (rows of ``hidden``): max probability, top1 - top2, entropy; shape (M, 3), float32.

    Uses ``topk(2)`` and ``logsumexp`` over the vocabulary, never a full sort.
    """
    import torch

    vocab = head.weight.shape[0]
    chunk = max(1, _MAX_LOGIT_ELEMENTS // vocab)
    out = torch.empty((hidden.shape[0], 3), dtype=torch.float32, device=hidden.device)
    for a in range(0, hidden.shape[0], chunk):
        logits = head(hidden[a : a + chunk]).float()
        log_z = torch.logsumexp(logits, dim=-1)
        top2 = torch.topk(logits, k=min(2, vocab), dim=-1).values
        p1 = torch.exp(top2[:, 0] - log_z)
        p2 = torch.exp(top2[:, 1] - log_z) if vocab > 1 else torch.zeros_like(p1)
        probs = torch.exp(logits - log_z[:, None])
        entropy = log_z - (probs * logits).sum(-1)
        out[a : a + chunk, 0] = p1
        out[a : a + chunk, 1] = p1 - p2
        out[a : a + chunk, 2] = entropy.clamp_min(0.0)
    return out


def batch_scores(head: Any, hidden: Any, mask: Any, predicts: np.ndarray) -> Any:
    """Mean per-record token scores of one right-padded batch; float64 tensor (B, 3) on the model's
    device, NaN without response tokens.

    ``predicts`` (bool, shape (B, T)): position p predicts an assistant token p + 1
    (:meth:`~diverseevol.hf._records.TokenizedRecords.prediction_mask`).
    """
    import torch

    bsz = mask.shape[0]
    predicting = torch.as_tensor(predicts, device=mask.device)
    rows = predicting.nonzero(as_tuple=True)[0]
    token_sc = token_scores(head, hidden[predicting])
    sums = torch.zeros((bsz, 3), dtype=torch.float64, device=mask.device)
    sums.index_add_(0, rows, token_sc.double())
    counts = torch.bincount(rows, minlength=bsz).double()
    means = sums / counts[:, None]
    means[counts == 0] = float("nan")
    return means
