"""EvolutionLoop: DiverseEvol's train -> embed/score -> select loop, crash-safe and resumable.

The loop is Algorithm 1 of Wu et al. (2023): a random initial pool P_0, then for every round t
a model M_t trained on P_t from scratch, whose view of the whole dataset Z (embeddings and/or
uncertainty scores, only what the sampler requires) drives the selection of the next k records;
finally M_T is trained on P_T. Every step is recorded in a run directory
(:mod:`diverseevol.rundir`) so that ``run()`` after a crash continues at the first unfinished
step and produces exactly the pools an uninterrupted run would have produced.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from . import __version__
from ._optional import require
from ._progress import progress_bar
from ._validation import check_embeddings, check_index_array, complement_indices
from .data import InstructionRecord, data_fingerprint, load_instructions
from .distributed import resolve_communicator
from .errors import (
    DiverseEvolError,
    MissingSignalError,
    PoolExhaustedError,
    RunDirectoryError,
    ValidationError,
)
from .protocols import Communicator, Embedder, Judge, Scorer, Trainer
from .rundir import RunDirectory, to_jsonable
from .samplers.base import Sampler, SelectionContext

__all__ = ["METRIC_KEYS", "EvolutionLoop", "EvolutionResult", "initial_pool", "round_rng"]

logger = logging.getLogger(__name__)

#: Keys every metrics row has, in order (the judge's keys follow).
METRIC_KEYS: tuple[str, ...] = (
    "round",
    "pool_size",
    "n_new",
    "vendi",
    "vendi_reference",
    "covering_radius",
    "pool_sq_norm_mean",
    "all_sq_norm_mean",
    "time_train_s",
    "time_embed_s",
    "time_score_s",
    "time_select_s",
    "time_judge_s",
)

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

_MODES = ("iterative", "one_time")
_NORM_BLOCK = 65536


# --------------------------------------------------------------------------------------------
# randomness
# --------------------------------------------------------------------------------------------
def initial_pool(n_records: int, init_size: int, seed: int) -> np.ndarray:
    """Return P_0: ``init_size`` distinct records drawn uniformly from ``range(n_records)``.

    Drawn with ``np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))``, so it
    depends on the seed only, never on the sampler.

    Returns
    -------
    ndarray of int64, shape (init_size,)
        Absolute row indices into Z, in draw order.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    return rng.choice(n_records, size=init_size, replace=False).astype(np.int64)


