"""Test helpers for sampler authors: the reusable sampler contract check.

Run :func:`check_sampler` from your own test suite to verify a custom sampler behaves as the
selection loop expects::

    from diverseevol.testing import check_sampler

    def test_my_sampler_contract():
        check_sampler(MySampler)            # a class, a zero-argument factory, or an instance

It builds small synthetic contexts carrying embeddings, every score the sampler requires and,
when it requires them, labels and lengths, and raises ``AssertionError`` naming the first violated rule.
"""

from __future__ import annotations

import random as _pyrandom
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .errors import PoolExhaustedError, SamplerOutputError, ValidationError
from .samplers.base import Requirements, Selection, SelectionContext, _run_sampler_with_output, _warn_old_requires
from .samplers.uncertainty import UNCERTAINTY_SCORES

__all__ = ["check_sampler", "make_context"]


def _make_signals(n: int, d: int, seed: int, extra_scores: set[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng([seed, 7919])
    # A few clusters plus noise, so distance-based samplers see structure.
    centers = rng.normal(scale=4.0, size=(5, d))
    emb = (centers[rng.integers(0, 5, size=n)] + rng.normal(size=(n, d))).astype(np.float32)
    # Scores drawn from a small set of values so ties occur.
    confidence = rng.choice(np.linspace(0.2, 1.0, 17), size=n)
    margin = np.clip(confidence - rng.uniform(0.0, 0.2, size=n), 0.0, 1.0).round(2)
    entropy = rng.choice(np.linspace(0.0, 3.0, 13), size=n)
    scores = dict(zip(UNCERTAINTY_SCORES, (confidence, margin, entropy)))
    for key in sorted(extra_scores - set(scores)):
        scores[key] = rng.choice(np.linspace(0.0, 1.0, 11), size=n)
    return emb, scores


def _make_records_signals(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic labels (5 categories of unequal size, one rare) and lengths (integer, long-tailed, with ties)."""
    rng = np.random.default_rng([seed, 7907])  # its own stream: the embeddings and scores stay as they were
    labels = rng.choice(np.array(["brainstorm", "classify", "closed_qa", "open_qa", "rare"]), size=n,
                        p=[0.3, 0.25, 0.25, 0.17, 0.03])
    lengths = np.round(rng.lognormal(mean=4.0, sigma=0.8, size=n))
    return labels, lengths


def make_context(
    n: int = 300,
    *,
    d: int = 8,
    seed: int = 0,
    n_pool: int = 30,
    n_candidates: int | None = None,
    embeddings: np.ndarray | None = None,
    scores: Mapping[str, np.ndarray] | None = None,
    extra_scores: set[str] | frozenset[str] = frozenset(),
    round: int = 0,
    labels: np.ndarray | bool | None = None,
    lengths: np.ndarray | bool | None = None,
) -> SelectionContext:
    """Build a synthetic :class:`SelectionContext` with embeddings and scores for every record.

    Parameters
    ----------
    n : int
        Number of records N in the synthetic Z.
    d : int
        Embedding dimension.
    seed : int
        Seeds the data, the random pool/candidate split and ``ctx.rng``.
    n_pool : int
        Size of the training pool (absolute row indices into Z, drawn at random).
    n_candidates : int, optional
        Number of candidates, drawn from Z minus the pool; all of it when None.
    embeddings : ndarray of shape (n, d), optional
        Use these embeddings instead of synthetic ones.
    scores : mapping of str to ndarray of shape (n,), optional
        Use these scores instead of the synthetic ``confidence``, ``margin``, ``entropy``.
    extra_scores : set of str
        Further score names to synthesise (uniform in [0, 1] on a grid, with ties).
    round : int
        The context's round.
    labels : ndarray of shape (n,) or bool, optional
        ``ctx.labels``: these labels, or with ``True`` synthetic ones (five categories of unequal
        size); none by default.
    lengths : ndarray of shape (n,) or bool, optional
        ``ctx.lengths``: these lengths, or with ``True`` synthetic ones (long-tailed integers, with
        ties); none by default.

    Returns
    -------
    SelectionContext
        Its ``rng`` is ``np.random.default_rng(seed)``.
    """
    emb, synth = _make_signals(n, d, seed, set(extra_scores))
    if embeddings is not None:
        emb = embeddings
    if scores is not None:
        synth = {**synth, **dict(scores)}
    synth_labels, synth_lengths = _make_records_signals(n, seed)
    split = np.random.default_rng([seed, 104729]).permutation(n)
    pool = np.sort(split[:n_pool])
    rest = split[n_pool:]
    cand = np.sort(rest if n_candidates is None else rest[:n_candidates])
    return SelectionContext(
        pool_idx=pool,
        candidate_idx=cand,
        rng=np.random.default_rng(seed),
        round=round,
        embeddings=emb,
        scores=synth,
        n_records=n,
        labels=_given_or_synthetic(labels, synth_labels),
        lengths=_given_or_synthetic(lengths, synth_lengths),
    )


def _given_or_synthetic(given: np.ndarray | bool | None, synthetic: np.ndarray) -> np.ndarray | None:
    if given is None or given is False:
        return None
    return synthetic if given is True else given


def _fresh_context(ctx: SelectionContext, seed: int) -> SelectionContext:
    return SelectionContext(
        pool_idx=ctx.pool_idx.copy(),
        candidate_idx=ctx.candidate_idx.copy(),
        rng=np.random.default_rng(seed),
        round=ctx.round,
        embeddings=ctx.embeddings,
        scores=dict(ctx.scores),
        n_records=ctx.n_records,
        labels=ctx.labels,
        lengths=ctx.lengths,
    )


class _Checker:
    def __init__(self, factory: Callable[[], Any], label: str) -> None:
        self.factory = factory
        self.label = label

    def fail(self, rule: str, detail: str) -> None:
        raise AssertionError(f"check_sampler: {self.label} violates '{rule}': {detail}")

    def run(self, rule: str, ctx: SelectionContext, k: int, sampler: Any = None) -> tuple[Any, Selection]:
        """Run the sampler through run_sampler; return (what select returned, the Selection)."""
        sampler = self.factory() if sampler is None else sampler
        try:
            return _run_sampler_with_output(sampler, ctx, k)
        except AssertionError:
            raise
        except SamplerOutputError as exc:
            self.fail(rule, str(exc))
            raise  # unreachable: fail() raises
        except Exception as exc:
            raise AssertionError(
                f"check_sampler: {self.label} raised {type(exc).__name__} during '{rule}' "
                f"(k={k}, {len(ctx.pool_idx)} pool, {len(ctx.candidate_idx)} candidates): {exc}"
            ) from exc

    def check_output(self, rule: str, ctx: SelectionContext, k: int, result: tuple[Any, Selection]) -> Selection:
        raw, selection = result
        if isinstance(raw, np.ndarray):
            if raw.ndim != 1:
                self.fail(rule, f"select() must return a 1-D array; got shape {raw.shape}.")
            if raw.dtype != np.int64:
                self.fail(rule, f"select() must return int64 indices; got dtype {raw.dtype}. Use .astype(np.int64).")
        elif not isinstance(raw, (Selection, tuple)):  # a tuple comes from a deprecated select_with_radii
            self.fail(rule, f"select() must return a numpy ndarray or a Selection; got {type(raw).__name__}.")
        out = selection.indices
        if out.shape[0] != k:
            self.fail(rule, f"asked for k={k} records, got {out.shape[0]}.")
        uniq, counts = np.unique(out, return_counts=True)
        if uniq.size != out.size:
            self.fail(rule, f"returned duplicates: {uniq[counts > 1][:5].tolist()} appear more than once.")
        in_pool = np.intersect1d(out, ctx.pool_idx)
        if in_pool.size:
            self.fail(rule, f"returned indices already in the training pool: {in_pool[:5].tolist()}.")
        outside = np.setdiff1d(out, ctx.candidate_idx)
        if outside.size:
            self.fail(rule, f"returned indices that are not candidates: {outside[:5].tolist()}.")
        if selection.radii is not None and np.isnan(selection.radii).any():
            self.fail(rule, "Selection.radii holds NaN; a covering radius is a distance (>= 0, or inf).")
        return selection


def check_sampler(
    sampler_or_factory: Any,
    *,
    n: int = 300,
    d: int = 8,
    seed: int = 0,
    k: int = 20,
    embeddings: np.ndarray | None = None,
    scores: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Check that a sampler honours the :class:`~diverseevol.samplers.Sampler` contract.

    The rules checked, on synthetic contexts (a random pool, all remaining records as
    candidates, a candidate subset, an empty pool):

    * ``requires`` is a :class:`~diverseevol.samplers.Requirements` (the deprecated set of
      ``"embeddings"`` / ``"scores:<name>"`` strings is accepted with a DeprecationWarning);
    * run through :func:`~diverseevol.samplers.run_sampler`, ``select(ctx, k)`` returns a
      :class:`~diverseevol.samplers.Selection` or a 1-D int64 ndarray of exactly ``k``
      indices, without duplicates, disjoint from ``ctx.pool_idx`` and a subset of
      ``ctx.candidate_idx``; a Selection's ``radii``, when given, hold no NaN;
    * the same result (picks and radii) for two contexts whose ``rng`` has the same seed (and
      fresh sampler objects, or the same object called twice);
    * the whole candidate set when ``k == len(ctx.candidate_idx)``; an empty int64 array for
      ``k == 0``;
    * :class:`~diverseevol.errors.PoolExhaustedError` when ``k > len(ctx.candidate_idx)``
      (:func:`diverseevol.samplers.check_k` applies this rule and the ``k >= 0`` one);
    * the context (index arrays, embeddings, scores) is not modified;
    * randomness comes only from ``ctx.rng``: the global ``numpy.random`` and ``random`` states
      are unchanged.

    Parameters
    ----------
    sampler_or_factory : Sampler, or class / callable returning one
        A class or zero-argument factory is called to get a fresh sampler for every check; an
        instance is reused (so it must not carry state that changes its picks).
    n : int, default 300
        Number of records in the synthetic data set.
    d : int, default 8
        Embedding dimension.
    seed : int, default 0
        Seed of the synthetic data and of the contexts' generators.
    k : int, default 20
        The ``k`` used by the ordinary checks; must be at most ``n // 4``.
    embeddings : ndarray of shape (n, d), optional
        Real embeddings to use instead of synthetic ones.
    scores : mapping of str to ndarray of shape (n,), optional
        Real per-record scores to use instead of synthetic ones.

    Raises
    ------
    AssertionError
        Naming the sampler, the first violated rule and what was returned.

    Examples
    --------
    >>> from diverseevol.samplers import RandomSampler
    >>> from diverseevol.testing import check_sampler
    >>> check_sampler(RandomSampler)
    """
    if embeddings is not None:
        n, d = int(embeddings.shape[0]), int(embeddings.shape[1])
    if k > n // 4:
        raise ValueError(f"check_sampler needs k <= n // 4 = {n // 4}; got k={k}. Lower k or raise n.")
    if isinstance(sampler_or_factory, type) or (
        callable(sampler_or_factory) and not callable(getattr(sampler_or_factory, "select", None))
    ):
        factory = sampler_or_factory
    else:
        instance = sampler_or_factory
        factory = lambda: instance
    first = factory()
    label = f"{type(first).__name__}" + (f" ({first.name!r})" if isinstance(getattr(first, "name", None), str) else "")
    c = _Checker(factory, label)

    if not callable(getattr(first, "select", None)):
        c.fail("protocol", f"the object {first!r} has no select(ctx, k) method.")
    declared = getattr(first, "requires", None)
    if declared is None:
        c.fail("protocol", "`requires` is missing; declare requires = Requirements(...) on the class.")
    try:
        requires = Requirements.parse(declared)
    except ValidationError as exc:
        c.fail("protocol", f"`requires` = {declared!r} is not valid: {exc}")
    if not isinstance(declared, Requirements):
        _warn_old_requires(type(first), declared, requires)
    extra = set(requires.scores)

    def ctx_for(**kw: Any) -> SelectionContext:
        return make_context(n, d=d, seed=seed, embeddings=embeddings, scores=scores, extra_scores=extra,
                            labels=requires.labels or None, lengths=requires.lengths or None, **kw)

    scenarios = {
        "random pool, all others candidates": {"n_pool": max(1, n // 10)},
        "candidate subset": {"n_pool": max(1, n // 10), "n_candidates": n // 2},
        "empty pool": {"n_pool": 0},
    }

    np_state = np.random.get_state()
    py_state = _pyrandom.getstate()

    for scenario, kw in scenarios.items():
        ctx = ctx_for(**kw)
        snapshot = (
            ctx.pool_idx.copy(),
            ctx.candidate_idx.copy(),
            None if ctx.embeddings is None else np.array(ctx.embeddings, copy=True),
            {key: np.array(v, copy=True) for key, v in ctx.scores.items()},
        )
        rule = f"exactly k distinct candidates, disjoint from the pool [{scenario}]"
        out = c.check_output(rule, ctx, k, c.run(rule, ctx, k))

        rule = f"does not modify the context [{scenario}]"
        if not (np.array_equal(ctx.pool_idx, snapshot[0]) and np.array_equal(ctx.candidate_idx, snapshot[1])):
            c.fail(rule, "select() changed ctx.pool_idx or ctx.candidate_idx.")
        if snapshot[2] is not None and not np.array_equal(ctx.embeddings, snapshot[2]):
            c.fail(rule, "select() changed ctx.embeddings in place; copy before modifying.")
        for key, before in snapshot[3].items():
            if not np.array_equal(ctx.scores[key], before):
                c.fail(rule, f"select() changed ctx.scores[{key!r}] in place; copy before modifying.")

        rule = f"deterministic for the same rng seed [{scenario}]"
        again = c.run(rule, _fresh_context(ctx, seed), k)[1]
        if out != again:
            c.fail(rule, f"two contexts with rng seed {seed} gave different picks (or radii): "
                         f"{out.indices[:8].tolist()} vs {again.indices[:8].tolist()}. Draw randomness only "
                         f"from ctx.rng.")
        reuse = factory()
        first_call = c.run(rule, _fresh_context(ctx, seed), k, sampler=reuse)[1]
        second_call = c.run(rule, _fresh_context(ctx, seed), k, sampler=reuse)[1]
        if first_call != second_call:
            c.fail(rule, "calling select() twice on the same sampler object with equally seeded contexts "
                         "gave different picks; a sampler must not carry state that changes its picks.")

        m = len(ctx.candidate_idx)
        rule = f"k = number of candidates returns every candidate [{scenario}]"
        whole = c.check_output(rule, ctx, m, c.run(rule, _fresh_context(ctx, seed), m))
        if not np.array_equal(np.sort(whole.indices), np.sort(ctx.candidate_idx)):
            c.fail(rule, "the result is not the whole candidate set.")

        rule = f"k = 0 returns an empty int64 array [{scenario}]"
        c.check_output(rule, ctx, 0, c.run(rule, _fresh_context(ctx, seed), 0))

        rule = f"k > number of candidates raises PoolExhaustedError [{scenario}]"
        try:
            _run_sampler_with_output(factory(), _fresh_context(ctx, seed), m + 1)
        except PoolExhaustedError:
            pass
        except Exception as exc:  # noqa: BLE001 - any other error is the failure being reported
            c.fail(rule, f"asked for {m + 1} of {m} candidates, got {type(exc).__name__}: {exc}. Validate k "
                         f"with diverseevol.samplers.check_k(k, len(ctx.candidate_idx)) at the start of select().")
        else:
            c.fail(rule, f"asked for {m + 1} of {m} candidates and no error was raised. Validate k with "
                         f"diverseevol.samplers.check_k(k, len(ctx.candidate_idx)) at the start of select().")

    rule = "uses only ctx.rng (global random state unchanged)"
    np_after = np.random.get_state()
    if not (np_state[0] == np_after[0] and np.array_equal(np_state[1], np_after[1]) and np_state[2:] == np_after[2:]):
        c.fail(rule, "the global numpy.random state changed; use ctx.rng instead of np.random.*.")
    if _pyrandom.getstate() != py_state:
        c.fail(rule, "the global `random` module state changed; use ctx.rng instead.")

