"""What a bake-off runs: the recipes, the baseline, the budget, the seeds, the held-out records."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from .._validation import check_scalar
from .heldout import HeldoutSpec

__all__ = ["BakeoffSettings", "recipe_dir_name"]

#: Metrics compared against the baseline, and whether lower is better.
LOWER_IS_BETTER: dict[str, bool] = {"heldout_loss": True, "rouge_l": False, "accuracy": False,
                                    "relative_score": False, "win_tie_rate": False}


@dataclass(frozen=True)
class BakeoffSettings:
    """A bake-off: several selection recipes on the same data, budget, seeds and held-out records.

    Attributes
    ----------
    samplers : tuple of str
        The recipes as sampler specs (:mod:`diverseevol.samplers.spec` syntax, e.g. ``"random"``,
        ``"kcenter:transform=normalize"``, ``"kcenter:mode=one_time"``); each must appear once.
    baseline : str, default "random"
        The recipe every other is compared with (must be one of ``samplers``).
    heldout : HeldoutSpec
        Where the held-out records come from; they are never selectable.
    init_size, k, rounds : int
        |P_0|, records added per round, rounds: pools of ``init_size + t k`` records, t = 0..rounds.
    seeds : tuple of int
        One shared P_0 and one shared M_0 per seed.
    metrics : tuple of str
        Metrics paired against the baseline (those present in the rows are used).
    label_field : str, optional
        Record field the loops report label counts of (defaults to ``heldout.label_field``).
    """

    samplers: tuple[str, ...]
    heldout: HeldoutSpec
    init_size: int
    k: int
    rounds: int
    baseline: str = "random"
    seeds: tuple[int, ...] = (0,)
    metrics: tuple[str, ...] = ("heldout_loss", "rouge_l", "accuracy")
    label_field: str | None = None

    def __post_init__(self) -> None:
        samplers = (self.samplers,) if isinstance(self.samplers, str) else tuple(self.samplers)
        object.__setattr__(self, "samplers", tuple(str(s).strip() for s in samplers))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        if self.label_field is None and self.heldout.label_field is not None:
            object.__setattr__(self, "label_field", self.heldout.label_field)
        self.check()

    def check(self) -> None:
        if len(self.samplers) < 2:
            raise ValidationError(
                f"bakeoff.samplers needs at least two recipes (one is the baseline); got {list(self.samplers)}."
            )
        from ..samplers.spec import parse_sampler_spec

        canonical = [str(parse_sampler_spec(s)) for s in self.samplers]
        dup = sorted({s for s in canonical if canonical.count(s) > 1})
        if dup:
            raise ValidationError(f"bakeoff.samplers lists {dup[0]!r} twice; list each recipe once.")
        if self.baseline not in self.samplers:
            raise ValidationError(
                f"bakeoff.baseline {self.baseline!r} is not one of bakeoff.samplers {list(self.samplers)}; add it "
                f"to the list or name one of them."
            )
        for name in ("init_size", "k", "rounds"):
            check_scalar(getattr(self, name), f"budget.{name}", int, min_val=1)
        if not self.seeds:
            raise ValidationError("bakeoff needs at least one seed; got none (e.g. --seeds 0,1,2).")
        for s in self.seeds:
            check_scalar(s, "seed", int, min_val=0)
        if len(set(self.seeds)) != len(self.seeds):
            raise ValidationError(f"bakeoff seeds {list(self.seeds)} repeat a seed; list each once.")
        used = set(recipe_dir_name(s) for s in self.samplers)
        if len(used) != len(self.samplers):
            raise ValidationError(f"bakeoff.samplers {list(self.samplers)} map two recipes to one folder name.")

    @property
    def final_pool_size(self) -> int:
        return self.init_size + self.k * self.rounds

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any], *, budget: Mapping[str, Any],
                     seeds: Sequence[int] | None = None, where: str = "bakeoff") -> BakeoffSettings:
        """Build from a config's ``bakeoff`` section and its ``budget`` (``init_size``, ``k``, ``rounds``)."""
        allowed = {"samplers", "baseline", "heldout", "metrics", "label_field", "seeds"}
        unknown = sorted(set(section) - allowed)
        if unknown:
            raise ValidationError(f"{where}: unknown key {unknown[0]!r}; expected some of {sorted(allowed)}.")
        if "samplers" not in section or "heldout" not in section:
            raise ValidationError(f"{where} needs `samplers` (a list of sampler specs) and `heldout`.")
        samplers = section["samplers"]
        if isinstance(samplers, str) or not isinstance(samplers, Sequence):
            raise ValidationError(f"{where}.samplers must be a list of sampler specs; got {samplers!r}.")
        heldout = section["heldout"]
        if not isinstance(heldout, Mapping):
            raise ValidationError(f"{where}.heldout must be a mapping such as {{label_field: category, per_label: 20}}.")
        chosen = tuple(seeds) if seeds is not None else tuple(section.get("seeds", (0,)))
        return cls(
            samplers=tuple(samplers), baseline=str(section.get("baseline", "random")),
            heldout=HeldoutSpec.from_mapping(heldout, where=f"{where}.heldout"),
            init_size=budget["init_size"], k=budget["k"], rounds=budget["rounds"], seeds=chosen,
            label_field=section.get("label_field"),
            **({"metrics": tuple(section["metrics"])} if "metrics" in section else {}),
        )


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def recipe_dir_name(spec: str) -> str:
    """A folder name for a recipe: ``kcenter:transform=normalize`` -> ``kcenter_transform-normalize``."""
    return _UNSAFE.sub("_", spec.replace("=", "-")).strip("_") or "recipe"
