"""EvolutionLoop on the real Dolly-15k file, with a numpy stand-in model (no download, no GPU).

Shows the data path a real run takes: ``load_instructions`` on the gzip JSON-lines file (the
duplicate warning included), a fixed reference embedding of Z for Vendi scores that are
comparable across rounds and samplers, and Dolly's ``category`` (kept in ``record.meta``) to see
what each sampler picks. The "model" is a PCA of hashed word counts fitted on the training pool;
swap in ``diverseevol.hf`` for a real LLM.

Run: python examples/dolly_loop.py [path/to/databricks-dolly-15k.jsonl.gz]     (~10-15 s on 2 cores)

Why K-Center's Vendi can sit below random's: diversity depends on the space it is measured in. K-Center
spreads the pool in the space it selects in (the model's own embedding, here a 32-component whitened PCA
refitted each round); the reference space (1,024 hashed word counts) weighs other features. Printed on the
development machine (2026-12-07): at 500 records K-Center's Vendi in the model's own space is 28.8 against
random's 15.3, in the reference space 311.5 against 322.8, and its pool holds 26% closed_qa records (12% of Z):
rows that are extreme on the model's principal components, not spread over the reference space.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from diverseevol import EvolutionLoop, InstructionRecord, load_instructions

DIM = 1024
_WORD = re.compile(r"[a-z0-9']+")


def default_path() -> Path:
    shared = (
        os.environ.get("DIVERSEEVOL_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    return Path(shared) / "databricks-dolly-15k" / "databricks-dolly-15k.jsonl.gz"


def bag_of_words(records: Sequence[InstructionRecord]) -> np.ndarray:
    """Hashed, log-scaled, idf-weighted word counts of instruction + context + response, (N, 1024)."""
    out = np.zeros((len(records), DIM), dtype=np.float32)
    for i, rec in enumerate(records):
        words = _WORD.findall(f"{rec.instruction} {rec.input} {rec.output}".lower())
        for word, count in Counter(words).items():
            out[i, zlib.crc32(word.encode()) % DIM] += count
    np.log1p(out, out=out)
    df = (out > 0).mean(axis=0)
    out *= np.log((1 + len(records)) / (1 + df * len(records))).astype(np.float32)
    return out


class PCATrainer:
    """'Fine-tune' = fit a 32-component PCA of the pool's features; saved in out_dir, loadable."""

    def __init__(self, features: np.ndarray, dataset: Sequence[InstructionRecord]) -> None:
        self.features = features
        self.row_of = {id(rec): i for i, rec in enumerate(dataset)}

    def __call__(self, records, round, out_dir):
        X = self.features[[self.row_of[id(r)] for r in records]]
        mean = X.mean(axis=0)
        Xc = (X - mean).astype(np.float64)
        w, u = np.linalg.eigh(Xc @ Xc.T)  # the pool is small: its Gram matrix is the cheap side
        top = np.argsort(w)[::-1][:32]
        basis = (u[:, top].T @ Xc) / np.sqrt(np.maximum(w[top], 1e-12))[:, None]
        np.save(out_dir / "mean.npy", mean)
        np.save(out_dir / "basis.npy", basis)
        return mean, basis

    def load(self, out_dir, round):
        return np.load(out_dir / "mean.npy"), np.load(out_dir / "basis.npy")


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else default_path()
    if not path.is_file():
        sys.exit(f"Dolly-15k not found at {path}; pass its path as the first argument.")
    start = time.perf_counter()
    records = load_instructions(path)  # warns: 15 of 15011 records are exact duplicates ...
    features = bag_of_words(records)
    print(f"loaded {len(records)} records and their features in {time.perf_counter() - start:.1f} s")
    categories = np.array([r.meta["category"] for r in records])
    share = {c: n / len(records) for c, n in Counter(categories).items()}
    mean_words = np.mean([len(_WORD.findall(r.output)) for r in records])

    def embed(model, recs):
        mean, basis = model
        return (features - mean) @ basis.T

    base = Path(tempfile.mkdtemp(prefix="diverseevol-dolly-"))
    for sampler, params in (("random", None), ("kcenter", {"metric": "cosine"})):
        start = time.perf_counter()
        result = EvolutionLoop(
            records,
            trainer=PCATrainer(features, records),
            embedder=embed,
            sampler=sampler,
            sampler_params=params,
            reference_embeddings=features,
            init_size=100,
            k=100,
            rounds=4,
            seed=0,
            run_dir=base / sampler,
            vendi=True,
            progress=False,
        ).run()
        final = categories[result.final_pool]
        over = max(share, key=lambda c: (final == c).mean() / share[c])
        vendi = [round(r["vendi_reference"], 1) for r in result.metrics]
        own = [round(r["vendi"], 1) for r in result.metrics]
        words = np.mean([len(_WORD.findall(records[i].output)) for i in result.final_pool])
        print(
            f"{sampler:8s} {time.perf_counter() - start:4.1f} s  pool sizes {[len(p) for p in result.pools]}\n"
            f"         Vendi per round in the model's own space {own}, in the fixed reference space {vendi}\n"
            f"         most over-represented category: {over} ({(final == over).mean():.0%} of the pool vs "
            f"{share[over]:.0%} of Z); response length {words:.0f} words (Z: {mean_words:.0f})"
        )
    print(f"run directories: {base}")


if __name__ == "__main__":
    main()
