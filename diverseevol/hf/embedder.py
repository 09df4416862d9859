"""Record embeddings (pooled hidden states) and uncertainty scores in one forward pass.

Pooling (``pooling=``) over a record's real tokens, of the hidden states of one layer (``layer=``,
the last by default, after the final norm):

* ``"mean"`` (default, the paper's): the plain mean.
* ``"weighted_mean"``: position-weighted mean, token i of L (1-based) weighted i / (1 + ... + L),
  so later tokens, which have seen more of the record under causal attention, weigh more (the
  pooling of RDS+, Ivison et al. 2025, after SGPT's weighted mean).
* ``"last_token"``: the hidden state of the record's last real token (the eos).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import progress_bar
from .._validation import check_scalar
from ..comm import active_communicator, gather_rows, shard_slice
from ..data import InstructionRecord
from ..errors import ValidationError
from ._batches import default_batch_tokens, plan_batches
from ._fast_paths import (
    CompiledBody,
    causal_sdpa,
    check_compile,
    check_onednn,
    onednn_linears,
    sdpa_attention,
    want_compile,
)
from ._model import body_and_head, resolve_model
from ._records import tokenize_records
from ._token_scores import SCORE_NAMES, batch_scores

logger = logging.getLogger(__name__)

__all__ = ["POOLINGS", "SCORE_NAMES", "HFEmbedder", "forward_pass"]

#: Pooling names accepted by :func:`forward_pass` and :class:`HFEmbedder`.
POOLINGS: tuple[str, ...] = ("mean", "weighted_mean", "last_token")


def _check_pooling(pooling: Any, layer: Any) -> None:
    if pooling not in POOLINGS:
        raise ValidationError(f"pooling must be one of {list(POOLINGS)}; got {pooling!r}.")
    check_scalar(layer, "layer", int, what="an index into the model's hidden states: -1 = the last layer, 0 = the "
                 "token embeddings")


def _pool(hidden: Any, mask: Any, pooling: str) -> Any:
    """Pool right-padded hidden states (B, T, d) over the real tokens of each row; (B, d) float32."""
    import torch

    m = mask.to(torch.float32)
    if pooling == "last_token":
        last = (mask.sum(1) - 1).clamp_min(0)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last].float()
    if pooling == "weighted_mean":
        m = m * torch.arange(1, mask.shape[1] + 1, device=mask.device, dtype=torch.float32)[None, :]
    # (B, 1, T) @ (B, T, d): the weighted sum as one batched matmul, no (B, T, d) temporary
    summed = torch.bmm(m.unsqueeze(1), hidden.float()).squeeze(1)
    return summed / m.sum(1, keepdim=True).clamp_min(1.0)


def default_budget(model: Any, batch_size: int, max_length: int) -> int:
    """Padded tokens per batch of a pass over ``model`` without ``max_batch_tokens``
    (:func:`diverseevol.hf._batches.default_batch_tokens` for this model's widest linear output, activation
    bytes and device)."""
    import torch

    body, _ = body_and_head(model)
    params = list(model.parameters())
    # the activations' dtype: a float parameter's (a quantised model's first parameter may be int8)
    act = next((p for p in params if p.is_floating_point()), params[0])
    widest = max((m.out_features for m in body.modules() if isinstance(m, torch.nn.Linear)), default=0)
    return default_batch_tokens(batch_size, max_length, device_type=params[0].device.type, widest=widest,
                                itemsize=act.element_size())


def _layer_states(out: Any, layer: int) -> Any:
    """The hidden states of ``layer`` from a body output run with ``output_hidden_states=True``."""
    states = out.hidden_states
    if not -len(states) <= layer < len(states):
        raise ValidationError(
            f"layer={layer} is out of range: this model has {len(states)} hidden states (the token "
            f"embeddings and {len(states) - 1} layers); use -{len(states)} .. {len(states) - 1}."
        )
    return states[layer]


def forward_pass(
    model: Any,
    records: Sequence[InstructionRecord],
    *,
    tokenizer: Any = None,
    embeddings: bool = True,
    scores: bool = False,
    batch_size: int = 32,
    max_length: int = 512,
    progress: bool = True,
    comm: Any = None,
    memmap_path: str | Path | None = None,
    causal_padding_free: bool = True,
    pooling: str = "mean",
    layer: int = -1,
    template: str = "auto",
    max_batch_tokens: int | None = None,
    onednn: bool | str = "auto",
    compile: bool | str = False,
    warn_truncated: bool | None = None,
) -> tuple[np.ndarray | None, dict[str, np.ndarray] | None]:
    """Run the model once over ``records``; return embeddings and/or uncertainty scores.

    Parameters
    ----------
    model : ModelHandle, (model, tokenizer) tuple or transformers causal LM
    records : sequence of InstructionRecord, length N
        Each is encoded as Alpaca prompt + response + eos (see :mod:`diverseevol.hf._records`).
    tokenizer : optional
        Needed with a bare model.
    embeddings, scores : bool
        What to compute.
    batch_size : int, default 32
        Sets the batch memory: batches hold up to ``batch_size x max_length`` padded tokens (many
        more records when they are short), unless ``max_batch_tokens`` says otherwise. On a CPU
        the default budget is also capped so that a batch's widest activation stays within 12 MiB
        (:func:`diverseevol.hf._batches.default_batch_tokens`: 2,048 tokens for SmolLM2-135M, never
        fewer; 1.04-1.46x the tokens per second of 16,384 there, measured in alternation).
    max_length : int, default 512
        Token limit per record.
    max_batch_tokens : int, optional
        Padded tokens (rows x longest row) per forward pass. Records are sorted by length and cut
        into consecutive batches within this budget that keep padding near 2% of the real tokens
        (:func:`diverseevol.hf._batches.plan_batches`); a record longer than the budget goes alone.
    progress : bool, default True
        Show a progress bar (rank 0 only).
    comm : TorchCommunicator, optional
        Shard the records over its ranks and gather the results; by default the active
        ``torch.distributed`` group when it has more than one rank.
    memmap_path : str or Path, optional
        Write the embeddings to this ``.npy`` memmap (overwritten) instead of memory; in one
        process each batch's rows are written as they come, so the (N, d) array is never held.
    template : {"auto", "alpaca", "chat"}, default "auto"
        How records become text (:mod:`diverseevol.render`): ``auto`` uses the tokenizer's chat
        template for chat records and the Alpaca template otherwise; scores cover assistant tokens.
    causal_padding_free : bool, default True
        Batches are right-padded; in a causal LM no real token attends to the pads after it,
        so no attention mask is passed (faster: SDPA's causal kernel, no (B, T, T) mask). Pooling
        and scoring still use the mask. Set False for models whose attention is not causal.
    pooling : {"mean", "weighted_mean", "last_token"}, default "mean"
        How a record's token states become one vector (see the module docstring); ``"mean"`` is
        the paper's.
    layer : int, default -1
        Index into the model's ``output_hidden_states`` (0 = token embeddings, -1 = the last
        layer after the final norm, -2 = the layer before...). Scores always use the last layer.
    onednn : bool or "auto", default "auto"
        On a CPU, run the model's float32 linear layers (the LM head included) through oneDNN
        for the pass instead of ``F.linear``'s BLAS call: 2-2.5x faster matrix products on AMD
        CPUs, where MKL takes a slow path. ``"auto"`` does so unless PyTorch's BLAS is MKL on an
        Intel CPU, where MKL is the faster one (a rule on the CPU's vendor, so a machine always
        takes the same path). Results differ from ``F.linear`` by float32 rounding only (another
        summation order). Ignored on other devices and dtypes; False keeps ``F.linear``.
    compile : bool or "auto", default False
        Run the transformer body through ``torch.compile`` (inductor, dynamic shapes: one
        compilation serves every batch shape, and later models of the same architecture): fuses
        the element-wise work between the matrix products (RMSNorm, RoPE, SiLU, residual adds),
        1.6-1.9x on SmolLM2-135M on a 2-core CPU, after a compilation of about 3 minutes there
        (under load; the inductor cache on disk brings a later one down to about 25 s). ``"auto"`` compiles when the pass has
        at least ``100,000`` real tokens (about where the compilation pays on that CPU) and, on a
        CPU, a C++ compiler is found. If compiling fails the pass goes on uncompiled after one
        warning. Batches of one record run uncompiled (a size-1 batch would recompile).
    warn_truncated : bool, optional
        Log a warning when truncation removes a record's whole response; default: when ``scores``.

    Notes
    -----
    The pass runs the transformer body only (never the LM head unless ``scores``), without a KV
    cache, with PyTorch SDPA attention when the model is set to eager attention and supports SDPA
    (restored afterwards), and on a CPU with oneDNN linear layers (``onednn``, restored too). Per
    batch, one copy goes to the device (the token ids) and one comes
    back (the pooled vectors); scores stay on the device until the end.

    Returns
    -------
    embeddings : numpy.ndarray of float32, shape (N, d), or None
        Row ``i`` is record ``i``: the hidden states of ``layer`` (by default the body's last
        hidden states after the final norm, i.e. ``output_hidden_states[-1]``), pooled over the
        record's real tokens.
    scores : dict of str to numpy.ndarray of float64, shape (N,), or None
        Over the record's response tokens (eos included), the mean of: the highest next-token
        probability (``"confidence"``), the top-1 minus top-2 probability (``"margin"``), the
        next-token entropy in nats (``"entropy"``) and the negative log-likelihood of the actual
        next token in nats (``"loss"``, the training loss of the record). NaN for a record whose
        response was cut away.
    """
    import torch

    check_scalar(batch_size, "batch_size", int, min_val=1)
    check_scalar(max_batch_tokens, "max_batch_tokens", int, min_val=1, allow_none=True,
                 what="padded tokens per batch; None: batch_size x max_length, capped on a CPU")
    _check_pooling(pooling, layer)
    check_compile(compile)
    onednn = check_onednn(onednn)
    model, tokenizer = resolve_model(model, tokenizer)
    records = list(records)
    n = len(records)
    warn = scores if warn_truncated is None else bool(warn_truncated)
    tok = tokenize_records(tokenizer, records, max_length=max_length, warn_truncated=warn, template=template)
    lengths = tok.lengths
    order = np.argsort(-lengths, kind="stable")  # longest first: an out-of-memory shows at once
    comm = active_communicator(comm)
    rank, world = (comm.rank, comm.world_size) if comm is not None else (0, 1)
    mine = order[shard_slice(n, rank, world, strided=True)]  # similar lengths on every rank
    if embeddings and rank == 0:
        _warn_if_template_only(tokenizer, tok.input_ids, max_length)
    budget = int(max_batch_tokens) if max_batch_tokens is not None else default_budget(model, batch_size, max_length)
    batches = plan_batches(lengths[mine], max_tokens=budget)

    body, head = body_and_head(model)
    device = next(model.parameters()).device
    compiled = CompiledBody(body, want_compile(compile, int(lengths[mine].sum()), device))
    was_training = model.training
    model.eval()
    d = int(head.weight.shape[1]) if head is not None else int(model.config.hidden_size)

    emb_out = sc_out = None
    target = None  # rows written batch by batch: rank 0's memmap when alone, else this rank's share
    if embeddings:
        if memmap_path is not None and world == 1:
            target = _open_memmap(memmap_path, (n, d))
        else:
            target = np.empty((len(mine), d), dtype=np.float32)
    local_sc = None  # scores stay on the device until the end
    if scores:
        local_sc = torch.full((len(mine), len(SCORE_NAMES)), float("nan"), dtype=torch.float64, device=device)
    pad_id = int(tokenizer.pad_token_id)
    bar = progress_bar(
        total=len(batches), disable=not progress or rank != 0, desc="embedding" if embeddings else "scoring"
    )
    try:
        with torch.inference_mode(), sdpa_attention(model), causal_sdpa(
            model, causal_padding_free and compiled.enabled
        ), onednn_linears(model, onednn, custom_op=compiled.enabled):
            for sl in batches:
                idx = mine[sl]
                ids, mask = _batch_on_device(tok.input_ids, idx, lengths[idx], pad_id, device)
                # Right padding under causal attention: no real token can attend to a pad (pads come
                # after it), so the padding mask is redundant and SDPA may use its causal kernel.
                other_layer = embeddings and layer != -1
                out = compiled(
                    input_ids=ids,
                    attention_mask=None if causal_padding_free else mask,
                    output_hidden_states=other_layer,
                    use_cache=False,
                )
                hidden = out.last_hidden_state
                if embeddings:
                    states = _layer_states(out, layer) if other_layer else hidden
                    rows = idx if world == 1 and memmap_path is not None else sl
                    target[rows] = _pool(states, mask, pooling).cpu().numpy()  # the one copy per batch
                if scores:
                    local_sc[sl] = batch_scores(head, hidden, mask, tok.prediction_mask(idx, mask.shape[1]), ids)
                bar.update(1)
    finally:
        bar.close()
        if was_training:
            model.train()

    if embeddings:
        if world == 1 and memmap_path is not None:
            emb_out = target
            emb_out.flush()
        else:
            dest = _open_memmap(memmap_path, (n, d)) if memmap_path is not None and rank == 0 else None
            emb_out = gather_rows(comm, mine, target, n, out=dest)
            if isinstance(emb_out, np.memmap):
                emb_out.flush()
    if scores:
        full = gather_rows(comm, mine, local_sc.cpu().numpy(), n)
        sc_out = {name: np.ascontiguousarray(full[:, j]) for j, name in enumerate(SCORE_NAMES)}
    return emb_out, sc_out


def _open_memmap(path: str | Path, shape: tuple[int, int]) -> np.memmap:
    """A new float32 ``.npy`` memmap of ``shape`` at ``path`` (overwritten)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return np.lib.format.open_memmap(str(path), mode="w+", dtype=np.float32, shape=shape)


