"""The training loss on response tokens, from the final hidden states, a chunk of positions at a time.

A causal LM's own loss (``model(..., labels=labels).loss``) projects every position of the batch
onto the vocabulary: (B, T, V) float32 logits, their log-softmax and, in the backward pass, their
gradient (8 x 256 x 49,152 x 4 bytes = 403 MB each for SmolLM2-135M at ``max_length=256``),
although the prompt positions are masked with -100 and add nothing. Here the model runs without
its LM head (``logits_to_keep`` selects no position), a forward hook keeps the body's last hidden
state, and the head runs only at the positions whose next token is a response token, ``chunk``
positions at a time, each chunk under activation checkpointing: its logits are freed after its
cross-entropy and recomputed in the backward pass, so no more than one chunk's logits (about
64 MB) ever exist at once.

The loss is the model's own to float rounding: the sum of the response tokens' cross-entropy
divided by ``num_items_in_batch`` when the Trainer counts the tokens of the whole (accumulated)
batch, else their mean, as transformers' ``ForCausalLMLoss``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from ._model import base_model, body_and_head
from ._records import IGNORE_INDEX

logger = logging.getLogger(__name__)

__all__ = ["MAX_LOGIT_ELEMENTS", "ResponseLoss", "response_nll_sum", "response_targets"]

#: Bound on the logits (positions x vocabulary) one chunk materialises: 2**24 float32 = 64 MB.
MAX_LOGIT_ELEMENTS = 1 << 24


def response_targets(labels: Any) -> tuple[Any, Any]:
    """Which positions predict a response token, and those tokens.

    Parameters
    ----------
    labels : torch.Tensor of int64, shape (B, T)
        Training labels: the token id on response tokens, ``-100`` elsewhere.

    Returns
    -------
    predicts : torch.Tensor of bool, shape (B, T)
        ``predicts[b, p]``: ``labels[b, p + 1]`` is a response token (False at ``p = T - 1``).
    targets : torch.Tensor of int64, shape (M,)
        ``labels[b, p + 1]`` at the M positions where ``predicts`` holds, in row-major order.
    """
    import torch

    following = labels[:, 1:]
    predicts = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    predicts[:, :-1] = following != IGNORE_INDEX
    return predicts, following[predicts[:, :-1]]


def _nll_sum(head: Any, hidden: Any, targets: Any) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(head(hidden).float(), targets, reduction="sum")


def response_nll_sum(
    head: Any, hidden: Any, predicts: Any, targets: Any, *, max_logit_elements: int = MAX_LOGIT_ELEMENTS
) -> Any:
    """Summed next-token cross-entropy at the positions ``predicts``, never holding more than one chunk's logits.

    Parameters
    ----------
    head : torch.nn.Module
        The LM head (hidden size d -> vocabulary V).
    hidden : torch.Tensor, shape (B, T, d)
        The body's last hidden states (after its final norm).
    predicts : torch.Tensor of bool, shape (B, T)
        Positions to score (see :func:`response_targets`).
    targets : torch.Tensor of int64, shape (M,)
        Their next tokens, M = ``predicts.sum()``.
    max_logit_elements : int, default :data:`MAX_LOGIT_ELEMENTS`
        Positions per chunk: ``max(1, max_logit_elements // V)``.

    Returns
    -------
    torch.Tensor
        Scalar float32, differentiable; 0 when M = 0.

    Notes
    -----
    With gradients on, each chunk runs under ``torch.utils.checkpoint`` (non-reentrant): the
    forward pass keeps only the chunk's hidden rows, the backward pass recomputes its logits.
    """
    import torch
    from torch.utils.checkpoint import checkpoint

    rows = hidden[predicts]
    vocab = int(getattr(head, "out_features", 0) or head.weight.shape[0])
    chunk = max(1, int(max_logit_elements) // max(vocab, 1))
    grad = torch.is_grad_enabled() and rows.requires_grad
    total = None
    for a in range(0, max(rows.shape[0], 1), chunk):  # one (empty) chunk when M = 0: a loss tied to the graph
        h, t = rows[a : a + chunk], targets[a : a + chunk]
        part = checkpoint(_nll_sum, head, h, t, use_reentrant=False) if grad else _nll_sum(head, h, t)
        total = part if total is None else total + part
    return total


class ResponseLoss:
    """``compute_loss_func`` of transformers' ``Trainer``: the response-token loss without full logits.

    Built on the model before the Trainer wraps it: registers a forward hook on the model's body
    (the decoder) that keeps its last hidden state. The Trainer must call the model with
    :meth:`model_inputs`' ``logits_to_keep`` (see :meth:`collator`), so the model's own LM head
    computes nothing; this object then computes the loss from the kept hidden states.

    Parameters
    ----------
    model : transformers causal LM or peft model
        The model being trained (LoRA layers in place).
    max_logit_elements : int, default :data:`MAX_LOGIT_ELEMENTS`
        Bound on the logits of one chunk (positions x vocabulary).
    """

    def __init__(self, model: Any, *, max_logit_elements: int = MAX_LOGIT_ELEMENTS) -> None:
        body, self.head = body_and_head(model)
        self.max_logit_elements = int(max_logit_elements)
        self._hidden: Any = None
        self._hook = body.register_forward_hook(self._keep)

    def _keep(self, module: Any, args: Any, output: Any) -> None:
        self._hidden = output[0] if isinstance(output, tuple) else output.last_hidden_state

    def collator(self, collate: Callable[[list[Any]], dict[str, Any]]) -> Callable[[list[Any]], dict[str, Any]]:
        """Wrap a data collator: its batches also ask the model for no logits (``logits_to_keep``)."""
        import torch

        def collate_without_logits(features: list[Any]) -> dict[str, Any]:
            batch = collate(features)
            batch["logits_to_keep"] = torch.zeros(0, dtype=torch.long)  # keep no position: the head is skipped
            return batch

        return collate_without_logits

    def __call__(self, outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        """The batch's loss: summed response cross-entropy / ``num_items_in_batch``, or its mean without it."""
        hidden, self._hidden = self._hidden, None
        if hidden is None:
            raise RuntimeError("ResponseLoss: the model's body did not run before the loss (no hidden states kept).")
        predicts, targets = response_targets(labels.to(hidden.device))
        total = response_nll_sum(self.head, hidden, predicts, targets, max_logit_elements=self.max_logit_elements)
        if num_items_in_batch is None:
            return total / targets.numel()  # the mean; NaN without response tokens, as transformers' loss
        if hasattr(num_items_in_batch, "to"):
            num_items_in_batch = num_items_in_batch.to(total.device)
        return total / num_items_in_batch

    def remove(self) -> None:
        """Remove the forward hook (after training)."""
        self._hook.remove()
        self._hidden = None


def response_loss_applies(model: Any, training_args: Any = None) -> bool:
    """Whether :class:`ResponseLoss` gives ``model``'s own training loss.

    True when the causal LM's ``forward`` takes ``logits_to_keep``, no label smoothing is asked
    for, and its logits are its LM head applied to its body's last hidden state (checked on one
    four-token sequence: architectures that scale or soft-cap logits after the head fail it, and
    train with the model's own loss).
    """
    import torch

    if training_args is not None and float(getattr(training_args, "label_smoothing_factor", 0.0) or 0.0) != 0.0:
        return False
    inner = base_model(model)
    if "logits_to_keep" not in inspect.signature(inner.forward).parameters:
        return False
    body, head = body_and_head(model)
    kept: list[Any] = []
    hook = body.register_forward_hook(lambda m, a, out: kept.append(out[0] if isinstance(out, tuple) else
                                                                   out.last_hidden_state))
    was_training = model.training
    try:
        model.eval()
        device = next(model.parameters()).device
        ids = torch.arange(1, 5, device=device)[None, :] % int(getattr(head, "out_features", 5) or 5)
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits.float()
            mine = head(kept[-1]).float()
        scale = float(logits.abs().max()) or 1.0
        ok = mine.shape == logits.shape and bool(torch.allclose(mine, logits, rtol=1e-3, atol=1e-4 * scale))
    except Exception as exc:  # an architecture this path does not understand: the model's own loss
        logger.debug("chunked response loss not usable for %s: %s", type(inner).__name__, exc)
        ok = False
    finally:
        hook.remove()
        model.train(was_training)
    if not ok:
        logger.info("%s: its logits are not its LM head on the last hidden state; training with its own loss",
                    type(inner).__name__)
    return ok
