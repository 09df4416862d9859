"""run_bakeoff: every recipe on every seed from one shared P_0 and M_0, then paired differences.

Work per seed: M_0 is trained on P_0 once, and Z is embedded/scored and M_0 judged once
(:class:`~diverseevol.bakeoff.round0.SharedRound0`); each recipe then runs its own
:class:`~diverseevol.EvolutionLoop` in ``DIR/seed_<s>/<recipe>/``, which resumes after a crash
or on a rerun without retraining finished rounds. Seeds are independent: with ``workers > 1``
they run in a process pool, and the rows are the same as a serial run's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .._files import write_json
from ..errors import ValidationError
from .._validation import check_scalar
from .heldout import HeldoutSplit, split_heldout
from .results import BakeoffResult, paired_for, record_words, results_markdown, rows_from_run
from .round0 import SharedRound0
from .settings import BakeoffSettings, recipe_dir_name

__all__ = ["BakeoffParts", "run_bakeoff", "run_recipes"]

logger = logging.getLogger("diverseevol.bakeoff")


class BakeoffParts(Protocol):
    """Builds one seed's loop callables. Must be picklable when ``workers > 1``."""

    def __call__(self, seed: int, heldout: HeldoutSplit) -> tuple[Any, Any, Any, Any]:
        """Return ``(trainer, embedder, scorer, judge)`` for ``seed``; the judge scores a model on
        ``heldout.heldout_records`` (embedder, scorer may be None when no recipe needs them)."""
        ...


def _recipe(spec: str) -> tuple[str, dict[str, Any], str]:
    """(sampler name, constructor parameters, mode) of a recipe spec (the one sampler-spec syntax)."""
    from ..samplers.spec import parse_sampler_spec

    parsed = parse_sampler_spec(spec)
    return parsed.name, parsed.kwargs, parsed.mode or "iterative"


@dataclass(frozen=True)
class _SeedJob:
    seed: int
    records: list[Any]
    split: HeldoutSplit
    settings: BakeoffSettings
    parts: Any
    out_dir: Path
    progress: bool
    loop_options: dict[str, Any]


def run_recipes(
    records: Sequence[Any],
    seed: int,
    settings: BakeoffSettings,
    parts: tuple[Any, Any, Any, Any],
    out_dir: Path,
    *,
    progress: bool = True,
    say: Callable[[str], None] = logger.info,
    loop_options: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, float]]:
    """Run every recipe of ``settings`` for one seed from one shared round 0.

    Parameters
    ----------
    records : sequence of InstructionRecord, length N
        The selectable records (their row indices are the pools' index space).
    seed : int
    settings : BakeoffSettings
    parts : (trainer, embedder, scorer, judge)
    out_dir : Path
        The bake-off folder; runs go to ``out_dir / f"seed_{seed}" / <recipe>``.

    Returns
    -------
    (rows, round0_computed, seconds_per_recipe)
    """
    from ..run import EvolutionLoop

    s = settings
    seed_dir = Path(out_dir) / f"seed_{seed}"
    shared = SharedRound0(*parts, seed_dir / "round0")
    w_trainer, w_embedder, w_scorer, w_judge = shared.parts()
    lengths = np.array([record_words(r) for r in records], dtype=np.float64)
    rows: list[dict[str, Any]] = []
    times: dict[str, float] = {}
    for spec in s.samplers:
        name, params, mode = _recipe(spec)
        t0 = time.perf_counter()
        sub = f"seed_{seed}/{recipe_dir_name(spec)}"
        loop = EvolutionLoop(
            records, trainer=w_trainer, embedder=w_embedder, scorer=w_scorer, judge=w_judge,
            sampler=name, sampler_params=params, mode=mode, init_size=s.init_size, k=s.k, rounds=s.rounds,
            seed=seed, run_dir=Path(out_dir) / sub, vendi=False, keep_models=False, progress=progress,
            label_field=s.label_field, tags={"bakeoff": spec, "seed": seed}, **(loop_options or {}),
        )
        result = loop.run()
        mine = rows_from_run(result, spec, seed, sub, lengths)
        rows.extend(mine)
        times[spec] = time.perf_counter() - t0
        last = mine[-1]
        shown = ", ".join(f"{m} {last[m]:.3f}" for m in s.metrics if isinstance(last.get(m), float))
        say(f"[seed {seed}] {spec}: {times[spec]:.0f} s; pool {last['pool_size']}: {shown or 'no metrics'}; "
            f"mean words {last['mean_words']:.1f}")
    return rows, dict(shared.computed), times


def _run_seed(job: _SeedJob, say: Callable[[str], None] = logger.info) -> tuple[list[dict[str, Any]], dict[str, int],
                                                                                   dict[str, float]]:
    return run_recipes(job.records, job.seed, job.settings, job.parts(job.seed, job.split), job.out_dir,
                       progress=job.progress, say=say, loop_options=job.loop_options)


