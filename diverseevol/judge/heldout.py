"""A judge that scores each trained model on held-out records: reference loss and a generation metric.

``HeldoutJudge(records, labels, loss=..., generate=...)`` is a loop judge, ``judge(model, round) ->
{metric: value}``:

* ``heldout_loss``: the mean negative log-likelihood (nats per response token) of each held-out
  record's reference response given its prompt, token-weighted within a label, then averaged over
  labels (macro), so a large category does not hide a small one; ``heldout_loss/<label>`` per label.
* ``rouge_l``: greedy answers to the held-out prompts scored against the references by ROUGE-L F1
  (:func:`~diverseevol.judge.rouge.rouge_l_f1`), averaged within a label then over labels;
  ``rouge_l/<label>`` per label. Loss alone can disagree with generation quality (LIMA, Zhou et
  al. 2023), so the bake-off reports both.

The two model-specific steps are callables, so the judge works with any model:
``loss(model, records) -> (nll_sum, n_tokens)`` (two arrays of shape (n,)) and
``generate(model, records) -> list[str]``; :mod:`diverseevol.hf` provides both for Hugging Face
models (:class:`~diverseevol.hf.HFResponseLoss`, :class:`~diverseevol.hf.HFGenerator`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ValidationError
from .rouge import rouge_l_f1

__all__ = ["HeldoutJudge", "reference_answer"]


def reference_answer(record: Any) -> str:
    """The reference response of a record: ``output``, or a chat record's last assistant turn."""
    messages = getattr(record, "messages", ())
    if messages:
        for turn in reversed(messages):
            if turn.role == "assistant":
                return str(turn.content)
        return ""
    return str(getattr(record, "output", ""))


class HeldoutJudge:
    """Score a model on held-out records: macro reference loss and macro ROUGE-L F1 per label.

    Parameters
    ----------
    records : sequence of InstructionRecord, length n
        The held-out records (never part of the selectable data).
    labels : sequence of str, length n, optional
        One label per record (e.g. Dolly's ``category``); None: one label ``"all"``.
    loss : callable, optional
        ``loss(model, records) -> (nll_sum, n_tokens)``, arrays of shape (n,). None: no loss.
    generate : callable, optional
        ``generate(model, records) -> list of str``, one answer per record. None: no ROUGE-L.
    generate_rounds : sequence of int, optional
        Rounds whose model answers (generation is the slow part); None: every round.
    """

    def __init__(
        self,
        records: Sequence[Any],
        labels: Sequence[Any] | None = None,
        *,
        loss: Callable[[Any, Sequence[Any]], tuple[np.ndarray, np.ndarray]] | None = None,
        generate: Callable[[Any, Sequence[Any]], Sequence[str]] | None = None,
        generate_rounds: Sequence[int] | None = None,
    ) -> None:
        self.records = list(records)
        if not self.records:
            raise ValidationError("HeldoutJudge needs at least one held-out record; got none.")
        if labels is None:
            labels = ["all"] * len(self.records)
        self.labels = [str(x) for x in labels]
        if len(self.labels) != len(self.records):
            raise ValidationError(
                f"HeldoutJudge got {len(self.records)} records but {len(self.labels)} labels; give one label per record."
            )
        if loss is None and generate is None:
            raise ValidationError("HeldoutJudge needs `loss`, `generate` or both; got neither.")
        self.loss = loss
        self.generate = generate
        self.generate_rounds = None if generate_rounds is None else frozenset(int(r) for r in generate_rounds)
        self.references = [reference_answer(r) for r in self.records]

    def __call__(self, model: Any, round: int) -> dict[str, float]:
        out: dict[str, float] = {}
        groups = sorted(set(self.labels))
        lab = np.asarray(self.labels, dtype=object)
        if self.loss is not None:
            nll, count = (np.asarray(a, dtype=np.float64).reshape(-1) for a in self.loss(model, self.records))
            per = {}
            for g in groups:
                sel = lab == g
                tokens = count[sel].sum()
                # NaN when truncation left no response token of the label (raise max_length).
                per[g] = float(nll[sel].sum() / tokens) if tokens > 0 else float("nan")
                out[f"heldout_loss/{g}"] = per[g]
            finite = [v for v in per.values() if np.isfinite(v)]
            out["heldout_loss"] = float(np.mean(finite)) if finite else float("nan")
        if self.generate is not None and (self.generate_rounds is None or round in self.generate_rounds):
            answers = list(self.generate(model, self.records))
            if len(answers) != len(self.records):
                raise ValidationError(
                    f"The generator returned {len(answers)} answers for {len(self.records)} held-out records."
                )
            scores = np.array([rouge_l_f1(a, r) for a, r in zip(answers, self.references)])
            for g in groups:
                out[f"rouge_l/{g}"] = float(scores[lab == g].mean())
            out["rouge_l"] = float(np.mean([out[f"rouge_l/{g}"] for g in groups]))
        return out
