"""The Sampler protocol and the read-only context every sampler receives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

__all__ = ["SelectionContext", "Sampler"]


@dataclass(frozen=True)
class SelectionContext:
    """Everything a sampler may look at when it selects records; built by the caller, read-only.

    Attributes
    ----------
    pool_idx : ndarray of int64, shape (|P_t|,)
        The training pool P_t, as absolute row indices into Z.
    candidate_idx : ndarray of int64, shape (|Q_t|,)
        The records that may be selected (by default Z \\ P_t), absolute row indices into Z.
    rng : numpy.random.Generator
        The only source of randomness a sampler may use; owned by the caller and derived from
        (seed, round) by :class:`~diverseevol.EvolutionLoop`.
    round : int
        The iteration t.
    embeddings : ndarray of shape (N, d), optional
        Model M_t's embedding of every record of Z, rows in Z's index space.
    scores : Mapping[str, ndarray of shape (N,)]
        Per-record signals in Z's index space, e.g. ``"confidence"``, ``"margin"``, ``"entropy"``.
    n_records : int, optional
        |Z|; inferred from ``embeddings`` or the scores when omitted.
    """

    pool_idx: np.ndarray
    candidate_idx: np.ndarray
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    round: int = 0
    embeddings: np.ndarray | None = None
    scores: Mapping[str, np.ndarray] = field(default_factory=dict)
    n_records: int | None = None

    def __post_init__(self) -> None:
        pool = np.asarray(self.pool_idx, dtype=np.int64).reshape(-1)
        cand = np.asarray(self.candidate_idx, dtype=np.int64).reshape(-1)
        pool.setflags(write=False)
        cand.setflags(write=False)
        object.__setattr__(self, "pool_idx", pool)
        object.__setattr__(self, "candidate_idx", cand)
        object.__setattr__(self, "scores", MappingProxyType(dict(self.scores)))
        if self.n_records is None:
            n = None
            if self.embeddings is not None:
                n = int(self.embeddings.shape[0])
            elif self.scores:
                n = int(len(next(iter(self.scores.values()))))
            object.__setattr__(self, "n_records", n)

    def signals(self) -> frozenset[str]:
        """The signals this context carries, spelled as in ``Sampler.requires``."""
        have = {f"scores:{name}" for name in self.scores}
        if self.embeddings is not None:
            have.add("embeddings")
        return frozenset(have)


@runtime_checkable
class Sampler(Protocol):
    """A selection strategy: holds only hyperparameters, gets everything else from the context.

    Attributes
    ----------
    name : str
        The registry name.
    requires : frozenset of str
        Signals the caller must put in the context: ``"embeddings"`` and/or ``"scores:<name>"``
        (e.g. ``"scores:margin"``). The loop computes only what is required.

    Notes
    -----
    ``select(ctx, k)`` returns ``k`` distinct int64 indices from ``ctx.candidate_idx`` (absolute
    row indices into Z), in pick order. Randomness only from ``ctx.rng``; ties break toward the
    lowest index. Check a custom sampler with :func:`diverseevol.testing.check_sampler`.
    """

    name: ClassVar[str]
    requires: ClassVar[frozenset[str]]

    def select(self, ctx: SelectionContext, k: int) -> np.ndarray: ...