class _QueueSay:
    """A picklable ``say`` for worker processes: lines go to a manager queue the parent echoes."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def __call__(self, line: str) -> None:
        self.queue.put(line)


def _run_seeds_in_processes(jobs: list[_SeedJob], workers: int, say: Callable[[str], None]
                            ) -> list[tuple[list[dict[str, Any]], dict[str, int], dict[str, float]]]:
    """Seeds in a ``spawn`` process pool; each worker's progress lines reach ``say`` as they happen."""
    context = get_context("spawn")
    with context.Manager() as manager:
        queue = manager.Queue()

        def relay() -> None:
            for line in iter(queue.get, None):
                say(line)

        relay_thread = threading.Thread(target=relay, name="bakeoff-progress", daemon=True)
        relay_thread.start()
        try:
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
                outputs = []
                for job, output in zip(jobs, pool.map(partial(_run_seed, say=_QueueSay(queue)), jobs)):
                    queue.put(f"[seed {job.seed}] done")
                    outputs.append(output)
        finally:
            queue.put(None)
            relay_thread.join()
    return outputs


def run_bakeoff(
    records: Sequence[Any],
    settings: BakeoffSettings,
    parts: BakeoffParts,
    out_dir: str | Path,
    *,
    workers: int = 1,
    plots: bool = True,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    base_dir: Path | None = None,
    loop_options: dict[str, Any] | None = None,
) -> BakeoffResult:
    """Run every recipe of ``settings`` on every seed and compare each with the baseline.

    Parameters
    ----------
    records : sequence of InstructionRecord, length N
        The input data; ``settings.heldout`` splits off the held-out records (never selectable).
    settings : BakeoffSettings
    parts : BakeoffParts
        ``parts(seed, heldout_split) -> (trainer, embedder, scorer, judge)``.
    out_dir : str or Path
        ``results.json``, ``results.md``, ``timing.json``, plots, and ``seed_<s>/<recipe>/`` run
        directories (``seed_<s>/round0/`` holds the shared round 0). A rerun resumes.
    workers : int, default 1
        Seeds run in this many processes (``spawn``); rows equal a serial run's.
    plots : bool, default True
        Write ``<metric>.png`` (needs matplotlib, extra ``plot``).
    progress : bool, default True
    echo : callable, optional
        Receives one line per finished recipe and seed; default: the ``diverseevol.bakeoff`` logger.
    base_dir : Path, optional
        Resolves a relative held-out ``path``.
    loop_options : dict, optional
        Further :class:`~diverseevol.EvolutionLoop` keyword arguments.

    Returns
    -------
    BakeoffResult
    """
    check_scalar(workers, "workers", int, min_val=1)
    for spec in settings.samplers:
        _check_recipe(spec)
    say = echo or logger.info
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    split = split_heldout(records, settings.heldout, base_dir=base_dir)
    train = [records[i] for i in split.train_idx]
    n_final = settings.final_pool_size
    if n_final > len(train):
        raise ValidationError(
            f"The budget's final pool ({n_final} = {settings.init_size} + {settings.rounds} x {settings.k}) is larger "
            f"than the {len(train)} selectable records ({len(records)} - {len(split.heldout_idx)} held out); lower "
            f"the budget or hold out fewer records."
        )
    say(f"bake-off: {len(settings.samplers)} recipes x {len(settings.seeds)} seeds; {len(train)} selectable, "
        f"{len(split.heldout_records)} held-out records; pools {settings.init_size}..{n_final}")
    jobs = [_SeedJob(seed, train, split, settings, parts, out, progress and workers == 1, dict(loop_options or {}))
            for seed in settings.seeds]
    t0 = time.perf_counter()
    if workers == 1 or len(jobs) == 1:
        outputs = [_run_seed(job, say) for job in jobs]
    else:
        outputs = _run_seeds_in_processes(jobs, workers, say)
    order = {spec: i for i, spec in enumerate(settings.samplers)}
    rows = sorted((r for o in outputs for r in o[0]), key=lambda r: (order[r["sampler"]], r["seed"], r["pool_size"]))
    result = BakeoffResult(
        rows=rows, paired=paired_for(rows, settings), heldout_idx=split.heldout_idx, train_idx=split.train_idx,
        settings=settings, out_dir=out,
        round0_computed={job.seed: o[1] for job, o in zip(jobs, outputs)},
        data_mean_words=float(np.mean([record_words(r) for r in train])) if train else None,
    )
    from .._files import atomic_write

    result.files.append(write_json(out / "results.json", result.to_json()))
    text = results_markdown(result)
    result.files.append(atomic_write(out / "results.md", lambda fh: fh.write(text.encode("utf-8"))))
    timing = {"wall_time_s": time.perf_counter() - t0, "workers": workers,
              "per_seed_recipe_s": {str(job.seed): o[2] for job, o in zip(jobs, outputs)},
              "round0_computed": {str(k): v for k, v in result.round0_computed.items()}}
    result.files.append(write_json(out / "timing.json", timing))
    if plots:
        from .plots import plot_bakeoff

        result.files.extend(plot_bakeoff(result, out))
    return result


def _check_recipe(spec: str) -> None:
    """Parse and build a recipe: a malformed spec, unknown sampler or parameter fails before any training."""
    from ..samplers.spec import parse_sampler_spec

    parse_sampler_spec(spec).build()
