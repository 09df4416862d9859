"""A bake-off from a run configuration file: the ``diverseevol run`` file plus a ``bakeoff`` section.

::

    data: {path: dolly.jsonl}
    model: {name_or_path: smollm2.gguf, trainer: {lora: true, epochs: 1}}
    budget: {init_size: 20, k: 20, rounds: 4}
    bakeoff:
      samplers: [random, kcenter, "kcenter:transform=normalize", kmeans_random]
      baseline: random
      heldout: {label_field: category, per_label: 10}
      generation: {max_new_tokens: 64, batch_size: 8}     # false: no generation metric
      generate_rounds: [4]                                 # rounds whose model answers (default: all)
      loss: {max_length: 256, batch_size: 8}

The ``sampler`` and ``run_dir`` keys of the run file are not used (``--out`` is the folder).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import ConfigError
from .heldout import HeldoutSplit
from .results import BakeoffResult
from .runner import run_bakeoff
from .settings import BakeoffSettings

__all__ = ["BakeoffConfig", "ConfigParts", "load_bakeoff_config", "run_bakeoff_config"]

_OWN_KEYS = {"generation", "loss", "generate_rounds"}


def _read(path: Path) -> dict[str, Any]:
    from ..config import _read_file

    raw = _read_file(path)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: a bake-off configuration is a mapping with `data`, `model`, `budget` and `bakeoff`.")
    return dict(raw)


class BakeoffConfig(NamedTuple):
    """A bake-off configuration file as read by :func:`load_bakeoff_config`.

    Attributes
    ----------
    config : RunConfig
        The run file's sections (``data``, ``model``, ``budget``...).
    settings : BakeoffSettings
    options : dict
        The ``bakeoff`` section's ``generation``, ``generate_rounds`` and ``loss`` settings.
    path : Path
        The file; relative paths in it are relative to its folder.
    """

    config: Any
    settings: BakeoffSettings
    options: dict[str, Any]
    path: Path


def load_bakeoff_config(path: str | Path, *, seeds: Sequence[int] | None = None,
                        out_dir: str | Path | None = None) -> BakeoffConfig:
    """Read and check a bake-off configuration file (nothing is trained or loaded but the file).

    Raises
    ------
    ConfigError
        For a missing ``bakeoff`` or ``model`` section or any invalid key (the message names it).
    """
    from ..config import parse_config
    from ..errors import ValidationError

    path = Path(path)
    raw = _read(path)
    section = raw.pop("bakeoff", None)
    if not isinstance(section, Mapping):
        raise ConfigError(
            f"{path}: no `bakeoff` section; add e.g. `bakeoff: {{samplers: [random, kcenter], baseline: random, "
            f"heldout: {{label_field: category, per_label: 20}}}}` (see docs/bakeoff.md)."
        )
    raw.setdefault("run_dir", str(out_dir) if out_dir is not None else "bakeoff")
    config = parse_config(raw, base_dir=path.parent, source=str(path))
    if config.model is None:
        raise ConfigError(f"{path}: a bake-off trains a model per recipe; add a `model` section (name_or_path, trainer).")
    options = {k: section[k] for k in _OWN_KEYS if k in section}
    try:
        settings = BakeoffSettings.from_mapping({k: v for k, v in section.items() if k not in _OWN_KEYS},
                                                budget=config.budget.__dict__, seeds=seeds)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return BakeoffConfig(config, settings, options, path)


@dataclass(frozen=True)
class ConfigParts:
    """Per seed: the configuration's HF trainer/embedder/scorer and a held-out judge (picklable)."""

    config: Any
    scores: bool
    generation: Mapping[str, Any] | bool
    loss: Mapping[str, Any]
    progress: bool = False
    generate_rounds: tuple[int, ...] | None = None
    threads: int | None = None

    def __call__(self, seed: int, split: HeldoutSplit) -> tuple[Any, Any, Any, Any]:
        from ..assemble import _hf, build_hf_parts, construct
        from ..judge.heldout import HeldoutJudge

        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)
        m = self.config.model
        parts = build_hf_parts(m.name_or_path, scores=self.scores, progress=self.progress, seed=seed,
                               trainer=m.trainer, embedder=m.embedder, scorer=m.scorer, where="model")
        hf = _hf("the bake-off")
        max_length = m.trainer.get("max_length", 512)
        loss = construct(hf.HFResponseLoss, {"max_length": max_length, **dict(self.loss)}, "bakeoff.loss")
        generate = None
        if self.generation is not False:
            settings = {"progress": False, **(dict(self.generation) if isinstance(self.generation, Mapping) else {})}
            generate = construct(hf.HFRecordAnswers, settings, "bakeoff.generation")
        judge = HeldoutJudge(split.heldout_records, split.heldout_labels, loss=loss, generate=generate,
                             generate_rounds=self.generate_rounds)
        return parts.trainer, parts.embedder, parts.scorer, judge


def run_bakeoff_config(
    path: str | Path | BakeoffConfig,
    out_dir: str | Path,
    *,
    seeds: Sequence[int] | None = None,
    workers: int = 1,
    plots: bool = True,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> BakeoffResult:
    """Run the bake-off a configuration file describes into ``out_dir`` (resumed when it exists).

    Parameters
    ----------
    path : str, Path or BakeoffConfig
        The run configuration with a ``bakeoff`` section, or what :func:`load_bakeoff_config`
        read from it (then ``seeds`` is ignored: the loaded settings hold them).
    out_dir : str or Path
    seeds : sequence of int, optional
        Overrides ``bakeoff.seeds`` (default ``[0]``).
    workers, plots, progress, echo
        As for :func:`~diverseevol.bakeoff.run_bakeoff`.

    Raises
    ------
    ConfigError
        For an invalid file, and for misfits of the file and the data found before any training
        (a held-out share that empties a label, a recipe with a parameter its sampler does not take).
    """
    from ..config import _load_records
    from ..errors import UnknownSamplerError, ValidationError
    from ..samplers import requirements_of
    from ..samplers.spec import parse_sampler_spec
    from .heldout import split_heldout

    loaded = path if isinstance(path, BakeoffConfig) else load_bakeoff_config(path, seeds=seeds, out_dir=out_dir)
    config, settings, options, source = loaded
    records = _load_records(config)
    try:  # misfits of the file and the data are configuration errors, found before any training
        split_heldout(records, settings.heldout, base_dir=source.parent)
        scores = any(requirements_of(parse_sampler_spec(spec).build()).scores for spec in settings.samplers)
    except UnknownSamplerError:
        raise
    except ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    generation = options.get("generation", {"max_new_tokens": 64})
    rounds = options.get("generate_rounds")
    threads = max(1, (os.cpu_count() or 2) // workers) if workers > 1 else None
    parts = ConfigParts(config, scores, generation, dict(options.get("loss", {})), progress=progress and workers == 1,
                        generate_rounds=None if rounds is None else tuple(int(r) for r in rounds), threads=threads)
    return run_bakeoff(records, settings, parts, out_dir, workers=workers, plots=plots, progress=progress, echo=echo,
                       base_dir=source.parent)
