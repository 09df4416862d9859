"""The bake-off: several selection recipes on the same data, budget and seeds, judged on held-out records.

Per seed every recipe starts from one shared P_0 and one shared M_0 (round 0 is paid once), and
each trained model is scored on held-out records that no recipe can select: reference loss and a
generation metric. ``results.json`` holds one row per recipe, seed and pool size, and each
recipe's paired difference to the baseline with intervals. See ``docs/bakeoff.md``.
"""

from .heldout import HeldoutSpec, HeldoutSplit, split_heldout
from .results import BakeoffResult, results_markdown
from .round0 import SharedRound0
from .runner import BakeoffParts, run_bakeoff
from .settings import BakeoffSettings, recipe_dir_name
from .stats import paired_differences, t_interval

__all__ = [
    "BakeoffParts",
    "BakeoffResult",
    "BakeoffSettings",
    "HeldoutSpec",
    "HeldoutSplit",
    "SharedRound0",
    "paired_differences",
    "recipe_dir_name",
    "results_markdown",
    "run_bakeoff",
    "split_heldout",
    "t_interval",
]