def _batch_on_device(
    input_ids: Sequence[Sequence[int]], idx: np.ndarray, lens: np.ndarray, pad_id: int, device: Any
) -> tuple[Any, Any]:
    """Right-padded ids (B, T) int64 and mask (B, T) bool of records ``idx`` on ``device``.

    One host-to-device copy for the ids; the mask is built on the device from the lengths.
    """
    import torch

    width = int(lens.max())
    host = np.full((len(idx), width), pad_id, dtype=np.int64)
    for b, i in enumerate(idx):
        host[b, : lens[b]] = input_ids[int(i)]
    ids = torch.from_numpy(host)
    if device.type == "cuda":
        ids = ids.pin_memory().to(device, non_blocking=True)
    else:
        ids = ids.to(device)
    mask = torch.arange(width, device=device)[None, :] < torch.as_tensor(lens, device=device)[:, None]
    return ids, mask


def _warn_if_template_only(tokenizer: Any, input_ids: Sequence[Sequence[int]], max_length: int) -> int:
    """Warn when truncation leaves records with nothing but the prompt template's fixed head.

    The head is the template text before the instruction (both Alpaca variants, with and
    without input), tokenised as the prompts are. A record whose truncated tokens are a prefix of
    a head has lost all of its own text, so it embeds exactly like every other such record.

    Parameters
    ----------
    tokenizer : transformers tokenizer
    input_ids : sequence of sequence of int, length N
        The truncated token ids of the records (``TokenizedRecords.input_ids``).
    max_length : int
        The token limit they were cut to (for the message).

    Returns
    -------
    int
        How many of the N records kept none of their own text.
    """
    import warnings

    from ..data import format_prompt
    from ..errors import DegenerateEmbeddingsWarning

    marker = "\u2063\u2063"  # invisible separator: never part of a template
    heads = []
    for inp in ("", "x"):
        head = format_prompt(marker, inp).split(marker)[0]
        heads.append(list(tokenizer([head], add_special_tokens=True, verbose=False)["input_ids"][0]))
    lost = sum(
        1 for ids in input_ids if any(len(ids) <= len(h) and list(ids) == h[: len(ids)] for h in heads)
    )
    if lost:
        longest = max(len(h) for h in heads)
        warnings.warn(
            f"{lost} of {len(input_ids)} records keep none of their own text after truncation to "
            f"max_length={max_length} tokens: the prompt template before the instruction alone is up to "
            f"{longest} tokens, so these records embed identically and selection on them is meaningless. "
            f"Raise the embedder's max_length (HFEmbedder(max_length=...), model.embedder.max_length in a "
            f"config file) well above {longest}, e.g. 512.",
            DegenerateEmbeddingsWarning,
            stacklevel=3,
        )
    return lost


