"""Write, register and check a custom sampler, then use it like a built-in one.

Run: python examples/custom_sampler.py   (numpy only, about a second)

The sampler below picks the candidates least similar to the training pool's mean direction
(cosine), a cheap one-shot alternative to K-Center. A plugin package would put the class in its
own module and declare it in its pyproject.toml:

    [project.entry-points."diverseevol.samplers"]
    centroid_novelty = "my_package.samplers:CentroidNoveltySampler"
"""

from __future__ import annotations

import numpy as np

from diverseevol import SelectionContext, get_sampler, list_samplers, register_sampler, vendi_score
from diverseevol.samplers import Requirements, Selection, check_k, requirements_of, run_sampler
from diverseevol.testing import check_sampler


@register_sampler("centroid_novelty")
class CentroidNoveltySampler:
    """Pick the k candidates whose embedding has the lowest cosine similarity to the pool's mean
    direction (the mean of the candidates' directions when the pool is empty).

    Requires the embeddings. Deterministic; ties go to the lowest index. Returns a plain index
    array: only samplers that know a covering radius per pick (like ``kcenter``) return a
    :class:`~diverseevol.samplers.Selection`.
    """

    requires = Requirements(embeddings=True)

    def __init__(self, eps: float = 1e-12) -> None:
        self.eps = eps  # hyperparameters only: everything else comes from the context

    def select(self, ctx: SelectionContext, k: int) -> np.ndarray:
        cand = np.sort(ctx.candidate_idx)  # sorted + stable sort below = ties to the lowest index
        k = check_k(k, cand.size)  # the built-in samplers' rule: PoolExhaustedError if k > candidates
        if k == 0:
            return np.empty(0, dtype=np.int64)
        x = np.asarray(ctx.embeddings[cand], dtype=np.float64)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), self.eps)
        ref_rows = ctx.pool_idx if ctx.pool_idx.size else cand
        ref = np.asarray(ctx.embeddings[ref_rows], dtype=np.float64)
        ref /= np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), self.eps)
        similarity = x @ ref.mean(axis=0)
        return cand[np.argsort(similarity, kind="stable")[:k]].astype(np.int64)


def main() -> None:
    # 1. The contract check plugin authors run in their own test suite (raises AssertionError).
    check_sampler(CentroidNoveltySampler)
    print("contract check passed for 'centroid_novelty'")
    print("available samplers:", list_samplers())
    print("it requires:", requirements_of(CentroidNoveltySampler()))

    # 2. Use it exactly like a built-in one, next to random and kcenter.
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=3.0, size=(12, 32))
    weights = rng.dirichlet(np.full(12, 0.3))  # skewed cluster sizes, as in real instruction data
    labels = rng.choice(12, size=5000, p=weights)
    emb = (centers[labels] + rng.normal(size=(5000, 32))).astype(np.float32)
    pool = rng.choice(5000, size=50, replace=False)
    candidates = np.setdiff1d(np.arange(5000), pool)

    print(f"\n{'sampler':<18} {'Vendi (q=1)':>11} {'clusters covered':>17} {'last radius':>12}")
    for name, params in [("random", {}), ("kcenter", {"metric": "cosine"}), ("centroid_novelty", {})]:
        ctx = SelectionContext(pool_idx=pool, candidate_idx=candidates, rng=np.random.default_rng(1), embeddings=emb)
        selection: Selection = run_sampler(get_sampler(name, **params), ctx, 150)  # how the loop runs samplers
        chosen = np.concatenate([pool, selection.indices])
        radius = "-" if selection.radii is None else f"{selection.radii[-1]:.3f}"  # kcenter reports radii
        print(f"{name:<18} {vendi_score(emb[chosen]):>11.2f} {len(np.unique(labels[chosen])):>14d}/12 {radius:>12}")


if __name__ == "__main__":
    main()
