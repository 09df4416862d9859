"""Answer generation for evaluation (judges): batched greedy or sampled decoding."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._progress import progress_bar
from .._validation import check_scalar
from ..comm import active_communicator, shard_slice
from ..data import InstructionRecord, format_prompt
from ..errors import ValidationError
from ._model import resolve_model

logger = logging.getLogger(__name__)

__all__ = ["HFGenerator"]


class HFGenerator:
    """Answer generator: ``generator(model, prompts) -> list[str]`` (also ``generator.generate``).

    This is the ``generate`` callable the judges in :mod:`diverseevol.judge` take.

    Prompts: by default (``apply_template=True``) each item is a raw instruction (a question,
    or an :class:`~diverseevol.data.InstructionRecord`) and is wrapped in the Alpaca template
    with :func:`diverseevol.data.format_prompt` here; so do *not* also pass
    ``prompt_format=format_prompt`` to the judge. With ``apply_template=False`` each item is
    used verbatim (an already formatted prompt). The answer is the decoded text generated after
    the prompt (i.e. after ``### Response:``), without special tokens, stripped of surrounding
    whitespace, ending at the first eos.

    Parameters
    ----------
    max_new_tokens : int, default 256
    batch_size : int, default 8
        Prompts per ``generate`` call; prompts are length-sorted and left-padded.
    do_sample : bool, default False
        Greedy decoding when False.
    temperature, top_p : float
        Sampling parameters (only used with ``do_sample=True``).
    seed : int, default 0
        Seeds sampling; results repeat for the same seed, batch size and process count.
    apply_template : bool, default True
    max_prompt_length : int, default 1024
        Prompts longer than this many tokens keep their last ``max_prompt_length`` tokens.
    progress : bool, default True
    tokenizer, comm : optional
        As for :class:`~diverseevol.hf.HFEmbedder`; under several processes each rank answers a
        share of the prompts and every rank returns all answers.

    Examples
    --------
    >>> gen = HFGenerator(max_new_tokens=64)
    >>> gen(handle, ["What is the capital of France?"])        # doctest: +SKIP
    ['The capital of France is Paris.']
    """

    def __init__(
        self,
        max_new_tokens: int = 256,
        batch_size: int = 8,
        do_sample: bool = False,
        temperature: float = 0.7,
        top_p: float = 0.9,
        seed: int = 0,
        apply_template: bool = True,
        max_prompt_length: int = 1024,
        progress: bool = True,
        *,
        tokenizer: Any = None,
        comm: Any = None,
    ) -> None:
        check_scalar(max_new_tokens, "max_new_tokens", int, min_val=1)
        check_scalar(batch_size, "batch_size", int, min_val=1)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.do_sample = do_sample
        self.temperature = temperature
        self.top_p = top_p
        self.seed = seed
        self.apply_template = apply_template
        self.max_prompt_length = max_prompt_length
        self.progress = progress
        self.tokenizer = tokenizer
        self.comm = comm

    def __repr__(self) -> str:
        return (
            f"HFGenerator(max_new_tokens={self.max_new_tokens}, batch_size={self.batch_size}, "
            f"do_sample={self.do_sample}, apply_template={self.apply_template})"
        )

    def get_params(self) -> dict[str, Any]:
        """The constructor settings."""
        return {
            k: getattr(self, k)
            for k in (
                "max_new_tokens",
                "batch_size",
                "do_sample",
                "temperature",
                "top_p",
                "seed",
                "apply_template",
                "max_prompt_length",
            )
        }

    def __call__(self, model: Any, prompts: Sequence[str | InstructionRecord]) -> list[str]:
        return self.generate(model, prompts)

    def _texts(self, prompts: Sequence[str | InstructionRecord]) -> list[str]:
        texts = []
        for i, p in enumerate(prompts):
            if isinstance(p, InstructionRecord):
                texts.append(format_prompt(p))
            elif isinstance(p, str):
                texts.append(format_prompt(p) if self.apply_template else p)
            else:
                raise ValidationError(
                    f"prompts[{i}] is {type(p).__name__}; expected str or InstructionRecord."
                )
        return texts

    def generate(self, model: Any, prompts: Sequence[str | InstructionRecord]) -> list[str]:
        """Return one answer per prompt, in the order of ``prompts``."""
        import torch

        model, tokenizer = resolve_model(model, self.tokenizer)
        texts = self._texts(prompts)
        n = len(texts)
        if n == 0:
            return []
        encoded = tokenizer(texts, add_special_tokens=True)["input_ids"]
        encoded = [list(e)[-self.max_prompt_length :] for e in encoded]
        order = np.argsort(-np.fromiter(map(len, encoded), dtype=np.int64, count=n), kind="stable")
        comm = active_communicator(self.comm)
        rank, world = (comm.rank, comm.world_size) if comm is not None else (0, 1)
        mine = order[shard_slice(n, rank, world, strided=True)]  # similar lengths on every rank
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.do_sample,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        }
        if self.do_sample:
            gen_kwargs.update(temperature=self.temperature, top_p=self.top_p)
        else:  # silence "temperature is set but do_sample=False" from the model's generation config
            gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        answers: dict[int, str] = {}
        n_batches = (len(mine) + self.batch_size - 1) // self.batch_size
        bar = progress_bar(total=n_batches, disable=not self.progress or rank != 0, desc="generating")
        devices = [device.index or 0] if device.type == "cuda" else []
        try:
            with torch.inference_mode(), torch.random.fork_rng(devices=devices):
                for b in range(n_batches):
                    idx = mine[b * self.batch_size : (b + 1) * self.batch_size]
                    seqs = [encoded[i] for i in idx]
                    width = max(len(s) for s in seqs)
                    ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
                    mask = torch.zeros((len(seqs), width), dtype=torch.long)
                    for j, s in enumerate(seqs):  # left padding: the new tokens line up at the end
                        ids[j, width - len(s) :] = torch.tensor(s, dtype=torch.long)
                        mask[j, width - len(s) :] = 1
                    torch.manual_seed(self.seed + int(idx[0]))
                    out = model.generate(
                        input_ids=ids.to(device), attention_mask=mask.to(device), **gen_kwargs
                    )
                    new = out[:, width:].cpu()
                    for j, i in enumerate(idx):
                        answers[int(i)] = tokenizer.decode(new[j], skip_special_tokens=True).strip()
                    bar.update(1)
        finally:
            bar.close()
            if was_training:
                model.train()
        if comm is not None:
            for part in comm.all_gather_object(answers):
                answers.update(part)
        return [answers[i] for i in range(n)]