class HFEmbedder:
    """Embedder for :class:`diverseevol.EvolutionLoop`: ``embedder(model, records) -> (N, d) float32``.

    Each record is encoded as the Alpaca prompt + response + eos and embedded as the mean of
    the model's last-layer hidden states over its real tokens (padding never changes a row);
    ``pooling`` and ``layer`` choose another pooling or hidden layer.
    Records are batched longest-first to keep padding small. Under several processes
    (``torchrun`` / ``accelerate launch``) every rank embeds a share of the records and every
    rank receives the full array in the original order.

    Parameters
    ----------
    batch_size : int, default 32
        Batch memory: up to ``batch_size x max_length`` padded tokens per forward pass (short
        records go many to a batch), unless ``max_batch_tokens`` is given; on a CPU at most as
        many as keep a batch's widest activation within 12 MiB (at least 2,048; see
        :func:`forward_pass`).
    max_length : int, default 512
    scores : bool, default False
        Also compute ``confidence`` / ``margin`` / ``entropy`` / ``loss`` in the same forward pass; they are
        kept in :attr:`last_scores` and served to an :class:`~diverseevol.hf.HFScorer` built
        with ``embedder=this`` without a second pass.
    memmap_path : str or Path, optional
        Write embeddings to this ``.npy`` file (memory-mapped, overwritten on every call) and
        return the memmap; for large N.
    progress : bool, default True
    tokenizer : optional
        For bare models passed without a tokenizer.
    comm : TorchCommunicator, optional
        Defaults to the active ``torch.distributed`` group when it has several ranks.
    pooling : {"mean", "weighted_mean", "last_token"}, default "mean"
        ``"mean"`` is the paper's; ``"weighted_mean"`` is the position-weighted mean of RDS+
        (Ivison et al., 2025); ``"last_token"`` takes the state of the last real token.
    layer : int, default -1
        Which of the model's ``output_hidden_states`` to pool (-1: the last layer, after the
        final norm; 0: the token embeddings).
    template : {"auto", "alpaca", "chat"}, default "auto"
        How records become text (:mod:`diverseevol.render`): the chat template for chat
        records, the Alpaca template otherwise, unless named.
    max_batch_tokens : int, optional
        Padded tokens per forward pass (see :func:`forward_pass`); given, it replaces the
        default budget, the CPU cap included.
    onednn : bool or "auto", default "auto"
        On a CPU, run the float32 linear layers through oneDNN during the pass (see
        :func:`forward_pass`): ``"auto"`` unless PyTorch's BLAS is MKL on an Intel CPU; False keeps
        PyTorch's ``F.linear``.
    compile : bool or "auto", default False
        Run the transformer body through ``torch.compile`` (see :func:`forward_pass`): faster
        per token after a compilation of minutes on a small CPU; ``"auto"`` compiles passes of
        at least 100,000 real tokens. Falls back to eager with one warning.

    Attributes
    ----------
    last_scores : dict of str to numpy.ndarray or None
        Scores of the last call when ``scores=True``.

    Examples
    --------
    >>> emb = HFEmbedder(batch_size=32)(handle, records)   # doctest: +SKIP
    >>> emb.shape
    (len(records), hidden_size)
    """

    def __init__(
        self,
        batch_size: int = 32,
        max_length: int = 512,
        scores: bool = False,
        memmap_path: str | Path | None = None,
        progress: bool = True,
        *,
        tokenizer: Any = None,
        comm: Any = None,
        pooling: str = "mean",
        layer: int = -1,
        template: str = "auto",
        max_batch_tokens: int | None = None,
        onednn: bool | str = "auto",
        compile: bool | str = False,
    ) -> None:
        _check_pooling(pooling, layer)
        check_compile(compile)
        self.onednn = check_onednn(onednn)
        self.max_batch_tokens = max_batch_tokens
        self.compile = compile
        self.pooling = pooling
        self.layer = layer
        self.batch_size = batch_size
        self.max_length = max_length
        self.scores = scores
        self.memmap_path = memmap_path
        self.progress = progress
        self.tokenizer = tokenizer
        self.comm = comm
        self.template = template
        self.last_scores: dict[str, np.ndarray] | None = None
        self._cache_key: tuple[Any, int, int] | None = None

    def __repr__(self) -> str:
        return (
            f"HFEmbedder(batch_size={self.batch_size}, max_length={self.max_length}, scores={self.scores}, "
            f"memmap_path={self.memmap_path!r}, pooling={self.pooling!r}, layer={self.layer})"
        )

    def get_params(self) -> dict[str, Any]:
        """The constructor settings (recorded in the run directory's ``config.json``)."""
        return {
            "batch_size": self.batch_size,
            "max_length": self.max_length,
            "scores": self.scores,
            "memmap_path": None if self.memmap_path is None else str(self.memmap_path),
            "pooling": self.pooling,
            "layer": self.layer,
            **({"template": self.template} if self.template != "auto" else {}),
            **({"max_batch_tokens": self.max_batch_tokens} if self.max_batch_tokens is not None else {}),
            **({"onednn": self.onednn} if self.onednn != "auto" else {}),
            **({"compile": self.compile} if self.compile is not False else {}),
        }

    def __call__(self, model: Any, records: Sequence[InstructionRecord]) -> np.ndarray:
        """Return the (N, d) float32 embeddings of ``records`` (row ``i`` = ``records[i]``)."""
        return self._run(model, records, scores=self.scores)[0]

    def embed_and_score(
        self, model: Any, records: Sequence[InstructionRecord]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Return ``(embeddings (N, d) float32, {"confidence", "margin", "entropy", "loss": (N,)})`` from one pass."""
        emb, sc = self._run(model, records, scores=True)
        assert sc is not None
        return emb, sc

    def cached_scores(self, model: Any, records: Sequence[InstructionRecord]) -> dict[str, np.ndarray] | None:
        """Scores of the last pass if it was over this very model object and these records, else None."""
        if self._cache_key is None or self.last_scores is None:
            return None
        ref, n, h = self._cache_key
        records = list(records)
        if ref() is not _model_object(model) or n != len(records) or h != hash(tuple(records)):
            return None
        return self.last_scores

    def _run(self, model: Any, records: Sequence[InstructionRecord], *, scores: bool) -> tuple[Any, Any]:
        records = list(records)
        emb, sc = forward_pass(
            model,
            records,
            tokenizer=self.tokenizer,
            embeddings=True,
            scores=scores,
            batch_size=self.batch_size,
            max_length=self.max_length,
            progress=self.progress,
            comm=self.comm,
            memmap_path=self.memmap_path,
            pooling=self.pooling,
            layer=self.layer,
            template=self.template,
            max_batch_tokens=self.max_batch_tokens,
            onednn=self.onednn,
            compile=self.compile,
        )
        if scores:
            self.last_scores = sc
            self._cache_key = (weakref.ref(_model_object(model)), len(records), hash(tuple(records)))
        return emb, sc


def _model_object(model: Any) -> Any:
    from ._model import ModelHandle

    if isinstance(model, ModelHandle):
        return model.model
    if isinstance(model, tuple):
        return model[0]
    return model
