"""Render every result table and time in README.md and docs/*.md from committed result files.

Each generated block sits between marker comments::

    <!-- generated:NAME -->
    ... (written by this script; do not edit by hand)
    <!-- /generated:NAME -->

and is rendered from a file in ``docs/results/`` (:data:`SOURCES`), so a figure in the docs
cannot drift from the measurement it quotes: ``tests/test_result_docs.py`` fails when a block
differs from what this script renders. Every block states the machine, the load, the seeds and
the command.

Usage (from the repository root)::

    python tools/gen_result_docs.py            # rewrite the blocks in place
    python tools/gen_result_docs.py --check    # exit 1 and name the stale blocks

Result files:

* ``docs/results/demo_5seeds.json``: the ``results.json`` of
  ``diverseevol demo --seeds 0,1,2,3,4 --no-plots``;
* ``docs/results/demo_5seeds_timing.json``: that run's ``timing.json`` plus ``conditions``
  (``machine``, ``date``, ``load_start``/``load_end``: 1-minute load averages, ``command``);
* ``docs/results/ci_timing.json``: the test suite's (``.ci/run``) timing and counts, with its
  ``conditions``;
* ``docs/results/dolly_max_length.json``: the share of Dolly-15k records whose response survives
  a ``max_length`` cut (SmolLM2 tokenizer);
* ``docs/results/bakeoff_dolly_design.json`` / ``bakeoff_dolly_fresh.json``: the real-model bake-off's
  ``results.json`` and ``timing.json`` with their ``conditions`` (written by ``tools/record_bakeoff.py``).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"

#: The documents that hold generated blocks.
DOCS: tuple[str, ...] = ("README.md", "docs/getting_started.md", "docs/cli.md", "docs/demo.md", "docs/huggingface.md",
                         "docs/results.md", "docs/samplers.md")

_BLOCK = re.compile(r"(<!-- generated:(?P<name>[a-z0-9_-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)",
                    re.DOTALL)


def _load(name: str, root: Path = ROOT) -> Any:
    return json.loads((root / "docs" / "results" / name).read_text(encoding="utf-8"))


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ci(stat: Mapping[str, Any] | None, digits: int) -> str:
    if not stat or stat.get("mean") is None:
        return "-"
    text = _num(stat["mean"], digits)
    if stat.get("low") is not None:
        text += f" [{stat['low']:.{digits}f}, {stat['high']:.{digits}f}]"
    return text


def _diff(p: Mapping[str, Any] | None, digits: int) -> str:
    from diverseevol.bakeoff.results import paired_cell

    return "(baseline)" if p is None else paired_cell(p, digits)


def _excludes_zero(p: Mapping[str, Any] | None) -> int:
    """+1 / -1 when the adjusted interval lies above / below 0, else 0."""
    if p is None or p.get("low_adj") is None:
        return 0
    if p["low_adj"] > 0:
        return 1
    if p["high_adj"] < 0:
        return -1
    return 0


def _conditions(timing: Mapping[str, Any]) -> Mapping[str, Any]:
    return timing["conditions"]


def _load_text(c: Mapping[str, Any]) -> str:
    return f"1-minute load average {c['load_start']:.1f} at the start, {c['load_end']:.1f} at the end"


def _seeds(results: Mapping[str, Any]) -> list[int]:
    return [int(s) for s in results["settings"]["seeds"]]


def demo_table(root: Path = ROOT) -> str:
    """The five-seed demo at the final pool: every recipe's metrics and its difference to the baseline."""
    res, timing = _load("demo_5seeds.json", root), _load("demo_5seeds_timing.json", root)
    c = _conditions(timing)
    seeds = _seeds(res)
    st = res["settings"]
    final, paired, baseline = _final_paired(res)
    by = {(e["sampler"], e["pool_size"]): e for e in res["summary"]["by_sampler"]}
    m = max((p["n_comparisons"] for p in res["paired"]), default=0)
    lines = [
        f"Command: `{c['command']}`; seeds {', '.join(map(str, seeds))}; {c['machine']}, {c['date']}, "
        f"{_load_text(c)} (quality figures do not depend on the load). Each cell: mean [95% t-interval over the "
        f"{len(seeds)} seeds] at the final pool of {final} records (P_0 = {st['init_size']}, {st['rounds']} rounds of "
        f"{st['k']}); differences to {baseline} are paired by seed, with Bonferroni-adjusted 95% intervals over "
        f"{m} comparisons. Source: `docs/results/demo_5seeds.json`.",
        "",
        f"| recipe | accuracy (%) | held-out loss (nats/token) | families covered (of 20) | base-model Vendi "
        f"| accuracy - {baseline} (points) | loss - {baseline} |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for recipe in st["samplers"]:
        e = by.get((recipe, final), {})
        acc, loss = paired.get((recipe, "accuracy")), paired.get((recipe, "heldout_loss"))
        lines.append(f"| `{recipe}` | {_ci(e.get('accuracy'), 1)} | {_ci(e.get('heldout_loss'), 2)} | "
                     f"{_ci(e.get('coverage'), 1)} | {_ci(e.get('vendi'), 1)} | "
                     f"{_diff(acc, 1) if recipe != baseline else '(baseline)'} | "
                     f"{_diff(loss, 2) if recipe != baseline else '(baseline)'} |")
    for name, label in (("full", "full data"), ("untrained", "untrained base")):
        e = next((v for (s, _), v in by.items() if s == name), None)
        if e is not None:
            lines.append(f"| {label} ({e['pool_size']:,} records) | {_ci(e.get('accuracy'), 1)} | "
                         f"{_ci(e.get('heldout_loss'), 2)} | {_ci(e.get('coverage'), 1)} | | | |")
    ahead = [r for r in st["samplers"] if r != baseline and _verdict(r, paired) == "ahead"]
    behind = [r for r in st["samplers"] if r != baseline and _verdict(r, paired) == "behind"]
    lines.append("")
    lines.append(
        f"Recipes whose adjusted interval against {baseline} excludes 0 in their favour on loss, not contradicted by "
        f"accuracy: {', '.join(f'`{r}`' for r in ahead) or 'none'}. Behind {baseline} on either metric: "
        f"{', '.join(f'`{r}`' for r in behind) or 'none'}."
    )
    return "\n".join(lines) + "\n"


def _seconds(s: float) -> str:
    s = float(s)
    if s < 120:
        return f"{s:.0f} s"
    return f"{s:,.0f} s ({int(s // 60)} min {int(round(s % 60))} s)"


def demo_time(root: Path = ROOT) -> str:
    """How long the demo took: the five-seed run, per seed, the base model."""
    timing = _load("demo_5seeds_timing.json", root)
    c = _conditions(timing)
    per = [float(v) for v in timing["per_seed_wall_s"].values()]
    n = len(per)
    cpu_seed = timing["cpu_time_s"] / n
    return (
        f"`{c['command']}` on {c['machine']}, {c['date']}, {_load_text(c)}: {_seconds(timing['wall_time_s'])} wall "
        f"and {_seconds(timing['cpu_time_s'])} of CPU for the {n} seeds ({timing['torch_threads']} torch threads; "
        f"{c['how']}): {_seconds(min(per))} to {_seconds(max(per))} wall and about {_seconds(cpu_seed)} of CPU per "
        f"seed, plus {_seconds(timing['base_model_s'])} wall ({_seconds(timing['base_model_cpu_s'])} of CPU) to "
        f"pretrain the tiny base model on first use (cached afterwards). CPU time is what the load does not change "
        f"much: on 2 idle cores one seed should take about half its CPU time as wall time "
        f"(~{_seconds(cpu_seed / 2)}), the base model ~{_seconds(timing['base_model_cpu_s'] / 2)}. "
        + _idle_demo_text(timing.get("idle_single_seed"))
        + "Source: `docs/results/demo_5seeds_timing.json`.\n"
    )


def _idle_demo_text(idle: Mapping[str, Any] | None) -> str:
    """The measured single-seed demo on the idle machine (optional in the timing file)."""
    if not idle:
        return ""
    return (f"Measured on the idle machine ({idle['date']}, 1-minute load average {idle['load_start']:.1f} before, "
            f"{idle['load_end']:.1f} after; {idle['how']}): `{idle['command']}` took {_seconds(idle['wall_s'])} wall "
            f"and {_seconds(idle['cpu_s'])} of CPU. ")


def _final_paired(res: Mapping[str, Any]) -> tuple[int, dict[tuple[str, str], Any], str]:
    st = res["settings"]
    final = st["init_size"] + st["k"] * st["rounds"]
    paired = {(p["sampler"], p["metric"]): p for p in res["paired"] if p["pool_size"] == final}
    baseline = next(iter({p["baseline"] for p in res["paired"]}), "random")
    return final, paired, baseline


def _verdict(recipe: str, paired: Mapping[tuple[str, str], Any]) -> str:
    """"ahead" / "behind" / "level" against the baseline, the demo table's rule (loss first, accuracy not against)."""
    loss, acc = _excludes_zero(paired.get((recipe, "heldout_loss"))), _excludes_zero(paired.get((recipe, "accuracy")))
    if loss > 0 or acc < 0:
        return "behind"
    if loss < 0 and acc >= 0:
        return "ahead"
    return "level"


def _cross_machine(root: Path) -> tuple[list[str], str]:
    """(table lines, verdict line) of the five-seed demo on this machine and under another instruction set."""
    here, other = _load("demo_5seeds.json", root), _load("demo_5seeds_avx2.json", root)
    c = _load("demo_5seeds_avx2_conditions.json", root)["conditions"]
    final, p_here, baseline = _final_paired(here)
    _, p_other, _ = _final_paired(other)
    by_here = {(e["sampler"], e["pool_size"]): e for e in here["summary"]["by_sampler"]}
    by_other = {(e["sampler"], e["pool_size"]): e for e in other["summary"]["by_sampler"]}
    lines = [
        f"The same command (`{c['command']}`, seeds {', '.join(map(str, _seeds(other)))}) run as if on another "
        f"machine: {c['how']}; {c['machine']}, {c['date']}. Accuracy (%) at the final pool of {final} records, and "
        f"each recipe minus `{baseline}` (paired by seed, Bonferroni-adjusted 95% intervals). Sources: "
        f"`docs/results/demo_5seeds.json` (AVX-512, the table above) and `docs/results/demo_5seeds_avx2.json`.",
        "",
        f"| recipe | accuracy, AVX-512 | accuracy, AVX2 | accuracy - {baseline}, AVX-512 | accuracy - {baseline}, AVX2 "
        f"| loss - {baseline}, AVX-512 | loss - {baseline}, AVX2 | verdict AVX-512 / AVX2 |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    held, flipped = [], []
    for recipe in here["settings"]["samplers"]:
        a, b = by_here.get((recipe, final), {}), by_other.get((recipe, final), {})
        if recipe == baseline:
            lines.append(f"| `{recipe}` | {_ci(a.get('accuracy'), 1)} | {_ci(b.get('accuracy'), 1)} | (baseline) | "
                         f"(baseline) | (baseline) | (baseline) | |")
            continue
        v_here, v_other = _verdict(recipe, p_here), _verdict(recipe, p_other)
        (held if v_here == v_other else flipped).append((recipe, v_here, v_other))
        lines.append(
            f"| `{recipe}` | {_ci(a.get('accuracy'), 1)} | {_ci(b.get('accuracy'), 1)} | "
            f"{_diff(p_here.get((recipe, 'accuracy')), 1)} | {_diff(p_other.get((recipe, 'accuracy')), 1)} | "
            f"{_diff(p_here.get((recipe, 'heldout_loss')), 2)} | {_diff(p_other.get((recipe, 'heldout_loss')), 2)} | "
            f"{v_here} / {v_other} |")
    for name, label in (("full", "full data"),):
        a = next((v for (s_, _), v in by_here.items() if s_ == name), None)
        b = next((v for (s_, _), v in by_other.items() if s_ == name), None)
        if a is not None and b is not None:
            lines.append(f"| {label} | {_ci(a.get('accuracy'), 1)} | {_ci(b.get('accuracy'), 1)} | | | | | |")
    acc = {r: (_excludes_zero(p_here.get((r, "accuracy"))), _excludes_zero(p_other.get((r, "accuracy"))))
           for r in here["settings"]["samplers"] if r != baseline}
    both = [f"`{r}`" for r, (a, b) in acc.items() if a == b == 1]
    one = [f"`{r}`" for r, (a, b) in acc.items() if (a == 1) != (b == 1)]
    same = [f"`{r}` {v}" for r, v, _ in held if v != "level"]
    verdict = (
        f"Verdicts (the demo table's rule: ahead = the loss interval excludes 0 in the recipe's favour and accuracy "
        f"does not contradict it; behind = either interval excludes 0 against it) that hold under both instruction "
        f"sets: {', '.join(same) or 'none besides level'}; level under both: "
        f"{', '.join(f'`{r}`' for r, v, _ in held if v == 'level') or 'none'}; changed: "
        + (", ".join(f"`{r}` ({a} -> {b})" for r, a, b in flipped) or "none")
        + f"; accuracy alone ahead of `{baseline}` under both: {', '.join(both) or 'none'}, under one only: "
        f"{', '.join(one) or 'none'}.\n")
    return lines, verdict


def demo_cross_machine(root: Path = ROOT) -> str:
    """The five-seed demo on this machine and under another instruction set: which conclusions hold on both."""
    lines, verdict = _cross_machine(root)
    return "\n".join([*lines, "", verdict])


def demo_cross_machine_verdict(root: Path = ROOT) -> str:
    """Only the verdict line of :func:`demo_cross_machine` (for the README)."""
    return _cross_machine(root)[1]


def ci_time(root: Path = ROOT) -> str:
    """The test suite's time and counts."""
    t = _load("ci_timing.json", root)
    c = t["conditions"]
    skipped = f", {t['skipped']} skipped" if t.get("skipped") is not None else ""
    text = (f"Test suite (`{c['command']}`): {t['passed']:,} passed{skipped} in {_seconds(t['pytest_s'])} of pytest "
            f"wall time on {c['machine']}, {c['date']}, {c['load']} (measured by {c['by']}).")
    if t.get("collected") is not None:
        text += f" `pytest --collect-only` counted {t['collected']:,} tests on {t['collected_date']}."
    return text + " Source: `docs/results/ci_timing.json`.\n"


def dolly_max_length(root: Path = ROOT) -> str:
    """How many Dolly-15k responses survive a ``max_length`` cut (SmolLM2 tokenizer, Alpaca template)."""
    d = _load("dolly_max_length.json", root)
    c = d["conditions"]
    lines = [
        f"Dolly-15k ({d['n_records']:,} records) tokenised with the {d['tokenizer']} tokenizer, {d['template']}; "
        f"record length in tokens: median {d['length_tokens_percentiles']['50']:.0f}, 90th percentile "
        f"{d['length_tokens_percentiles']['90']:.0f}, 99th {d['length_tokens_percentiles']['99']:.0f} ({c['date']}; "
        f"source: `docs/results/dolly_max_length.json`).",
        "",
        "| `max_length` | whole record kept | some response kept | records that lose their whole response |",
        "|---:|---:|---:|---:|",
    ]
    for m in sorted((k for k in d if k.isdigit()), key=int):
        v = d[m]
        lines.append(f"| {m} | {100 * v['whole_record_kept']:.1f}% | {100 * v['some_response_kept']:.1f}% | "
                     f"{v['response_lost']:,} |")
    return "\n".join(lines) + "\n"


def _per_seed(rows: Sequence[Mapping[str, Any]], recipe: str, pool: int, key: Callable[[Mapping[str, Any]], Any]
              ) -> dict[int, float]:
    out = {}
    for r in rows:
        if r["sampler"] == recipe and r["pool_size"] == pool and key(r) is not None:
            out[int(r["seed"])] = float(key(r))
    return out


def _interval_cell(values: Sequence[float], digits: int, signed: bool = False) -> str:
    from diverseevol.bakeoff.stats import t_interval

    if not values:
        return "-"
    mean, low, high = t_interval(values)
    fmt = f"{{:{'+' if signed else ''}.{digits}f}}"
    text = fmt.format(mean)
    if low is not None:
        text += f" [{fmt.format(low)}, {fmt.format(high)}]"
    return text


def bakeoff_dolly(name: str, root: Path = ROOT) -> str:
    """A real-model bake-off (``benchmarks/bakeoff_dolly.py``): metrics per recipe and pool, paired
    differences to the baseline, per category at the final pool, pick lengths, times and conditions."""
    from diverseevol.bakeoff.results import paired_cell

    res = _load(name, root)
    c, st, timing = res["conditions"], res["settings"], res["timing"]
    seeds, recipes, baseline = _seeds(res), st["samplers"], st["baseline"]
    rows = res["rows"]
    pools = sorted({r["pool_size"] for r in rows})
    final = pools[-1]
    metrics = [m for m in ("heldout_loss", "rouge_l") if any(r.get(m) is not None for r in rows if r["pool_size"] == final)]
    digits = {"heldout_loss": 4, "rouge_l": 4}
    label = {"heldout_loss": "held-out loss (nats/token, lower is better)", "rouge_l": "ROUGE-L F1 (higher is better)"}
    paired = {(p["sampler"], p["pool_size"], p["metric"]): p for p in res["paired"]}
    m = max((p["n_comparisons"] for p in res["paired"]), default=0)
    per_recipe = timing.get("per_seed_recipe_s", {})
    cpu_note = ""
    lines = [
        f"Command: `{c['command']}` at commit {c['commit']}; {c['stage']} seeds {', '.join(map(str, seeds))}; "
        f"{c['machine']}, {c['date']}; 1-minute load average {c['load_min']:.1f} to {c['load_max']:.1f} "
        f"(median {c['load_median']:.1f}) during the run{'; ' + c['how'] if c.get('how') else ''}. "
        f"{res['n_train']:,} selectable records (mean {res['data_mean_words']:.1f} words), "
        f"{len(res['heldout_idx'])} held out ({st['heldout']['per_label']} per {st['label_field']}); "
        f"P_0 = {st['init_size']}, {st['rounds']} rounds of {st['k']} (pools {', '.join(map(str, pools))}). "
        f"Each cell: mean [95% t-interval over the {len(seeds)} seeds]; differences to `{baseline}` are paired by "
        f"seed, with Bonferroni-adjusted 95% intervals over {m} comparisons. {res['generation_metric']}. "
        f"Source: `docs/results/{name}`.",
        "",
    ]
    head = ["recipe", "pool"] + [label[k] for k in metrics] + [f"{k} - {baseline}" for k in metrics]
    head += ["mean words of pool"]
    lines += ["| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * (2 * len(metrics) + 1)]
    for pool in pools[1:]:
        for recipe in recipes:
            cells = [f"`{recipe}`", str(pool)]
            cells += [_interval_cell(list(_per_seed(rows, recipe, pool, lambda r, k=k: r.get(k)).values()), digits[k])
                      for k in metrics]
            cells += ["(baseline)" if recipe == baseline else paired_cell(paired.get((recipe, pool, k)), digits[k])
                      for k in metrics]
            cells.append(_interval_cell(list(_per_seed(rows, recipe, pool, lambda r: r.get("mean_words")).values()), 1))
            lines.append("| " + " | ".join(cells) + " |")
    ahead = [r for r in recipes if r != baseline and _excludes_zero(paired.get((r, final, "heldout_loss"))) < 0
             and _excludes_zero(paired.get((r, final, "rouge_l"))) <= 0]
    behind = [r for r in recipes if r != baseline and (_excludes_zero(paired.get((r, final, "heldout_loss"))) > 0
                                                      or _excludes_zero(paired.get((r, final, "rouge_l"))) < 0)]
    lines += ["", f"At the final pool ({final}): recipes whose adjusted interval against `{baseline}` excludes 0 in "
                  f"their favour on loss, not contradicted by ROUGE-L: {', '.join(f'`{r}`' for r in ahead) or 'none'}. "
                  f"Behind `{baseline}` on either metric: {', '.join(f'`{r}`' for r in behind) or 'none'}.", ""]
    labels = sorted({lab for r in rows for lab in r.get("per_label", {})})
    for k in metrics:
        lines += [f"Per {st['label_field']} at pool {final}: {k} minus `{baseline}`'s, paired by seed, mean "
                  f"[95% t-interval, not adjusted]; `{baseline}` row: its own mean.", "",
                  "| recipe | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
        base = {lab: _per_seed(rows, baseline, final, lambda r, lab=lab, k=k: r.get("per_label", {}).get(lab, {}).get(k))
                for lab in labels}
        for recipe in recipes:
            cells = []
            for lab in labels:
                mine = _per_seed(rows, recipe, final, lambda r, lab=lab, k=k: r.get("per_label", {}).get(lab, {}).get(k))
                if recipe == baseline:
                    cells.append(_interval_cell(list(mine.values()), 3))
                else:
                    common = sorted(set(mine) & set(base[lab]))
                    cells.append(_interval_cell([mine[s] - base[lab][s] for s in common], 3, signed=True))
            lines.append(f"| `{recipe}` | " + " | ".join(cells) + " |")
        lines.append("")
    counts_head = "| recipe | " + " | ".join(labels) + " |"
    lines += [f"Records per {st['label_field']} in the final pool (mean over seeds; P_0 included):", "", counts_head,
              "|---|" + "---:|" * len(labels)]
    for recipe in recipes:
        picked = [r for r in rows if r["sampler"] == recipe and r["pool_size"] == final]
        cells = [f"{sum(r.get('label_counts', {}).get(lab, 0) for r in picked) / max(1, len(picked)):.1f}" for lab in labels]
        lines.append(f"| `{recipe}` | " + " | ".join(cells) + " |")
    if per_recipe:
        spans = [sum(v.values()) for v in per_recipe.values()]
        by_recipe = {r: [float(v[r]) for v in per_recipe.values() if r in v] for r in recipes}
        cpu_note = (f"Wall time {_seconds(timing['wall_time_s'])} with {timing.get('workers', 1)} worker process(es)"
                    f"{', one torch thread each' if timing.get('workers', 1) > 1 else ''}; per seed, all recipes (the shared round 0 is counted in the recipe that first needs each part of it) "
                    f"{_seconds(min(spans))} to {_seconds(max(spans))}; per recipe and seed, median: "
                    + ", ".join(f"`{r}` {_seconds(statistics.median(v))}" for r, v in by_recipe.items() if v) + ".")
        lines += ["", cpu_note]
    return "\n".join(lines) + "\n"


def bakeoff_verdict(name: str, root: Path = ROOT) -> str:
    """One paragraph for the README and the samplers page: each recipe's paired difference to the
    baseline at the final pool on the real-model bake-off, its pick length, and the verdict."""
    from diverseevol.bakeoff.results import paired_cell

    res = _load(name, root)
    c, st = res["conditions"], res["settings"]
    baseline = st["baseline"]
    final = max(r["pool_size"] for r in res["rows"])
    paired = {(p["sampler"], p["metric"]): p for p in res["paired"] if p["pool_size"] == final}
    words = {r: statistics.mean(x["mean_words"] for x in res["rows"] if x["sampler"] == r and x["pool_size"] == final)
             for r in st["samplers"]}
    others = [r for r in st["samplers"] if r != baseline]
    ahead = [r for r in others if _excludes_zero(paired.get((r, "heldout_loss"))) < 0
             and _excludes_zero(paired.get((r, "rouge_l"))) <= 0]
    behind = [r for r in others if _excludes_zero(paired.get((r, "heldout_loss"))) > 0
              or _excludes_zero(paired.get((r, "rouge_l"))) < 0]
    parts = [f"`{r}` {paired_cell(paired.get((r, 'heldout_loss')), 4)} nats/token and "
             f"{paired_cell(paired.get((r, 'rouge_l')), 4)} ROUGE-L, picks of {words[r]:.0f} words" for r in others]
    verdict = (f"ahead of `{baseline}` on loss, not contradicted by ROUGE-L: {', '.join(f'`{r}`' for r in ahead)}"
               if ahead else f"**no recipe beat `{baseline}`** (no adjusted interval excludes 0 in a recipe's favour)")
    if behind:
        verdict += f"; behind `{baseline}` on an adjusted interval: {', '.join(f'`{r}`' for r in behind)}"
    return (f"Real model, {c['stage']} seeds {', '.join(map(str, _seeds(res)))} (SmolLM2-135M-Instruct + LoRA, "
            f"a {res['n_train']:,}-record Dolly-15k pool, final pool {final} records; paired by seed, "
            f"Bonferroni-adjusted 95% intervals; `{baseline}`'s picks {words[baseline]:.0f} words): "
            + "; ".join(parts) + f". Verdict: {verdict}. Source: `docs/results/{name}`, tables in "
            f"`docs/results.md`.\n")


#: Block name -> renderer (reads its file under ``docs/results/``).
SOURCES: dict[str, Callable[[Path], str]] = {
    "demo-table": demo_table,
    "demo-time": demo_time,
    "demo-cross-machine": demo_cross_machine,
    "demo-cross-machine-verdict": demo_cross_machine_verdict,
    "ci-time": ci_time,
    "dolly-max-length": dolly_max_length,
    "dolly-bakeoff-design": lambda root: bakeoff_dolly("bakeoff_dolly_design.json", root),
    "dolly-bakeoff-fresh": lambda root: bakeoff_dolly("bakeoff_dolly_fresh.json", root),
    "dolly-bakeoff-verdict": lambda root: bakeoff_verdict("bakeoff_dolly_fresh.json", root),
}


def blocks(text: str) -> list[tuple[str, str]]:
    """(name, body) of every generated block in ``text``."""
    return [(m.group("name"), m.group("body")) for m in _BLOCK.finditer(text)]


def render_doc(text: str, root: Path = ROOT) -> str:
    """``text`` with every generated block replaced by what its renderer writes now.

    Raises
    ------
    KeyError
        For a block name without a renderer (the message lists the known ones).
    """
    def sub(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in SOURCES:
            raise KeyError(f"unknown generated block {name!r}; known: {sorted(SOURCES)}")
        return m.group(1) + SOURCES[name](root) + m.group(4)

    return _BLOCK.sub(sub, text)


def stale(docs: Sequence[str] = DOCS, root: Path = ROOT) -> list[str]:
    """``"path: block"`` for every block that differs from its rendering."""
    out = []
    for rel in docs:
        text = (root / rel).read_text(encoding="utf-8")
        fresh = dict(blocks(render_doc(text, root)))
        out += [f"{rel}: {name}" for name, body in blocks(text) if fresh[name] != body]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated block is stale")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale()
        for line in bad:
            print(f"stale generated block: {line}", file=sys.stderr)
        return 1 if bad else 0
    for rel in DOCS:
        path = ROOT / rel
        text = path.read_text(encoding="utf-8")
        new = render_doc(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"updated {rel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
