"""``diverseevol bakeoff``: several selection recipes on the same data, budget and seeds, judged on held-out records."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_OK, UsageError, echo, positive_int, seed_list

NAME = "bakeoff"
HELP = "which recipe beats random on your data: recipes x seeds from one shared round 0, judged on held-out records"
DESCRIPTION = (
    "Run every recipe of CONFIG's `bakeoff` section (sampler specs) for every seed, each from the\n"
    "same P_0 and the same round-0 model (trained, embedding Z and judged once per seed), and\n"
    "score every trained model on held-out records no recipe may select: held-out reference loss\n"
    "(macro over labels) and ROUGE-L F1 of greedy answers. Writes results.json (rows, paired\n"
    "differences to the baseline with Bonferroni-adjusted intervals, heldout_idx), results.md,\n"
    "plots and one run directory per seed and recipe to --out. A rerun resumes. See docs/bakeoff.md."
)
EPILOG = (
    "CONFIG is the file `diverseevol run` takes (data, model, budget) plus:\n"
    "  bakeoff:\n"
    "    samplers: [random, kcenter, \"kcenter:transform=normalize\", balanced_random]\n"
    "    baseline: random\n"
    "    heldout: {label_field: category, per_label: 20}   # or {path: heldout.jsonl}"
)

#: What bakeoff writes at the top of --out besides the resumable seed_<s>/ run directories.
WRITES = ("results.json", "results.md", "timing.json", "*.png")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="run configuration with a `bakeoff` section (.yaml/.yml/.toml)")
    p.add_argument("--seeds", type=seed_list, default=None, help="comma-separated seeds (default: bakeoff.seeds or 0)")
    p.add_argument("--out", type=Path, required=True, help="output folder (resumed when it holds an earlier bake-off)")
    p.add_argument("--workers", type=positive_int, default=1, help="seeds run in this many processes")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")


def handle(args: argparse.Namespace) -> int:
    from ..assemble_config import data_files
    from ..bakeoff.from_config import load_bakeoff_config, run_bakeoff_config
    from ..errors import ValidationError
    from ..outputs import OutputFolder, claim_outputs

    try:
        loaded = load_bakeoff_config(args.config, seeds=args.seeds, out_dir=args.out)
    except ValidationError as exc:
        raise UsageError(str(exc)) from None
    heldout = loaded.settings.heldout.path
    if heldout is not None and not Path(heldout).is_absolute():
        heldout = args.config.parent / heldout
    claim_outputs([OutputFolder("--out", args.out, writes=WRITES, whole=False)],
                  [("CONFIG", args.config), *data_files(loaded.config.data, "data"), ("bakeoff.heldout.path", heldout)])
    result = run_bakeoff_config(loaded, args.out, workers=args.workers,
                                plots=not args.no_plots, progress=not getattr(args, "no_progress", False), echo=echo)
    echo("")
    echo((args.out / "results.md").read_text(encoding="utf-8").rstrip())
    echo("")
    echo(f"wrote {', '.join(str(p) for p in result.files)}")
    return EXIT_OK
