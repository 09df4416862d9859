"""Tiny, offline model + tokenizer for tests, demos and benchmarks.

Nothing here touches the Hugging Face Hub: the tokenizer is character level, built with the
``tokenizers`` library from a fixed alphabet, and the model is a randomly initialised
:class:`transformers.LlamaForCausalLM` built from a :class:`transformers.LlamaConfig`.

Examples
--------
>>> from diverseevol.hf.tiny import save_tiny_model
>>> path = save_tiny_model("tiny-llama")          # doctest: +SKIP
>>> from transformers import AutoModelForCausalLM, AutoTokenizer
>>> model = AutoModelForCausalLM.from_pretrained(path)  # doctest: +SKIP
>>> tok = AutoTokenizer.from_pretrained(path)           # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._optional import require
from ._quiet import quiet_transformers_progress

if TYPE_CHECKING:  # pragma: no cover
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

__all__ = ["BASE_ALPHABET", "SPECIAL_TOKENS", "build_char_tokenizer", "build_tiny_llama", "save_tiny_model"]

logger = logging.getLogger(__name__)

#: Special tokens, in id order (pad = 0, bos = 1, eos = 2, unk = 3).
SPECIAL_TOKENS: tuple[str, str, str, str] = ("<pad>", "<s>", "</s>", "<unk>")

#: Printable ASCII (space .. ``~``) plus newline and tab: every character of the Alpaca template.
BASE_ALPHABET: str = "\n\t" + "".join(chr(c) for c in range(32, 127))


def build_char_tokenizer(
    extra_chars: Iterable[str] | str = "",
    *,
    add_bos: bool = True,
    model_max_length: int = 1024,
) -> PreTrainedTokenizerFast:
    """Build an offline character-level tokenizer.

    Every character of :data:`BASE_ALPHABET` (printable ASCII, newline, tab) and of
    ``extra_chars`` gets its own id; any other character maps to ``<unk>``. Decoding joins
    the characters back without separators, so ``decode(encode(text)) == text`` for text
    within the alphabet.

    Parameters
    ----------
    extra_chars : str or iterable of str, default ""
        Additional single characters to give their own ids (e.g. ``"éü€"``). Duplicates of
        the base alphabet are ignored.
    add_bos : bool, default True
        Prepend ``<s>`` when encoding with ``add_special_tokens=True`` (as LLaMA tokenizers do).
    model_max_length : int, default 1024
        Stored on the tokenizer; used by ``truncation=True`` without an explicit ``max_length``.

    Returns
    -------
    transformers.PreTrainedTokenizerFast
        With ``pad_token="<pad>"`` (id 0), ``bos_token="<s>"`` (1), ``eos_token="</s>"`` (2),
        ``unk_token="<unk>"`` (3), right padding. Saveable with ``save_pretrained`` and
        reloadable with ``AutoTokenizer.from_pretrained``.
    """
    require("tokenizers", feature="build_char_tokenizer")
    transformers = require("transformers", feature="build_char_tokenizer")
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    chars: list[str] = []
    seen: set[str] = set()
    for ch in list(BASE_ALPHABET) + list(extra_chars):
        if len(ch) != 1:
            raise ValueError(
                f"extra_chars must hold single characters, got {ch!r}; pass e.g. 'abc' or ['a', 'b']."
            )
        if ch not in seen:
            seen.add(ch)
            chars.append(ch)
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in chars:
        vocab[ch] = len(vocab)

    pad, bos, eos, unk = SPECIAL_TOKENS
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unk))
    # One pre-token per character, newlines included.
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, vocab[bos])]
        )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=pad,
        bos_token=bos,
        eos_token=eos,
        unk_token=unk,
        padding_side="right",
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )


def build_tiny_llama(
    tokenizer: PreTrainedTokenizerFast | None = None,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 128,
    max_position_embeddings: int = 1024,
    seed: int = 0,
    **config_kwargs: Any,
) -> LlamaForCausalLM:
    """Build a randomly initialised LLaMA causal LM sized for ``tokenizer``.

    Parameters
    ----------
    tokenizer : PreTrainedTokenizerFast, optional
        Provides the vocabulary size and the pad / bos / eos ids; defaults to
        :func:`build_char_tokenizer`.
    hidden_size, num_layers, num_heads, intermediate_size, max_position_embeddings : int
        The architecture (``num_layers`` is ``num_hidden_layers``; key/value heads equal
        ``num_heads``).
    seed : int, default 0
        Seed of the weight initialisation; the global torch RNG state is left unchanged.
    **config_kwargs
        Passed on to :class:`transformers.LlamaConfig` (e.g. ``tie_word_embeddings=True``).

    Returns
    -------
    transformers.LlamaForCausalLM
        In float32, eval mode.
    """
    torch = require("torch", feature="build_tiny_llama")
    transformers = require("transformers", feature="build_tiny_llama")
    if tokenizer is None:
        tokenizer = build_char_tokenizer(model_max_length=max_position_embeddings)
    if hidden_size % num_heads:
        raise ValueError(
            f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads}); "
            "pick e.g. hidden_size=64, num_heads=4."
        )
    params: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_heads,
        "max_position_embeddings": max_position_embeddings,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "tie_word_embeddings": False,
    }
    params.update(config_kwargs)
    config = transformers.LlamaConfig(**params)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.LlamaForCausalLM(config)
    model.eval()
    return model


def save_tiny_model(
    directory: str | Path,
    *,
    tokenizer: PreTrainedTokenizerFast | None = None,
    model: LlamaForCausalLM | None = None,
    **model_kwargs: Any,
) -> Path:
    """Write a tiny model and its tokenizer to ``directory`` (safetensors) and return the path.

    Afterwards ``AutoModelForCausalLM.from_pretrained(directory)`` and
    ``AutoTokenizer.from_pretrained(directory)`` load them, so the directory can be passed as
    ``base_model`` to :class:`diverseevol.hf.HFTrainer`.

    Parameters
    ----------
    directory : str or Path
        Created if missing.
    tokenizer, model : optional
        Built with :func:`build_char_tokenizer` / :func:`build_tiny_llama` when omitted.
    **model_kwargs
        Passed to :func:`build_tiny_llama` when ``model`` is omitted (``hidden_size``, ``seed``...).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if tokenizer is None:
        tokenizer = build_char_tokenizer(model_max_length=model_kwargs.get("max_position_embeddings", 1024))
    if model is None:
        model = build_tiny_llama(tokenizer, **model_kwargs)
    with quiet_transformers_progress():
        model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    logger.info("saved tiny model (%d parameters) to %s", model.num_parameters(), directory)
    return directory
