"""The callables :class:`~diverseevol.EvolutionLoop` drives, as public ``typing.Protocol`` types.

Plain functions and objects with ``__call__`` both satisfy them; nothing needs to subclass
anything. The protocols exist for type checkers and documentation: the loop only calls them.

Index spaces: ``records`` passed to the embedder and the scorer is the whole dataset Z in row
order, and every returned array is indexed by the absolute row index into Z. ``records`` passed
to the trainer is the training pool P_t in pick order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .data import InstructionRecord

__all__ = ["Callback", "Communicator", "Embedder", "Judge", "LoadableTrainer", "Scorer", "Trainer"]


@runtime_checkable
class Trainer(Protocol):
    """Fine-tune the foundation model on a training pool, from scratch, and return a model handle.

    Parameters
    ----------
    records : Sequence[InstructionRecord]
        The training pool P_t, in pick order (``records[i] = Z[pool_idx[i]]``).
    round : int
        The iteration t (``0 .. rounds``; the last one is the final training on P_T).
    out_dir : pathlib.Path
        An empty (or, after a crash, partly filled) directory owned by this round, inside the
        run directory. Save checkpoints and the final model here.

    Returns
    -------
    model : Any
        Anything the embedder, the scorer and the judge accept (a model object, a path...).

    Notes
    -----
    After a crash the loop never retrains a round whose training it recorded as finished. To get
    that model back it calls ``trainer.load(out_dir, round)`` when the trainer has a ``load``
    method (:class:`LoadableTrainer`); otherwise it calls the trainer again with the same
    ``out_dir``, and the trainer should notice the finished model there and load it instead of
    training (the transformers trainer in :mod:`diverseevol.hf` does).
    """

    def __call__(self, records: Sequence[InstructionRecord], round: int, out_dir: Path) -> Any: ...


@runtime_checkable
class LoadableTrainer(Trainer, Protocol):
    """A :class:`Trainer` that can load a model it finished training in an earlier process."""

    def load(self, out_dir: Path, round: int) -> Any:
        """Return the model that ``self(records, round, out_dir)`` saved in ``out_dir``."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Embed every record of Z with a model.

    Parameters
    ----------
    model : Any
        What the trainer returned.
    records : Sequence[InstructionRecord]
        The whole dataset Z, in row order.

    Returns
    -------
    ndarray of float, shape (N, d)
        Row ``i`` embeds ``records[i]`` (Z's index space). An ``np.memmap`` is fine; float32 is
        recommended. Must be deterministic for a given model if resumed runs are to reproduce
        uninterrupted ones without ``cache_embeddings=True``.
    """

    def __call__(self, model: Any, records: Sequence[InstructionRecord]) -> np.ndarray: ...


@runtime_checkable
class Scorer(Protocol):
    """Per-record uncertainty signals of a model, for the uncertainty samplers.

    Returns
    -------
    dict[str, ndarray of shape (N,)]
        Keys among ``"confidence"``, ``"margin"``, ``"entropy"`` (and any a custom sampler
        requires as ``"scores:<name>"``); values indexed by absolute row of Z.
    """

    def __call__(self, model: Any, records: Sequence[InstructionRecord]) -> Mapping[str, np.ndarray]: ...


@runtime_checkable
class Judge(Protocol):
    """Evaluate a trained model; called after every training (rounds ``0 .. rounds``).

    The one judge protocol: :class:`~diverseevol.judge.ExactMatchJudge` and
    :class:`~diverseevol.judge.PairwiseLoopJudge` satisfy it, and ``diverseevol.judge.Judge`` is
    this class.

    Parameters
    ----------
    model : Any
        What the trainer returned for this round.
    round : int
        The iteration t.

    Returns
    -------
    dict[str, float]
        Metric name -> value, merged into the round's metrics row (e.g. ``{"vicuna/rs": 87.5}``).
        Names that clash with the loop's own keys (``round``, ``pool_size``, ``vendi``...) are
        prefixed with ``"judge/"``.
    """

    def __call__(self, model: Any, round: int) -> Mapping[str, float]: ...


@runtime_checkable
class Communicator(Protocol):
    """Collective operations between the processes of a multi-process run.

    Every rank calls the trainer, embedder, scorer and judge (they shard work internally and
    return full results); only rank 0 runs the sampler and writes the run directory, and sends
    its decisions to the other ranks with :meth:`broadcast_object`.

    Attributes
    ----------
    rank : int
        This process's rank, ``0 <= rank < world_size``.
    world_size : int
        Number of processes.
    """

    rank: int
    world_size: int

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """Return ``src``'s ``obj`` on every rank (the argument is ignored on other ranks)."""
        ...

    def barrier(self) -> None:
        """Block until every rank has reached this call."""
        ...


class Callback(Protocol):
    """Optional hooks, any subset of the three methods (or pass plain functions by keyword).

    ``on_round_start(round, pool_idx)``: before training on ``pool_idx`` (P_t, absolute row
    indices into Z, pick order). ``on_selected(round, new_idx, radii)``: after selection
    (``radii`` is None for samplers without covering radii). ``on_round_end(round, metrics_row)``:
    after the round's metrics are written. Called on rank 0 only.
    """

    def on_round_start(self, round: int, pool_idx: np.ndarray) -> None: ...

    def on_selected(self, round: int, new_idx: np.ndarray, radii: np.ndarray | None) -> None: ...

    def on_round_end(self, round: int, metrics_row: Mapping[str, Any]) -> None: ...
