"""The loop's randomness: P_0 and each round's sampler generator, pure functions of the seed.

Imports only numpy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["initial_pool", "round_rng"]


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
