"""The loop's settings: every argument of :class:`~diverseevol.EvolutionLoop`, checked once.

:meth:`LoopSettings.from_arguments` is the one place the loop's arguments are validated;
the frozen :class:`LoopSettings` it returns also answers the schedule questions (does round t
select? embed?) and writes the run's ``config.json`` content (:meth:`LoopSettings.to_config`).

Imports numpy, the base modules, :mod:`diverseevol.data` and :mod:`diverseevol.samplers`;
never :mod:`diverseevol.hf`.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._files import to_jsonable
from .._validation import check_embeddings, check_scalar
from ..data import InstructionRecord, load_instructions
from ..errors import MissingSignalError, PoolExhaustedError, ValidationError
from ..measurements import RADIUS_METRICS
from ..protocols import Communicator, Embedder, Judge, Scorer, Trainer
from ..samplers.base import Requirements, Sampler, requirements_of
from ..samplers.spec import MODES  # re-exported: the loop's modes, spelled once in samplers/spec.py
from ..tracking import check_installed, normalize_report_to

__all__ = ["COMPARED_CONFIG_KEYS", "ITERATIVE", "MODES", "ONE_TIME", "LoopSettings", "callable_label"]

#: The loop's modes (spelled once, in :data:`diverseevol.samplers.spec.MODES`): each round's model
#: selects (``iterative``), or M_0 selects everything (``one_time``).
ITERATIVE, ONE_TIME = MODES

#: Config keys that change the pools: a run directory made with other values is refused.
COMPARED_CONFIG_KEYS: tuple[str, ...] = (
    "mode",
    "sampler",
    "sampler_params",
    "init_size",
    "k",
    "rounds",
    "seed",
)

_HASH_BLOCK_ROWS = 65536


@dataclass(frozen=True)
class LoopSettings:
    """The checked arguments of :class:`~diverseevol.EvolutionLoop` (see there for each one).

    Built by :meth:`from_arguments`; ``records`` is the dataset Z as a list, ``sampler`` the
    sampler instance, ``requirements`` what it needs and ``radius_metric`` the distance of the
    covering radius (the sampler's ``metric`` when it is euclidean or cosine, else euclidean).
    ``report_to`` holds the tracking integrations by name (:func:`diverseevol.tracking.normalize_report_to`).
    """

    records: list[InstructionRecord]
    trainer: Trainer
    embedder: Embedder | None
    scorer: Scorer | None
    judge: Judge | None
    sampler: Sampler
    requirements: Requirements
    init_size: int
    k: int
    rounds: int
    seed: int
    mode: str
    run_dir: Path | None
    resume: bool
    overwrite: bool
    reference_embeddings: np.ndarray | None
    labels: tuple[str, ...] | None
    vendi: bool | None
    cache_embeddings: bool
    keep_models: bool
    progress: Any
    comm: Communicator | None
    tags: dict[str, Any] = field(default_factory=dict)
    radius_metric: str = "euclidean"
    report_to: tuple[str, ...] = ()

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_arguments(
        cls,
        data: Any,
        *,
        trainer: Any,
        embedder: Any = None,
        sampler: Any = "kcenter",
        sampler_params: Mapping[str, Any] | None = None,
        scorer: Any = None,
        judge: Any = None,
        init_size: Any = 100,
        k: Any = 100,
        rounds: Any = 10,
        seed: Any = 0,
        mode: Any = "iterative",
        run_dir: str | Path | None = None,
        resume: bool = True,
        overwrite: bool = False,
        reference_embeddings: Any = None,
        vendi: bool | None = None,
        cache_embeddings: bool = False,
        keep_models: bool = True,
        comm: Communicator | None = None,
        progress: Any = True,
        tags: Mapping[str, Any] | None = None,
        report_to: Any = None,
        label_field: str | None = None,
    ) -> LoopSettings:
        """Check the loop's arguments and return them as settings.

        Raises
        ------
        ValidationError
            A negative or non-integer size, ``init_size`` < 1, an unknown ``mode``, a callable
            argument that is not callable, ``vendi=True`` without an embedder, or
            ``reference_embeddings`` of the wrong shape.
        PoolExhaustedError
            If ``init_size + k * rounds`` exceeds the number of records.
        MissingSignalError
            If the sampler requires embeddings or scores and no embedder or scorer is given.
        OptionalDependencyError
            If ``report_to`` names an integration whose package is not installed.
        UnknownSamplerError
            If ``sampler`` is a name nobody registered.
        """
        records = _as_records(data)
        sizes = _check_sizes(len(records), init_size=init_size, k=k, rounds=rounds, seed=seed, mode=mode)
        _check_callables(trainer=trainer, embedder=embedder, scorer=scorer, judge=judge)
        sampler_obj, requirements = _resolve_sampler(sampler, sampler_params)
        _check_signal_sources(sampler_obj, requirements, embedder=embedder, scorer=scorer, vendi=vendi)
        metric = getattr(sampler_obj, "metric", "euclidean")
        trackers = normalize_report_to(report_to)
        check_installed(trackers)
        return cls(
            records=records,
            trainer=trainer,
            embedder=embedder,
            scorer=scorer,
            judge=judge,
            sampler=sampler_obj,
            requirements=requirements,
            **sizes,
            mode=mode,
            run_dir=None if run_dir is None else Path(run_dir),
            resume=bool(resume),
            overwrite=bool(overwrite),
            reference_embeddings=_check_reference(reference_embeddings, len(records)),
            labels=_record_labels(records, label_field, sampler_obj, required=requirements.labels),
            vendi=vendi,
            cache_embeddings=bool(cache_embeddings),
            keep_models=bool(keep_models),
            progress=progress,
            comm=comm,
            tags=dict(tags or {}),
            radius_metric=metric if metric in RADIUS_METRICS else "euclidean",
            report_to=trackers,
        )

    # ---- schedule -----------------------------------------------------------------------
    @property
    def n_records(self) -> int:
        """N, the number of records in Z."""
        return len(self.records)

    @property
    def sampler_name(self) -> str:
        """The sampler's registered name (its class name when it has none)."""
        return getattr(self.sampler, "name", type(self.sampler).__name__)

    @property
    def score_names(self) -> tuple[str, ...]:
        """The scores the sampler requires, sorted."""
        return tuple(sorted(self.requirements.scores))

    @property
    def selection_size(self) -> int:
        """How many records one sampler call picks: ``k``, or ``k * rounds`` in one-time mode."""
        return self.k * self.rounds if self.mode == ONE_TIME else self.k

    def selects_in(self, t: int) -> bool:
        """Whether round t runs a sampler (iterative: every round but the last; one-time: round 0)."""
        if self.mode == ONE_TIME:
            return t == 0 and self.rounds > 0
        return t < self.rounds

    def scores_in(self, t: int) -> bool:
        """Whether round t needs the scorer (its sampler runs and requires scores)."""
        return bool(self.score_names) and self.selects_in(t)

    def lengths_in(self, t: int) -> bool:
        """Whether round t computes the records' lengths (its sampler runs and requires them)."""
        return self.requirements.lengths and self.selects_in(t)

    def embeds_in(self, t: int) -> bool:
        """Whether round t runs the embedder: for its sampler, or because ``vendi=True`` asks for the
        Vendi/norm measurements of every round. The last round (no selection) embeds only then."""
        if self.embedder is None:
            return False
        if self.requirements.embeddings and self.selects_in(t):
            return True
        return bool(self.vendi)

    # ---- config.json --------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """The configuration written to ``config.json`` (secrets are redacted when written)."""
        ref = self.reference_embeddings
        return {
            "mode": self.mode,
            "sampler": self.sampler_name,
            "sampler_params": _sampler_params(self.sampler),
            "init_size": self.init_size,
            "k": self.k,
            "rounds": self.rounds,
            "seed": self.seed,
            "vendi": self.vendi,
            "covering_radius_metric": self.radius_metric,
            "cache_embeddings": self.cache_embeddings,
            "reference_embeddings": (
                None if ref is None else {"shape": list(ref.shape), "sha256": _array_hash(ref)}
            ),
            "components": {
                "trainer": _describe(self.trainer),
                "embedder": _describe(self.embedder),
                "scorer": _describe(self.scorer),
                "judge": _describe(self.judge),
            },
            "tags": self.tags,
        }


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------
def _record_labels(
    records: Sequence[InstructionRecord], label_field: Any, sampler: Any, *, required: bool
) -> tuple[str, ...] | None:
    """Each record's ``label_field`` (``meta``, then ``original``) as a string, or None without a field.

    For the metrics a record without the field gets ``""``; a sampler that ``required`` labels
    gets an error naming the first such record instead.
    """
    if label_field is None:
        if required:
            raise MissingSignalError(
                f"Sampler {getattr(sampler, 'name', type(sampler).__name__)!r} requires labels; pass "
                f"label_field= naming the records' label field, e.g. EvolutionLoop(..., label_field='category')."
            )
        return None
    if not isinstance(label_field, str) or not label_field:
        raise ValidationError(f"label_field must be the name of a metadata field (e.g. 'category'); got {label_field!r}.")
    from ..samplers.record_signals import record_labels

    labels = tuple(str(v) for v in record_labels(records, label_field, **({} if required else {"default": ""})))
    if not any(labels):
        raise ValidationError(
            f"label_field={label_field!r}: no record has that metadata field. Keep it when loading, e.g. "
            f"load_instructions(path, meta_fields=[{label_field!r}]) (Dolly's 'category' is kept by default)."
        )
    return labels


def _as_records(data: Any) -> list[InstructionRecord]:
    if isinstance(data, Sequence) and len(data) and all(isinstance(r, InstructionRecord) for r in data):
        return list(data)
    return load_instructions(data)


def _check_sizes(n: int, *, init_size: Any, k: Any, rounds: Any, seed: Any, mode: Any) -> dict[str, int]:
    for name, value in (("init_size", init_size), ("k", k), ("rounds", rounds), ("seed", seed)):
        check_scalar(value, name, int, min_val=0)
    if init_size < 1:
        raise ValidationError("init_size must be >= 1: the first model needs a training pool.")
    if mode not in MODES:
        raise ValidationError(f"mode must be one of {list(MODES)}; got {mode!r}.")
    total = int(init_size) + int(k) * int(rounds)
    if total > n:
        raise PoolExhaustedError(
            f"init_size + k * rounds = {init_size} + {k} * {rounds} = {total} records are needed but the "
            f"dataset has {n}. Lower k or rounds, or use more data."
        )
    return {"init_size": int(init_size), "k": int(k), "rounds": int(rounds), "seed": int(seed)}


def _check_callables(*, trainer: Any, embedder: Any, scorer: Any, judge: Any) -> None:
    if not callable(trainer):
        raise ValidationError(
            f"trainer must be callable as trainer(records, round, out_dir); got {trainer!r}."
        )
    for name, fn in (("embedder", embedder), ("scorer", scorer), ("judge", judge)):
        if fn is not None and not callable(fn):
            raise ValidationError(f"{name} must be callable or None; got {fn!r}.")


def _resolve_sampler(sampler: Any, params: Mapping[str, Any] | None) -> tuple[Sampler, Requirements]:
    from ..samplers.registry import get_sampler

    instance: Sampler = get_sampler(sampler, **dict(params or {}))
    return instance, requirements_of(instance)


def _check_signal_sources(
    sampler: Sampler, requirements: Requirements, *, embedder: Any, scorer: Any, vendi: bool | None
) -> None:
    sname = getattr(sampler, "name", type(sampler).__name__)
    if requirements.embeddings and embedder is None:
        raise MissingSignalError(
            f"Sampler {sname!r} requires embeddings; pass embedder=callable(model, records) -> (N, d) array "
            f"(diverseevol.hf provides one for transformers models)."
        )
    if requirements.scores and scorer is None:
        raise MissingSignalError(
            f"Sampler {sname!r} requires the scores {sorted(requirements.scores)}; pass "
            f"scorer=callable(model, records) -> {{name: (N,) array}}."
        )
    if vendi is True and embedder is None:
        raise ValidationError(
            "vendi=True computes the Vendi score in each model's space and needs an embedder."
        )


def _check_reference(reference: Any, n: int) -> np.ndarray | None:
    if reference is None:
        return None
    reference = check_embeddings(reference, name="reference_embeddings")
    if reference.shape[0] != n:
        raise ValidationError(
            f"reference_embeddings must have one row per record ({n}); got shape {reference.shape}."
        )
    return reference


# --------------------------------------------------------------------------------------------
# describing components for config.json
# --------------------------------------------------------------------------------------------
def _describe(obj: Any) -> Any:
    """A callable's qualified name, with its ``get_config()``/``get_params()`` when it has one."""
    if obj is None:
        return None
    plain = (
        isinstance(obj, type) or inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isbuiltin(obj)
    )
    target = obj if plain else type(obj)
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', type(obj).__name__)}"
    for method in ("get_config", "get_params"):
        fn = getattr(obj, method, None)
        if callable(fn) and not isinstance(obj, type):
            with contextlib.suppress(Exception):
                return {"name": name, "params": to_jsonable(fn())}
    return name


def callable_label(obj: Any) -> str:
    """How error messages name a user's callable: its qualified name, or its class's name."""
    plain = inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isbuiltin(obj)
    return str(getattr(obj, "__qualname__", None) if plain else type(obj).__name__)


def _sampler_params(sampler: Any) -> dict[str, Any]:
    getter = getattr(sampler, "get_params", None)
    if callable(getter):
        return to_jsonable(getter())
    return to_jsonable(
        {k: v for k, v in vars(sampler).items() if not k.startswith("_") and not k.endswith("_")}
        if hasattr(sampler, "__dict__")
        else {}
    )


def _array_hash(arr: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str((arr.shape, arr.dtype.str)).encode())
    for start in range(0, arr.shape[0], _HASH_BLOCK_ROWS):
        h.update(np.ascontiguousarray(arr[start : start + _HASH_BLOCK_ROWS]).tobytes())
    return h.hexdigest()