def round_rng(seed: int, round: int) -> np.random.Generator:
    """The generator handed to the sampler in round ``round``: ``SeedSequence(seed, spawn_key=(1, round))``.

    A fresh, independent stream per round, so resuming at any round reproduces the same draws.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, round)))


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------
@dataclass
class EvolutionResult:
    """What a run produced: the pools, one metrics row per trained model, the models.

    Attributes
    ----------
    pools : list of ndarray of int64
        ``[P_0, ..., P_T]``: absolute row indices into Z, each in pick order (P_{t+1} starts
        with P_t). A partial run lists every pool decided so far.
    metrics : list of dict
        One row per completed round t (model M_t); keys :data:`METRIC_KEYS` plus the judge's.
    models : list
        Per round with a finished training: what the trainer returned in this process, or the
        round's ``out_dir`` (a :class:`pathlib.Path`) for rounds read from disk.
    radii : list of (ndarray of float or None)
        Per selection round t: the covering radius at each pick of ``new_indices[t]`` (K-Center
        samplers), else None.
    config : dict
        The run's configuration as stored in ``config.json`` (includes ``"sampler"``).
    data : dict
        Fingerprint of Z: ``{"n_records": N, "sha256": ...}``.
    run_dir : pathlib.Path or None
        Where the run is recorded.
    finished : bool
        Whether the final training (and its metrics) completed.
    """

    pools: list[np.ndarray]
    metrics: list[dict[str, Any]]
    models: list[Any] = field(default_factory=list)
    radii: list[np.ndarray | None] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    finished: bool = False

    @property
    def new_indices(self) -> list[np.ndarray]:
        """``[S_0, ..., S_{T-1}]``: the records added in each round, in pick order (P_{t+1} \\ P_t)."""
        return [self.pools[t + 1][len(self.pools[t]) :] for t in range(len(self.pools) - 1)]

    @property
    def final_pool(self) -> np.ndarray:
        """The last pool decided (P_T for a finished run)."""
        return self.pools[-1]

    def to_pandas(self) -> Any:
        """Return the metrics as a ``pandas.DataFrame``, one row per round (needs pandas)."""
        pd = require("pandas", feature="EvolutionResult.to_pandas()")
        return pd.DataFrame(self.metrics)

    @classmethod
    def load(cls, run_dir: str | Path) -> EvolutionResult:
        """Read a finished or partial run from its directory, without any model.

        Raises
        ------
        RunDirectoryError
            If ``run_dir`` is not a diverseevol run directory.
        """
        rd = RunDirectory(run_dir)
        header = rd.read_header()
        rounds = int(header.get("config", {}).get("rounds", 0))
        pools: list[np.ndarray] = []
        metrics: list[dict[str, Any]] = []
        models: list[Any] = []
        radii: list[np.ndarray | None] = []
        pool = rd.read_pool(0)
        for t in range(rounds + 1):
            if pool is None:
                break
            pools.append(pool)
            if rd.read_train(t) is not None:
                models.append(rd.round_dir(t) / "model")
            row = rd.read_round_metrics(t)
            if row is not None:
                metrics.append(row)
            sel = rd.read_selection(t)
            if sel is None or t == rounds:
                break
            new = np.asarray(sel["new_indices"], dtype=np.int64).reshape(-1)
            radii.append(None if sel.get("radii") is None else np.asarray(sel["radii"], dtype=np.float64))
            pool = np.concatenate([pool, new])
        return cls(
            pools=pools,
            metrics=metrics,
            models=models,
            radii=radii,
            config=header.get("config", {}),
            data=header.get("data", {}),
            run_dir=rd.path,
            finished=rd.read_status().get("state") == "finished",
        )

    def __repr__(self) -> str:
        sizes = [len(p) for p in self.pools]
        return (
            f"EvolutionResult(sampler={self.config.get('sampler')!r}, pool_sizes={sizes}, "
            f"rounds_completed={len(self.metrics)}, finished={self.finished}, run_dir={str(self.run_dir)!r})"
        )


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _describe(obj: Any) -> Any:
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
    for start in range(0, arr.shape[0], _NORM_BLOCK):
        h.update(np.ascontiguousarray(arr[start : start + _NORM_BLOCK]).tobytes())
    return h.hexdigest()


def _mean_sq_norm(emb: np.ndarray, rows: np.ndarray | None = None) -> float:
    total, count = 0.0, 0
    n = emb.shape[0] if rows is None else rows.size
    for start in range(0, n, _NORM_BLOCK):
        block = emb[start : start + _NORM_BLOCK] if rows is None else emb[rows[start : start + _NORM_BLOCK]]
        block = np.asarray(block, dtype=np.float64)
        total += float(np.einsum("ij,ij->", block, block))
        count += block.shape[0]
    return total / count if count else float("nan")


def _vendi(emb: np.ndarray, rows: np.ndarray, what: str) -> float | None:
    from .diversity import vendi_score

    if rows.size == 0:
        return None
    try:
        return float(vendi_score(emb[np.sort(rows)], q=1.0))
    except DiverseEvolError as exc:
        logger.warning("%s Vendi score not computed: %s", what, exc)
        return None


def _covering_radius(emb: np.ndarray, pool: np.ndarray, candidates: np.ndarray, metric: str) -> float | None:
    """max over candidates of the distance to the nearest pool member (None without candidates)."""
    if candidates.size == 0 or pool.size == 0:
        return None
    from .kernels.kcenter import kcenter_select

    _, radii = kcenter_select(emb, pool, 1, candidate_idx=candidates, metric=metric, return_radii=True)
    return float(np.asarray(radii)[0])


@dataclass
class _Callbacks:
    on_round_start: list[Callable[..., Any]] = field(default_factory=list)
    on_selected: list[Callable[..., Any]] = field(default_factory=list)
    on_round_end: list[Callable[..., Any]] = field(default_factory=list)

    def fire(self, event: str, *args: Any) -> None:
        for fn in getattr(self, event):
            fn(*args)


class _Timer:
    def __init__(self) -> None:
        self.seconds = 0.0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------
class EvolutionLoop:
    """DiverseEvol's self-evolving selection loop over user-supplied train/embed/score/judge callables.

    Parameters
    ----------
    data : sequence of InstructionRecord, or anything :func:`~diverseevol.load_instructions` accepts
        The dataset Z (a path, a list of dicts, a ``datasets.Dataset``, a ``DataFrame``). Row i
        is record i; every index in the loop is an absolute row index into Z.
    trainer : Trainer
        ``trainer(records, round, out_dir) -> model``: fine-tune from scratch on P_t (records in
        pick order); ``out_dir`` is the round's directory inside the run directory. If it has a
        method ``load(out_dir, round) -> model``, the loop uses it to get back a model whose
        training was recorded as finished before a crash; otherwise it calls the trainer again
        with the same ``out_dir``, and the trainer should then load its finished model from there.
    embedder : Embedder, optional
        ``embedder(model, records) -> (N, d) array`` over all of Z. Required by samplers that
        require ``"embeddings"`` (``"kcenter"``) and by ``vendi=True``.
    sampler : str or Sampler, default "kcenter"
        A registered name (see :func:`~diverseevol.list_samplers`) or a sampler instance.
    sampler_params : dict, optional
        Constructor parameters when ``sampler`` is a name, e.g. ``{"metric": "cosine"}``.
    scorer : Scorer, optional
        ``scorer(model, records) -> {"confidence"|"margin"|"entropy": (N,) array}``; required by
        samplers that require ``"scores:<name>"``.
    judge : Judge, optional
        ``judge(model, round) -> {metric: value}``, called after every training (rounds 0..T);
        merged into the metrics rows.
    init_size : int, default 100
        |P_0|, drawn uniformly at random from the seed.
    k : int, default 100
        Records added per round.
    rounds : int, default 10
        T: the number of selection rounds. T + 1 models are trained (the last on P_T, of size
        ``init_size + k * rounds``).
    seed : int, default 0
        Seeds P_0 and the per-round generators (see :func:`round_rng`).
    mode : {"iterative", "one_time"}, default "iterative"
        ``"iterative"``: each M_t selects S_t. ``"one_time"``: M_0 selects all ``k * rounds``
        records at once (the paper's one-time baseline); P_t is P_0 plus the first ``t * k`` of
        them, and a model is still trained (and judged) on every P_t.
    run_dir : path, optional
        The run directory (:doc:`run_directory`). ``None``: a new temporary directory per
        :meth:`run` (then nothing can be resumed; its path is in ``result.run_dir``).
    resume : bool, default True
        Continue a run found in ``run_dir``. With ``False``, a ``run_dir`` that already holds a
        run raises :class:`~diverseevol.errors.RunDirectoryError` (unless ``overwrite``).
    overwrite : bool, default False
        Delete a run found in ``run_dir`` (of any config) and start over. Never deletes a
        non-empty directory that is not a run directory.
    reference_embeddings : ndarray of shape (N, d), optional
        A fixed embedding of Z (e.g. a sentence encoder's); each row then also carries
        ``vendi_reference``, comparable across rounds and samplers.
    vendi : bool, optional
        Vendi score of P_t in M_t's embedding space (``metrics["vendi"]``), with the covering
        radius and norm statistics. ``None`` (default): whenever the sampler requires embeddings
        (an embedding pass then runs every round, including the final one); ``True``: every
        round, running the embedder even for samplers that do not need it; ``False``: only in
        rounds whose embeddings are computed for selection anyway.
    cache_embeddings : bool, default False
        Save M_t's embeddings as ``embeddings.npy`` in the run directory (N x d x 4 bytes per
        round), so a crash between embedding and selection never recomputes them.
    keep_models : bool, default True
        Keep what the trainer returned in ``result.models``; ``False`` keeps the ``out_dir`` path
        instead (and lets each model be freed after its round).
    on_round_start, on_selected, on_round_end : callable, optional
        ``on_round_start(round, pool_idx)``, ``on_selected(round, new_idx, radii)``,
        ``on_round_end(round, metrics_row)``. Called on rank 0, for the rounds this call runs.
    callbacks : sequence of objects, optional
        Objects with any of the three methods above.
    comm : Communicator, optional
        For multi-process runs; default: a single process, or ``TorchCommunicator.from_env()``
        when the environment variable ``WORLD_SIZE`` is above 1.
    progress : bool, default True
        Show a progress bar over rounds (rank 0; ``DIVERSEEVOL_PROGRESS=0`` also hides it).
    tags : dict, optional
        Free-form JSON metadata stored in ``config.json`` (not compared on resume; secret-looking
        keys are redacted).

    Examples
    --------
    >>> import numpy as np
    >>> from diverseevol import EvolutionLoop, InstructionRecord
    >>> data = [InstructionRecord(f"task {i}", "", f"answer {i}") for i in range(50)]
    >>> feats = np.random.default_rng(0).normal(size=(50, 4))
    >>> loop = EvolutionLoop(data, trainer=lambda recs, t, out: t, embedder=lambda m, recs: feats,
    ...                      init_size=5, k=5, rounds=2, progress=False)
    >>> [len(p) for p in loop.run().pools]
    [5, 10, 15]
    """

    def __init__(
        self,
        data: Any,
        *,
        trainer: Trainer,
        embedder: Embedder | None = None,
        sampler: str | Sampler = "kcenter",
        sampler_params: Mapping[str, Any] | None = None,
        scorer: Scorer | None = None,
        judge: Judge | None = None,
        init_size: int = 100,
        k: int = 100,
        rounds: int = 10,
        seed: int = 0,
        mode: Literal["iterative", "one_time"] = "iterative",
        run_dir: str | Path | None = None,
        resume: bool = True,
        overwrite: bool = False,
        reference_embeddings: np.ndarray | None = None,
        vendi: bool | None = None,
        cache_embeddings: bool = False,
        keep_models: bool = True,
        on_round_start: Callable[[int, np.ndarray], Any] | None = None,
        on_selected: Callable[[int, np.ndarray, np.ndarray | None], Any] | None = None,
        on_round_end: Callable[[int, Mapping[str, Any]], Any] | None = None,
        callbacks: Sequence[Any] = (),
        comm: Communicator | None = None,
        progress: bool = True,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(data, Sequence) and len(data) and all(isinstance(r, InstructionRecord) for r in data):
            self.records: list[InstructionRecord] = list(data)
        else:
            self.records = load_instructions(data)
        n = len(self.records)

        for name, value in (("init_size", init_size), ("k", k), ("rounds", rounds), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValidationError(f"{name} must be a non-negative int; got {value!r}.")
        if init_size < 1:
            raise ValidationError("init_size must be >= 1: the first model needs a training pool.")
        if mode not in _MODES:
            raise ValidationError(f"mode must be one of {list(_MODES)}; got {mode!r}.")
        total = int(init_size) + int(k) * int(rounds)
        if total > n:
            raise PoolExhaustedError(
                f"init_size + k * rounds = {init_size} + {k} * {rounds} = {total} records are needed but the "
                f"dataset has {n}. Lower k or rounds, or use more data."
            )
        if not callable(trainer):
            raise ValidationError(
                f"trainer must be callable as trainer(records, round, out_dir); got {trainer!r}."
            )
        for name, fn in (("embedder", embedder), ("scorer", scorer), ("judge", judge)):
            if fn is not None and not callable(fn):
                raise ValidationError(f"{name} must be callable or None; got {fn!r}.")

        from .samplers.registry import get_sampler

        self.sampler: Sampler = get_sampler(sampler, **dict(sampler_params or {}))
        requires = frozenset(getattr(self.sampler, "requires", frozenset()))
        self._needs_embeddings = "embeddings" in requires
        self._score_names = tuple(sorted(r.split(":", 1)[1] for r in requires if r.startswith("scores:")))
        sname = getattr(self.sampler, "name", type(self.sampler).__name__)
        if self._needs_embeddings and embedder is None:
            raise MissingSignalError(
                f"Sampler {sname!r} requires embeddings; pass embedder=callable(model, records) -> (N, d) array "
                f"(diverseevol.hf provides one for transformers models)."
            )
        if self._score_names and scorer is None:
            raise MissingSignalError(
                f"Sampler {sname!r} requires the scores {list(self._score_names)}; pass "
                f"scorer=callable(model, records) -> {{name: (N,) array}}."
            )
        if vendi is True and embedder is None:
            raise ValidationError(
                "vendi=True computes the Vendi score in each model's space and needs an embedder."
            )

        if reference_embeddings is not None:
            reference_embeddings = check_embeddings(reference_embeddings, name="reference_embeddings")
            if reference_embeddings.shape[0] != n:
                raise ValidationError(
                    f"reference_embeddings must have one row per record ({n}); got shape {reference_embeddings.shape}."
                )

        self.trainer, self.embedder, self.scorer, self.judge = trainer, embedder, scorer, judge
        self.init_size, self.k, self.rounds, self.seed = int(init_size), int(k), int(rounds), int(seed)
        self.mode = mode
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.resume, self.overwrite = bool(resume), bool(overwrite)
        self.reference_embeddings = reference_embeddings
        self.vendi = vendi
        self.cache_embeddings = bool(cache_embeddings)
        self.keep_models = bool(keep_models)
        self.progress = progress
        self.comm = comm
        self.tags = dict(tags or {})
        self._callbacks = _Callbacks()
        for event, fn in (
            ("on_round_start", on_round_start),
            ("on_selected", on_selected),
            ("on_round_end", on_round_end),
        ):
            if fn is not None:
                getattr(self._callbacks, event).append(fn)
        for obj in callbacks:
            for event in ("on_round_start", "on_selected", "on_round_end"):
                fn = getattr(obj, event, None)
                if callable(fn):
                    getattr(self._callbacks, event).append(fn)
        self._metric = getattr(self.sampler, "metric", "euclidean")
        if self._metric not in ("euclidean", "cosine"):
            self._metric = "euclidean"
        self._fingerprint: dict[str, Any] | None = None

    # ---- configuration ------------------------------------------------------------------
    @property
    def data_fingerprint(self) -> dict[str, Any]:
        """``{"n_records": N, "sha256": ...}`` of the records (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = data_fingerprint(self.records)
        return self._fingerprint

    def config(self) -> dict[str, Any]:
        """The configuration written to ``config.json`` (secrets are redacted when written)."""
        ref = self.reference_embeddings
        return {
            "mode": self.mode,
            "sampler": getattr(self.sampler, "name", type(self.sampler).__name__),
            "sampler_params": _sampler_params(self.sampler),
            "init_size": self.init_size,
            "k": self.k,
            "rounds": self.rounds,
            "seed": self.seed,
            "vendi": self.vendi,
            "covering_radius_metric": self._metric,
            "cache_embeddings": self.cache_embeddings,
            "reference_embeddings": None
            if ref is None
            else {"shape": list(ref.shape), "sha256": _array_hash(ref)},
            "components": {
                "trainer": _describe(self.trainer),
                "embedder": _describe(self.embedder),
                "scorer": _describe(self.scorer),
                "judge": _describe(self.judge),
            },
            "tags": self.tags,
        }

    def _embed_this_round(self, t: int) -> bool:
        if self.embedder is None:
            return False
        if self._needs_embeddings and self._selects_in(t):
            return True
        if self.vendi is None:
            return self._needs_embeddings
        return bool(self.vendi)

    def _selects_in(self, t: int) -> bool:
        """Whether round t runs a sampler (iterative: every round but the last; one-time: round 0)."""
        if self.mode == "one_time":
            return t == 0 and self.rounds > 0
        return t < self.rounds

    # ---- multi-process plumbing ---------------------------------------------------------
    def _on_rank0(self, comm: Communicator, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on rank 0 only and give its result (or its exception) to every rank."""
        if comm.world_size == 1:
            return fn()
        if comm.rank == 0:
            try:
                value = fn()
            except BaseException as exc:
                comm.broadcast_object((False, exc), src=0)
                raise
            comm.broadcast_object((True, value), src=0)
            return value
        ok, value = comm.broadcast_object(None, src=0)
        if not ok:
            raise value
        return value

    # ---- run ----------------------------------------------------------------------------
    def run(self) -> EvolutionResult:
        """Run (or resume) the loop to the end and return its result.

        Returns
        -------
        EvolutionResult

        Raises
        ------
        RunDirectoryMismatchError
            If ``run_dir`` holds a run made with other data or another config (and not ``overwrite``).
        RunDirectoryError
            If ``run_dir`` holds a run and ``resume=False``, is a non-empty directory that is not a
            run directory, or is in use by another process.
        """
        comm = resolve_communicator(self.comm)
        if self.run_dir is None:
            path = self._on_rank0(comm, lambda: tempfile.mkdtemp(prefix="diverseevol-run-"))
            logger.info("no run_dir given: recording this run in %s", path)
            run_path = Path(path)
        else:
            run_path = self.run_dir
        rd = RunDirectory(run_path)
        with contextlib.ExitStack() as stack:

            def acquire() -> None:  # rank 0 only; a refusal is raised on every rank
                self._refuse_foreign(rd)
                stack.enter_context(rd.lock())

            self._on_rank0(comm, acquire)
            header = self._on_rank0(comm, lambda: self._prepare(rd))
            return self._run_rounds(rd, comm, header)

    @staticmethod
    def _refuse_foreign(rd: RunDirectory) -> None:
        if not rd.is_run_directory() and not rd.is_empty():
            raise RunDirectoryError(
                f"{rd.path} is not empty and is not a diverseevol run directory (no config.json); refusing to "
                f"write into it (or delete it, even with overwrite=True). Choose a new or empty run_dir."
            )

    def _prepare(self, rd: RunDirectory) -> dict[str, Any]:
        config, fp = self.config(), self.data_fingerprint
        if rd.is_run_directory():
            if self.overwrite:
                logger.info("overwrite=True: deleting the run in %s", rd.path)
                rd.clear()
            elif not self.resume:
                raise RunDirectoryError(
                    f"{rd.path} already holds a run. Pass resume=True to continue it, overwrite=True to delete it "
                    f"and start over, or choose another run_dir."
                )
            else:
                header = rd.check_compatible(config=config, data=fp, compare_keys=COMPARED_CONFIG_KEYS)
                rd.remove_temp_files()
                logger.info("resuming the run in %s", rd.path)
                return header
        else:
            self._refuse_foreign(rd)
        rd.remove_temp_files()
        rd.create(config=config, data=fp, library_version=__version__)
        return rd.read_header()

    def _run_rounds(self, rd: RunDirectory, comm: Communicator, header: dict[str, Any]) -> EvolutionResult:
        rank0 = comm.rank == 0
        n = len(self.records)
        T = self.rounds
        pool = initial_pool(n, self.init_size, self.seed)
        pools: list[np.ndarray] = [pool]
        rows: list[dict[str, Any]] = []
        models: list[Any] = []
        radii_all: list[np.ndarray | None] = []

        bar = progress_bar(
            total=T + 1,
            desc="DiverseEvol rounds",
            unit="round",
            disable=(not self.progress) or (not rank0) or None,
        )
        try:
            for t in range(T + 1):
                state = self._on_rank0(comm, lambda t=t, pool=pool: self._read_state(rd, t, pool))
                if state["metrics"] is not None:
                    row = state["metrics"]
                    new_idx, radii = self._decode_selection(state["selection"])
                    models.append(rd.round_dir(t) / "model")
                    logger.info("round %d: already complete in %s", t, rd.path)
                else:
                    row, new_idx, radii, model = self._run_round(rd, comm, t, pool, state, bar)
                    models.append(model if self.keep_models else rd.round_dir(t) / "model")
                    del model
                rows.append(row)
                if t < T:
                    radii_all.append(radii)
                    pool = np.concatenate([pool, new_idx])
                    pools.append(pool)
                bar.update(1)
        finally:
            bar.close()
        if rank0:  # the summaries may lag the per-round files after a crash; bring them up to date
            if rd.read_metrics_summary() != to_jsonable(rows):
                rd.write_metrics_summary(rows)
            if rd.read_status().get("state") != "finished":
                rd.write_status(state="finished", completed_rounds=T + 1, rounds=T)
        logger.info("run finished: final pool of %d records in %s", len(pool), rd.path)
        return EvolutionResult(
            pools=pools,
            metrics=rows,
            models=models,
            radii=radii_all,
            config=header.get("config", {}),
            data=header.get("data", {}),
            run_dir=rd.path,
            finished=True,
        )

    # ---- one round ----------------------------------------------------------------------
    def _read_state(self, rd: RunDirectory, t: int, pool: np.ndarray) -> dict[str, Any]:
        stored = rd.read_pool(t)
        if stored is None:
            rd.write_pool(t, pool)
        elif not np.array_equal(stored, pool):
            raise RunDirectoryError(
                f"{rd.round_dir(t) / 'pool.json'} holds a pool of {stored.size} records that differs from the one "
                f"derived from the earlier rounds ({pool.size} records); the run directory was edited or is corrupt. "
                f"Start over with overwrite=True."
            )
        return {
            "metrics": rd.read_round_metrics(t),
            "train": rd.read_train(t),
            "selection": rd.read_selection(t),
            "judge": rd.read_judge(t),
        }

    @staticmethod
    def _decode_selection(sel: Mapping[str, Any] | None) -> tuple[np.ndarray, np.ndarray | None]:
        if sel is None:
            return np.empty(0, dtype=np.int64), None
        new = np.asarray(sel.get("new_indices", []), dtype=np.int64).reshape(-1)
        radii = sel.get("radii")
        return new, None if radii is None else np.asarray(radii, dtype=np.float64)

    def _run_round(
        self,
        rd: RunDirectory,
        comm: Communicator,
        t: int,
        pool: np.ndarray,
        state: dict[str, Any],
        bar: Any,
    ) -> tuple[dict[str, Any], np.ndarray, np.ndarray | None, Any]:
        rank0 = comm.rank == 0
        T = self.rounds
        out_dir = rd.round_dir(t) / "model"
        if rank0:
            self._callbacks.fire("on_round_start", t, pool.copy())
        need_signals = state["selection"] is None and (
            self._embed_this_round(t) or (self._score_names and self._selects_in(t))
        )
        need_model = need_signals or (self.judge is not None and state["judge"] is None)

        # -- train -----------------------------------------------------------------------
        model: Any = out_dir
        if state["train"] is None:
            bar.set_postfix(round=t, phase="train")
            out_dir.mkdir(parents=True, exist_ok=True)
            logger.info("round %d: training on %d records", t, pool.size)
            start = time.perf_counter()
            model = self.trainer([self.records[i] for i in pool], t, out_dir)
            time_train = time.perf_counter() - start
            comm.barrier()
            self._on_rank0(
                comm, lambda: rd.write_train(t, {"time_train_s": time_train, "pool_size": int(pool.size)})
            )
        else:
            time_train = float(state["train"].get("time_train_s", 0.0))
            if need_model:
                bar.set_postfix(round=t, phase="load")
                loader = getattr(self.trainer, "load", None)
                if callable(loader):
                    logger.info("round %d: training finished earlier; loading the model from %s", t, out_dir)
                    model = loader(out_dir, t)
                else:
                    logger.info(
                        "round %d: training finished earlier; calling the trainer again on %s", t, out_dir
                    )
                    model = self.trainer([self.records[i] for i in pool], t, out_dir)

        # -- signals and selection ---------------------------------------------------------
        if state["selection"] is None:
            selection = self._signals_and_select(rd, comm, t, pool, model, bar)
        else:
            selection = state["selection"]
        new_idx, radii = self._decode_selection(selection)
        if rank0:
            self._callbacks.fire("on_selected", t, new_idx.copy(), None if radii is None else radii.copy())

        # -- judge -------------------------------------------------------------------------
        if self.judge is not None and state["judge"] is None:
            bar.set_postfix(round=t, phase="judge")
            start = time.perf_counter()
            judged = dict(self.judge(model, t))
            time_judge = time.perf_counter() - start
            self._on_rank0(comm, lambda: rd.write_judge(t, {"metrics": judged, "time_judge_s": time_judge}))
            judge_info: dict[str, Any] = {"metrics": to_jsonable(judged), "time_judge_s": time_judge}
        else:
            judge_info = state["judge"] or {"metrics": {}, "time_judge_s": 0.0}

        # -- the row -----------------------------------------------------------------------
        row = self._assemble_row(t, pool, new_idx, time_train, selection, judge_info)

        def finish() -> dict[str, Any]:
            rd.write_round_metrics(t, row)
            done = [rd.read_round_metrics(i) for i in range(t + 1)]
            rd.write_metrics_summary([r for r in done if r is not None])
            rd.write_status(state="running" if t < T else "finished", completed_rounds=t + 1, rounds=T)
            return row

        row = self._on_rank0(comm, finish)
        if rank0:
            self._callbacks.fire("on_round_end", t, dict(row))
        logger.info(
            "round %d done: pool %d -> %d%s",
            t,
            pool.size,
            pool.size + new_idx.size,
            "" if row.get("vendi") is None else f", vendi {row['vendi']:.2f}",
        )
        return row, new_idx, radii, model

    def _signals_and_select(
        self,
        rd: RunDirectory,
        comm: Communicator,
        t: int,
        pool: np.ndarray,
        model: Any,
        bar: Any,
    ) -> dict[str, Any]:
        rank0 = comm.rank == 0
        n = len(self.records)
        t_embed, t_score = _Timer(), _Timer()

        emb: np.ndarray | None = None
        if self._embed_this_round(t):
            cached = self._on_rank0(comm, lambda: rd.embeddings_path(t).is_file())
            if cached:
                if rank0:
                    emb = rd.read_embeddings(t)
                    logger.info("round %d: using cached embeddings", t)
            else:
                bar.set_postfix(round=t, phase="embed")
                with t_embed():
                    raw = self.embedder(model, self.records)  # type: ignore[misc]
                held: dict[str, np.ndarray] = {}

                def keep_embeddings() -> None:  # rank 0; an error here reaches every rank
                    arr = check_embeddings(raw, name=f"embedder output (round {t})")
                    if arr.shape[0] != n:
                        raise ValidationError(
                            f"The embedder returned {arr.shape[0]} rows in round {t}; expected one per record "
                            f"of Z ({n})."
                        )
                    if self.cache_embeddings:
                        rd.write_embeddings(t, arr)
                        arr = rd.read_embeddings(t)
                    held["emb"] = arr

                self._on_rank0(comm, keep_embeddings)
                emb = held.get("emb")
                del raw

        scores: dict[str, np.ndarray] = {}
        if self._score_names and self._selects_in(t):
            def read_cached_scores() -> bool:  # rank 0 reads the cache once; every rank learns if it was there
                stored = rd.read_scores(t, self._score_names)
                if stored is not None:
                    scores.update(stored)
                return stored is not None

            if not self._on_rank0(comm, read_cached_scores):
                bar.set_postfix(round=t, phase="score")
                with t_score():
                    got = self.scorer(model, self.records)  # type: ignore[misc]

                def keep_scores() -> None:
                    scores.update(self._check_scores(got, t))
                    rd.write_scores(t, scores)

                self._on_rank0(comm, keep_scores)

        bar.set_postfix(round=t, phase="select")

        def select() -> dict[str, Any]:
            return self._select_and_measure(
                rd, t, pool, emb, scores, t_embed.seconds, t_score.seconds
            )

        return self._on_rank0(comm, select)

    def _check_scores(self, got: Any, t: int) -> dict[str, np.ndarray]:
        n = len(self.records)
        if not isinstance(got, Mapping):
            raise ValidationError(
                f"The scorer must return a mapping name -> (N,) array; got {type(got).__name__} in round {t}."
            )
        missing = [s for s in self._score_names if s not in got]
        if missing:
            raise MissingSignalError(
                f"The scorer returned {sorted(got)} in round {t} but the sampler requires {missing}; return them too."
            )
        out = {}
        for name, values in got.items():
            arr = np.asarray(values, dtype=np.float64)
            if arr.shape != (n,):
                raise ValidationError(
                    f"scores[{name!r}] must have shape ({n},), one value per record; got {arr.shape}."
                )
            out[str(name)] = arr
        return out

    def _select_and_measure(
        self,
        rd: RunDirectory,
        t: int,
        pool: np.ndarray,
        emb: np.ndarray | None,
        scores: Mapping[str, np.ndarray],
        time_embed: float,
        time_score: float,
    ) -> dict[str, Any]:
        n = len(self.records)
        candidates = complement_indices(n, pool)
        radii: np.ndarray | None = None
        extra: dict[str, Any] = {}
        start = time.perf_counter()
        if self._selects_in(t):
            budget = self.k * self.rounds if self.mode == "one_time" else self.k
            ctx = SelectionContext(
                pool_idx=pool,
                candidate_idx=candidates,
                rng=round_rng(self.seed, t),
                round=t,
                embeddings=emb if self._needs_embeddings else None,
                scores=dict(scores),
                n_records=n,
            )
            picks, radii = self._call_sampler(ctx, budget)
            check_index_array(picks, n, name=f"sampler output (round {t})")
            if picks.size != budget or np.isin(picks, pool).any():
                raise ValidationError(
                    f"Sampler {getattr(self.sampler, 'name', self.sampler)!r} returned {picks.size} indices in round "
                    f"{t} ({int(np.isin(picks, pool).sum())} already in the pool); expected {budget} new candidates."
                )
            if self.mode == "one_time":
                extra["one_time"] = {"indices": picks, "radii": radii}
                new_idx = picks[: self.k]
                radii = None if radii is None else radii[: self.k]
            else:
                new_idx = picks
        elif self.mode == "one_time" and t < self.rounds:
            one_time = rd.read_selection(0)["one_time"]  # M_0's picks, recorded in round 0
            picks = np.asarray(one_time["indices"], dtype=np.int64)
            new_idx = picks[t * self.k : (t + 1) * self.k]
            all_radii = one_time.get("radii")
            radii = (
                None
                if all_radii is None
                else np.asarray(all_radii, dtype=np.float64)[t * self.k : (t + 1) * self.k]
            )
        else:
            new_idx = np.empty(0, dtype=np.int64)
        time_select = time.perf_counter() - start

        signals: dict[str, Any] = {
            "vendi": None,
            "vendi_reference": None,
            "covering_radius": None,
            "pool_sq_norm_mean": None,
            "all_sq_norm_mean": None,
        }
        if emb is not None:
            signals["vendi"] = _vendi(emb, pool, f"round {t}:")
            if self._selects_in(t) and radii is not None and len(radii):
                signals["covering_radius"] = float(radii[0])  # the first K-Center pick's radius is P_t's
            else:
                signals["covering_radius"] = _covering_radius(emb, pool, candidates, self._metric)
            signals["pool_sq_norm_mean"] = _mean_sq_norm(emb, np.sort(pool))
            signals["all_sq_norm_mean"] = _mean_sq_norm(emb)
        if self.reference_embeddings is not None:
            signals["vendi_reference"] = _vendi(self.reference_embeddings, pool, f"round {t} reference")
        info = {
            "new_indices": new_idx,
            "radii": radii,
            "signals": signals,
            "time_embed_s": time_embed,
            "time_score_s": time_score,
            "time_select_s": time_select,
            **extra,
        }
        rd.write_selection(t, info)
        return to_jsonable({"round": t, **info})

    def _call_sampler(self, ctx: SelectionContext, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        with_radii = getattr(self.sampler, "select_with_radii", None)
        if callable(with_radii):
            picks, radii = with_radii(ctx, k)
            return np.asarray(picks, dtype=np.int64).reshape(-1), np.asarray(radii, dtype=np.float64).reshape(
                -1
            )
        return np.asarray(self.sampler.select(ctx, k), dtype=np.int64).reshape(-1), None

    def _assemble_row(
        self,
        t: int,
        pool: np.ndarray,
        new_idx: np.ndarray,
        time_train: float,
        selection: Mapping[str, Any],
        judge_info: Mapping[str, Any],
    ) -> dict[str, Any]:
        signals = selection.get("signals", {})
        row: dict[str, Any] = {
            "round": t,
            "pool_size": int(pool.size),
            "n_new": int(new_idx.size),
            "vendi": signals.get("vendi"),
            "vendi_reference": signals.get("vendi_reference"),
            "covering_radius": signals.get("covering_radius"),
            "pool_sq_norm_mean": signals.get("pool_sq_norm_mean"),
            "all_sq_norm_mean": signals.get("all_sq_norm_mean"),
            "time_train_s": float(time_train),
            "time_embed_s": float(selection.get("time_embed_s", 0.0)),
            "time_score_s": float(selection.get("time_score_s", 0.0)),
            "time_select_s": float(selection.get("time_select_s", 0.0)),
            "time_judge_s": float(judge_info.get("time_judge_s", 0.0)),
        }
        for key, value in (judge_info.get("metrics") or {}).items():
            row[f"judge/{key}" if key in row else key] = value
        return to_jsonable(row)

    def __repr__(self) -> str:
        return (
            f"EvolutionLoop(n_records={len(self.records)}, sampler={getattr(self.sampler, 'name', self.sampler)!r}, "
            f"mode={self.mode!r}, init_size={self.init_size}, k={self.k}, rounds={self.rounds}, seed={self.seed}, "
            f"run_dir={None if self.run_dir is None else str(self.run_dir)!r})"
        )
