"""EvolutionLoop: DiverseEvol's train -> embed/score -> select loop, crash-safe and resumable.

The loop is Algorithm 1 of Wu et al. (2023): a random initial pool P_0, then for every round t
a model M_t trained on P_t from scratch, whose view of the whole dataset Z (embeddings and/or
uncertainty scores, only what the sampler requires) drives the selection of the next k records;
finally M_T is trained on P_T. Every step is recorded in a run directory
(:mod:`diverseevol.run.directory`) so that ``run()`` after a crash continues at the first
unfinished step and produces exactly the pools an uninterrupted run would have produced.

This module runs the rounds only. The arguments are checked in :mod:`.settings`, the run
directory is opened and replayed in :mod:`.resume`, the signals come from :mod:`.signals`, the
selection and measurements from :mod:`.selection`, and the metrics row from :mod:`.result`.
Imports nothing from :mod:`diverseevol.hf`.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._files import redact_secrets, to_jsonable
from .._progress import progress_bar
from ..comm import resolve_communicator, run_on_rank0
from ..data import data_fingerprint
from ..errors import ValidationError
from ..protocols import Communicator, Embedder, Judge, Scorer, Trainer
from ..samplers.base import Sampler
from ..tracking import tracking_callbacks
from .callbacks import Callbacks
from .directory import RoundRecord, RunDirectory, selection_indices, selection_radii
from .resume import completed_rounds, open_run, recorded_round, refuse_foreign
from .result import EvolutionResult, metrics_row
from .seeds import initial_pool
from .selection import select_and_measure
from .settings import LoopSettings, callable_label
from .signals import compute_signals, signals_need_model

__all__ = ["ROUND_SUMMARY", "EvolutionLoop", "round_line"]

logger = logging.getLogger("diverseevol.loop")  # the loop's documented logger (docs/loop.md)

#: Attribute set on the log record of each round's summary line (``extra={ROUND_SUMMARY: True}``),
#: so that ``diverseevol run`` can show those lines without the loop's other INFO messages.
ROUND_SUMMARY = "diverseevol_round_summary"

#: The phases of a round in the summary line, with their metrics-row keys.
_PHASES = (("train", "time_train_s"), ("embed", "time_embed_s"), ("score", "time_score_s"),
           ("select", "time_select_s"), ("judge", "time_judge_s"))


def _headline(row: Mapping[str, Any]) -> tuple[str, float] | None:
    """The judge's headline metric of a metrics row: the first pairwise RS (``<bench>/rs``), else
    ``accuracy``, else the first numeric judge metric without a group; None without a judge."""
    from .result import METRIC_KEYS

    judged = [(k, v) for k, v in row.items() if k not in METRIC_KEYS and isinstance(v, (int, float))
              and not isinstance(v, bool)]
    for pick in (lambda k: k.endswith("/rs"), lambda k: k == "accuracy", lambda k: "/" not in k):
        for k, v in judged:
            if pick(k):
                return k, float(v)
    return None


def round_line(row: Mapping[str, Any], rounds: int) -> str:
    """One line for a finished round: round, pool size, seconds per phase, Vendi, the judge's headline.

    Parameters
    ----------
    row : mapping
        The round's metrics row (:func:`~diverseevol.run.result.metrics_row`).
    rounds : int
        T, the last round.

    Returns
    -------
    str
        E.g. ``"round 1/3: pool 40 (+20), train 95.1 s, embed 30.2 s, select 0.1 s, vendi 3.21, accuracy 0.450"``;
        phases that took no time (under 0.05 s) are left out.
    """
    parts = [f"round {int(row['round'])}/{rounds}: pool {int(row['pool_size'])}"
             + (f" (+{int(row['n_new'])})" if row.get("n_new") else "")]
    parts += [f"{name} {float(row[key]):.1f} s" for name, key in _PHASES if float(row.get(key) or 0.0) >= 0.05]
    if row.get("vendi") is not None:
        parts.append(f"vendi {float(row['vendi']):.2f}")
    head = _headline(row)
    if head is not None:
        parts.append(f"{head[0]} {head[1]:.3f}")
    return ", ".join(parts)

_RoundOutput = tuple[dict[str, Any], np.ndarray, "np.ndarray | None", Any]


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
        radius and norm statistics. ``None`` (default) and ``False``: in the rounds whose
        embeddings are computed for selection anyway (rounds 0..T-1 of a sampler that requires
        embeddings; the final round, which selects nothing, is not embedded and its row has
        ``None``); ``True``: every round, the final one included, running the embedder even for
        samplers that do not need it.
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
        Objects with any of the three methods above, and optionally ``on_run_start(run_dir,
        config)`` (once the run directory is open), ``on_round_replayed(round, metrics_row)`` (for
        each round a resumed run reads back from disk instead of running it) and
        ``on_run_end(result, error)`` (``result`` None and ``error`` the exception when the run
        raised). Called on rank 0.
    comm : Communicator, optional
        For multi-process runs; default: a single process, or
        :meth:`diverseevol.comm.TorchCommunicator.from_env` when the environment variable
        ``WORLD_SIZE`` is above 1.
    progress : bool, default True
        Show a progress bar over rounds (rank 0; ``DIVERSEEVOL_PROGRESS=0`` also hides it).
    tags : dict, optional
        Free-form JSON metadata stored in ``config.json`` (not compared on resume; secret-looking
        keys are redacted).
    report_to : str or list of str, optional
        Experiment tracking of the per-round metrics, spelled as transformers spells
        ``TrainingArguments.report_to``: ``"tensorboard"``, ``"mlflow"``, ``"wandb"``, a list of
        them, ``"all"`` (the installed ones) or ``"none"``. Each becomes a callback of
        :mod:`diverseevol.tracking` with default settings (one tracking run per :meth:`run`);
        for other settings pass the callback objects in ``callbacks`` instead.
    label_field : str, optional
        A field of the records (e.g. Dolly's ``"category"``; read from ``meta``, then from the
        source object ``original``). Each metrics row then also carries ``label_entropy`` (nats)
        and ``label_counts`` of P_t, so you can see whether a sampler starves whole categories.
        Samplers that require labels (``"balanced_random"``) get them as ``ctx.labels`` and need
        it: without it, or when a record lacks the field, the loop refuses to start, naming the
        record. Samplers that require lengths (``"longest"``) get ``ctx.lengths``: tokens when the
        scorer has ``record_lengths`` (:class:`~diverseevol.hf.HFScorer`), else whitespace words of
        the Alpaca-rendered record.

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

    Attributes
    ----------
    settings : LoopSettings
        The checked arguments; each of its fields is also readable (and assignable) as an
        attribute of the loop: ``loop.records``, ``loop.sampler``, ``loop.k``...
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
        report_to: str | Sequence[str] | None = None,
        label_field: str | None = None,
    ) -> None:
        #: The checked arguments; each is also readable as an attribute (``loop.k``, ``loop.trainer``).
        self.settings = LoopSettings.from_arguments(
            data,
            trainer=trainer,
            embedder=embedder,
            sampler=sampler,
            sampler_params=sampler_params,
            scorer=scorer,
            judge=judge,
            init_size=init_size,
            k=k,
            rounds=rounds,
            seed=seed,
            mode=mode,
            run_dir=run_dir,
            resume=resume,
            overwrite=overwrite,
            reference_embeddings=reference_embeddings,
            vendi=vendi,
            cache_embeddings=cache_embeddings,
            keep_models=keep_models,
            comm=comm,
            progress=progress,
            tags=tags,
            report_to=report_to,
            label_field=label_field,
        )
        events = {"on_round_start": on_round_start, "on_selected": on_selected, "on_round_end": on_round_end}
        self._events, self._callback_objects = events, tuple(callbacks)
        self._callbacks = Callbacks.collect(events, callbacks)
        self._fingerprint: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        """The settings read as attributes (``loop.records``, ``loop.trainer``, ``loop.k``...)."""
        settings = self.__dict__.get("settings")
        if settings is not None and name in LoopSettings.__dataclass_fields__:
            return getattr(settings, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        """Assigning a setting (``loop.embedder = ...``) replaces it in :attr:`settings`, unchecked."""
        if name in LoopSettings.__dataclass_fields__ and "settings" in self.__dict__:
            self.settings = replace(self.settings, **{name: value})
        else:
            super().__setattr__(name, value)

    @property
    def data_fingerprint(self) -> dict[str, Any]:
        """``{"n_records": N, "sha256": ...}`` of the records (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = data_fingerprint(self.settings.records)
        return self._fingerprint

    def config(self) -> dict[str, Any]:
        """The configuration written to ``config.json`` (secrets are redacted when written)."""
        return self.settings.to_config()

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
        comm = resolve_communicator(self.settings.comm)
        run_path = self.settings.run_dir
        if run_path is None:
            run_path = Path(run_on_rank0(comm, lambda: tempfile.mkdtemp(prefix="diverseevol-run-")))
            logger.info("no run_dir given: recording this run in %s", run_path)
        rd = RunDirectory(run_path)
        with contextlib.ExitStack() as stack:

            def acquire() -> None:  # rank 0 only; a refusal is raised on every rank
                refuse_foreign(rd)
                stack.enter_context(rd.lock())

            run_on_rank0(comm, acquire)
            header = run_on_rank0(comm, lambda: open_run(rd, self.settings, self.data_fingerprint))
            return self._run_tracked(rd, comm, header)

    def _run_tracked(self, rd: RunDirectory, comm: Communicator, header: dict[str, Any]) -> EvolutionResult:
        """The rounds between the ``on_run_start`` and ``on_run_end`` events (fired on rank 0)."""
        rank0 = comm.rank == 0
        trackers = tracking_callbacks(self.settings.report_to) if rank0 else []  # fresh per run()
        self._callbacks = Callbacks.collect(self._events, [*self._callback_objects, *trackers])
        # on rank 0; a refusal (a tracker checked before round 0) is raised on every rank
        run_on_rank0(comm, lambda: self._callbacks.fire("on_run_start", rd.path, dict(header.get("config", {}))))
        try:
            result = self._run_rounds(rd, comm, header)
        except BaseException as exc:
            if rank0:
                self._callbacks.fire("on_run_end", None, exc)
            raise
        if rank0:
            self._callbacks.fire("on_run_end", result, None)
        return result

    def _run_rounds(self, rd: RunDirectory, comm: Communicator, header: dict[str, Any]) -> EvolutionResult:
        s = self.settings
        done = run_on_rank0(comm, lambda: completed_rounds(rd, s))
        pool = initial_pool(s.n_records, s.init_size, s.seed)
        config, data = header.get("config", {}), header.get("data", {})
        result = EvolutionResult(pools=[], metrics=[], config=config, data=data, run_dir=rd.path)
        hide = not (s.progress and comm.rank == 0) or None  # None: progress_bar's own default
        bar = progress_bar(total=s.rounds + 1, desc="DiverseEvol rounds", unit="round", disable=hide)
        try:
            for t in range(s.rounds + 1):
                if t < len(done):
                    record = done[t]
                else:
                    record = run_on_rank0(comm, lambda t=t, p=pool: recorded_round(rd, t, p))
                if record.complete:
                    row, new_idx, radii, model = self._replay_round(rd, record)
                    if comm.rank == 0:  # trackers log what they do not hold yet (a kill -9 before they logged it)
                        self._callbacks.fire("on_round_replayed", t, dict(row))
                else:
                    row, new_idx, radii, model = self._run_round(rd, comm, record, pool, bar)
                result.pools.append(pool)
                result.metrics.append(row)
                result.models.append(model if s.keep_models else record.model_dir)
                del model  # with keep_models=False, M_t is freed before M_{t+1} trains
                if t < s.rounds:
                    result.radii.append(radii)
                    pool = np.concatenate([pool, new_idx])
                bar.update(1)
        finally:
            bar.close()
        if comm.rank == 0:
            rd.finish(result.metrics, rounds=s.rounds)
        result.finished = True
        logger.info("run finished: final pool of %d records in %s", len(pool), rd.path)
        return result

    @staticmethod
    def _replay_round(rd: RunDirectory, record: RoundRecord) -> _RoundOutput:
        logger.info("round %d: already complete in %s", record.round, rd.path)
        row: dict[str, Any] = record.metrics  # type: ignore[assignment]  # complete: not None
        return row, record.new_indices, record.radii, record.model_dir

    # ---- one round ----------------------------------------------------------------------
    def _run_round(
        self, rd: RunDirectory, comm: Communicator, record: RoundRecord, pool: np.ndarray, bar: Any
    ) -> _RoundOutput:
        s, t, rank0 = self.settings, record.round, comm.rank == 0
        if rank0:
            self._callbacks.fire("on_round_start", t, pool.copy())
        need_signals = record.selection is None and signals_need_model(s, t)
        need_model = need_signals or (s.judge is not None and record.judge is None)
        model, time_train = self._train(rd, comm, record, pool, need_model, bar)
        selection = record.selection
        if selection is None:
            selection = self._select(rd, comm, t, pool, model, bar)
        new_idx, radii = selection_indices(selection), selection_radii(selection)
        if rank0:
            self._callbacks.fire("on_selected", t, new_idx.copy(), None if radii is None else radii.copy())
        judged = self._judge(rd, comm, record, model, bar)
        row = metrics_row(
            t,
            pool_size=pool.size,
            n_new=new_idx.size,
            signals=selection.get("signals", {}),
            times={**selection, "time_train_s": time_train, "time_judge_s": judged.get("time_judge_s", 0.0)},
            judge_metrics=judged.get("metrics"),
        )

        def complete() -> dict[str, Any]:  # rank 0 writes; every rank gets rank 0's row
            rd.complete_round(t, row, rounds=s.rounds)
            return row

        row = run_on_rank0(comm, complete)
        if rank0:
            self._callbacks.fire("on_round_end", t, dict(row))
        logger.info("%s", round_line(row, s.rounds), extra={ROUND_SUMMARY: True})
        return row, new_idx, radii, model

    def _train(
        self,
        rd: RunDirectory,
        comm: Communicator,
        record: RoundRecord,
        pool: np.ndarray,
        need_model: bool,
        bar: Any,
    ) -> tuple[Any, float]:
        """M_t and the seconds its training took (read back when training finished earlier)."""
        s, t, out_dir = self.settings, record.round, record.model_dir
        if record.train is not None:
            time_train = float(record.train.get("time_train_s", 0.0))
            return (self._reload(record, pool, bar) if need_model else out_dir), time_train
        bar.set_postfix(round=t, phase="train")
        out_dir.mkdir(parents=True, exist_ok=True)
        logger.info("round %d: training on %d records", t, pool.size)
        start = time.perf_counter()
        model = s.trainer([s.records[i] for i in pool], t, out_dir)
        time_train = time.perf_counter() - start
        comm.barrier()
        info = {"time_train_s": time_train, "pool_size": int(pool.size)}
        run_on_rank0(comm, lambda: rd.write_train(t, info))
        return model, time_train

    def _reload(self, record: RoundRecord, pool: np.ndarray, bar: Any) -> Any:
        """A model whose training finished before: the trainer's ``load``, else the trainer again."""
        s, t, out_dir = self.settings, record.round, record.model_dir
        bar.set_postfix(round=t, phase="load")
        loader = getattr(s.trainer, "load", None)
        if callable(loader):
            logger.info("round %d: training finished earlier; loading the model from %s", t, out_dir)
            return loader(out_dir, t)
        logger.info("round %d: training finished earlier; calling the trainer again on %s", t, out_dir)
        return s.trainer([s.records[i] for i in pool], t, out_dir)

    def _select(
        self, rd: RunDirectory, comm: Communicator, t: int, pool: np.ndarray, model: Any, bar: Any
    ) -> dict[str, Any]:
        """Compute M_t's signals and run the selection; the signals are freed on return."""
        signals = compute_signals(self.settings, rd, comm, t, model, bar)
        bar.set_postfix(round=t, phase="select")
        return run_on_rank0(comm, lambda: select_and_measure(self.settings, rd, t, pool, signals))

    def _judge(
        self, rd: RunDirectory, comm: Communicator, record: RoundRecord, model: Any, bar: Any
    ) -> dict[str, Any]:
        """``{"metrics": ..., "time_judge_s": ...}`` for M_t: judged now, or as recorded earlier."""
        judge, t = self.settings.judge, record.round
        if judge is None or record.judge is not None:
            return record.judge or {"metrics": {}, "time_judge_s": 0.0}
        bar.set_postfix(round=t, phase="judge")
        start = time.perf_counter()
        got = judge(model, t)
        elapsed = time.perf_counter() - start
        if not isinstance(got, Mapping):
            raise ValidationError(
                f"The judge {callable_label(judge)} returned {type(got).__name__} for round {t}; expected a "
                f"mapping metric name -> value, e.g. {{'accuracy': 0.8}}. Return a dict (return {{}} for no "
                f"metrics)."
            )
        judged = redact_secrets(dict(got))  # a judge may return a key: it never reaches disk or the rows
        run_on_rank0(comm, lambda: rd.write_judge(t, {"metrics": judged, "time_judge_s": elapsed}))
        return {"metrics": to_jsonable(judged), "time_judge_s": elapsed}

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"EvolutionLoop(n_records={s.n_records}, sampler={s.sampler_name!r}, mode={s.mode!r}, "
            f"init_size={s.init_size}, k={s.k}, rounds={s.rounds}, seed={s.seed}, "
            f"run_dir={None if s.run_dir is None else str(s.run_dir)!r})"
        )
