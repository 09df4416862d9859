"""Compare samplers on one set of embeddings before training: diversity, label balance, norm bias.

Runs offline on synthetic data by default (no download): 3,000 records in 6 labelled topics whose
embedding norms vary, as raw mean-pooled sentence embeddings do. Pass a JSONL file and its
embeddings to compare on your own data::

    python examples/compare_samplers.py                                  # synthetic
    python examples/compare_samplers.py data.jsonl emb.npy category      # your data, label field

The same from the command line::

    diverseevol compare data.jsonl --embeddings emb.npy --k 1000 --label category \\
        --samplers kcenter,kcenter:transform=whiten,kmeans,random --seeds 0,1,2 --out cmp/
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from diverseevol.compare import compare_samplers, record_labels


def synthetic(n: int = 3000, d: int = 32, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Six topics of unequal size; lengths log-normal, so a few records have long vectors."""
    rng = np.random.default_rng(seed)
    topics = rng.choice(6, size=n, p=[0.3, 0.25, 0.2, 0.12, 0.08, 0.05])
    centers = rng.normal(size=(6, d))
    directions = centers[topics] + 0.8 * rng.normal(size=(n, d))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    emb = directions * np.exp(rng.normal(scale=0.5, size=(n, 1)))
    return emb.astype(np.float32), [f"topic{t}" for t in topics]


def main() -> None:
    if len(sys.argv) >= 3:
        from diverseevol.data import load_instructions

        emb = np.load(sys.argv[2], mmap_mode="r")
        labels = record_labels(load_instructions(sys.argv[1]), sys.argv[3]) if len(sys.argv) > 3 else None
        k = min(1000, emb.shape[0] // 4)
    else:
        emb, labels = synthetic()
        k = 300
    result = compare_samplers(
        emb,
        k,
        "kcenter,kcenter:transform=normalize,kcenter:transform=whiten,kmeans,random",
        seeds=[0, 1],
        pool_size=50,
        labels=labels,
    )
    print(result.conditions())
    print()
    print(result.to_text())
    out = Path(tempfile.mkdtemp(prefix="compare-"))
    paths = result.write(out, plots=False)  # plots=True draws diversity.png / labels.png (extra "plot")
    print(f"\nwritten: {', '.join(str(p) for p in paths.values())}")
    rows = {r["sampler"]: r for r in result.rows()}
    raw, fixed = rows["kcenter"], rows["kcenter:transform=whiten"]
    print(f"\nK-Center on raw vectors: picks' mean norm {raw['picks_norm_ratio']:.2f}x the candidates'; "
          f"after transform='whiten': {fixed['picks_norm_ratio']:.2f}x.")


if __name__ == "__main__":
    main()
