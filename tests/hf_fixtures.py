"""Shared test data for the HF embedder tests: a tiny LLaMA with its character tokenizer, and records of random words.

Imported by the test modules after their ``pytest.importorskip("torch")``; nothing here imports torch at import time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from diverseevol.data import InstructionRecord


def tiny_handle(seed: int = 0, **config: Any) -> Any:
    """A ``ModelHandle`` of :func:`~diverseevol.hf.tiny.build_tiny_llama` (``seed``, ``config``) and its char tokenizer."""
    from diverseevol.hf import ModelHandle
    from diverseevol.hf.tiny import build_char_tokenizer, build_tiny_llama

    tok = build_char_tokenizer()
    return ModelHandle(model=build_tiny_llama(tok, seed=seed, **config), tokenizer=tok)


def word_records(
    n: int,
    *,
    seed: int,
    words: list[str],
    instruction_words: tuple[int, int],
    response_words: tuple[int, int],
    input_words: tuple[int, int] | None = None,
    sep: str = ": ",
) -> list[InstructionRecord]:
    """``n`` records of random ``words``: record ``i``'s response starts with ``f"{i}{sep}"`` (so all differ).

    Word counts are drawn as ``rng.integers(lo, hi)`` from the ``(lo, hi)`` pairs, per record in the
    order instruction, input (only with ``input_words``; else the input is empty), response.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        instruction = " ".join(rng.choice(words, size=rng.integers(*instruction_words)))
        inp = " ".join(rng.choice(words, size=rng.integers(*input_words))) if input_words is not None else ""
        response = " ".join(rng.choice(words, size=rng.integers(*response_words)))
        out.append(InstructionRecord(instruction, inp, f"{i}{sep}{response}"))
    return out
