"""Embedding transforms applied before selection: normalize, center, whiten, project.

A transform is fitted once on the candidates' embeddings and then applied to every row the
selection looks at. Fitting and applying both read the input in row blocks, so a memory-mapped
(N, d) array is never loaded whole and never copied to float64: only one block at a time is
converted, and the output is float32 (written into ``out=``, e.g. a ``np.lib.format.open_memmap``
array, when even an (N, d_out) float32 result is too large to hold in memory).

The API follows scikit-learn: ``fit(emb, rows=None)``, ``transform(emb, rows=None)``,
``fit_transform``; fitted attributes end with ``_``. Transforms compose with :class:`Pipeline`
or with a spec string for :func:`make_transform`::

    make_transform("whiten")                       # center, PCA-whiten, L2-normalise
    make_transform("center+normalize")             # a Pipeline of two steps
    make_transform("project:dim=256,kind=rademacher", random_state=0)
    make_transform("whiten:dim=128,normalize=false")

Why: on raw mean-pooled sentence embeddings, Euclidean K-Center is drawn to long-norm outliers
(see ``docs/selection_quality.md``); L2-normalising, or whitening then normalising, removes that
bias while the K-Center kernel stays exact on the transformed vectors.

Importing this module needs numpy only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from ._validation import (
    Interval,
    RandomState,
    check_embeddings,
    check_index_array,
    check_random_state,
    check_scalar,
)
from .errors import NonFiniteEmbeddingError, ValidationError

__all__ = [
    "Center",
    "EmbeddingTransform",
    "Normalize",
    "Pipeline",
    "RandomProjection",
    "Whiten",
    "fit_transform_rows",
    "make_transform",
]

_DEFAULT_BLOCK_ROWS = 16384


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _check_block_rows(block_rows: Any) -> int:
    return check_scalar(block_rows, "block_rows", int, min_val=1)  # type: ignore[no-any-return]


def _check_dim(dim: Any, *, name: str = "dim", allow_none: bool = True) -> int | None:
    fix = "None keeps every dimension." if allow_none else ""
    return check_scalar(dim, name, int, min_val=1, allow_none=allow_none, fix=fix)  # type: ignore[no-any-return]


def _rows_or_none(rows: Any, n: int, name: str = "rows") -> np.ndarray | None:
    if rows is None:
        return None
    return check_index_array(rows, n, name=name, allow_empty=False)


def _iter_blocks(emb: np.ndarray, rows: np.ndarray | None, block_rows: int) -> Iterator[np.ndarray]:
    """Yield float64 copies of consecutive row blocks of ``emb`` (or of ``emb[rows]``), finite-checked."""
    n = emb.shape[0] if rows is None else rows.shape[0]
    for start in range(0, n, block_rows):
        if rows is None:
            block = emb[start : start + block_rows]
            absolute = None
        else:
            absolute = rows[start : start + block_rows]
            block = emb[absolute]
        x = np.array(block, dtype=np.float64)
        finite = np.isfinite(x)
        if not finite.all():
            bad = int(np.flatnonzero(~finite.all(axis=1))[0])
            row = start + bad if absolute is None else int(absolute[bad])
            raise NonFiniteEmbeddingError(
                f"emb must be finite; row {row} contains NaN or Inf. Check the embedder (e.g. fp16 "
                f"overflow) or leave that record out of the rows to transform."
            )
        yield x


def _exponent_above(x: np.ndarray) -> int:
    """The smallest e with ``|x| < 2**e`` for every entry of ``x`` (0 for an all-zero block)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return int(np.frexp(peak)[1]) if peak > 0 else 0


def _l2_normalize_inplace(x: np.ndarray) -> np.ndarray:
    # Each row is first scaled by the power of two above its largest |value| (exact, so rows of
    # ordinary size give the same bits as without it): the squared norm of a row near 1e200
    # overflows float64 and that of a row near 1e-200 underflows to zero.
    peaks = np.max(np.abs(x), axis=1) if x.shape[1] else np.zeros(len(x))
    np.ldexp(x, -np.frexp(peaks)[1][:, None], out=x)  # an all-zero row has exponent 0 and stays zero
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    norms[norms == 0] = 1.0
    x /= norms[:, None]
    return x


def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    if low in ("none", "null"):
        return None
    try:
        return int(low)
    except ValueError:
        pass
    try:
        return float(low)
    except ValueError:
        return text.strip()


# --------------------------------------------------------------------------------------------
# base class
# --------------------------------------------------------------------------------------------
class EmbeddingTransform:
    """Base class: blockwise ``fit`` / ``transform`` over an (N, d) array, float32 output.

    Subclasses implement ``_fit_blocks(blocks, d)`` (``blocks`` is a zero-argument callable
    returning a fresh iterator of float64 row blocks, so a fit may take several passes) and
    ``_apply(x)`` (float64 block in, float64 block out), and set ``n_features_out_``.

    Parameters
    ----------
    block_rows : int, default 16384
        Rows read and converted to float64 at once; memory is O(block_rows * d) plus the
        transform's own state (at most d x d).
    """

    #: The spec name used by :func:`make_transform`.
    name: ClassVar[str] = ""

    def __init__(self, *, block_rows: int = _DEFAULT_BLOCK_ROWS) -> None:
        self.block_rows = _check_block_rows(block_rows)

    # -- parameters ---------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor parameters (for configs, run records and :meth:`clone`)."""
        import inspect

        params = {}
        for p in inspect.signature(type(self).__init__).parameters.values():
            if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            params[p.name] = getattr(self, p.name)
        return params

    def clone(self) -> EmbeddingTransform:
        """Return an unfitted copy with the same parameters."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting ------------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has run."""
        return hasattr(self, "n_features_in_")

    def fit(self, emb: Any, rows: Any = None) -> EmbeddingTransform:
        """Fit the transform on ``emb[rows]`` (all rows when ``rows`` is None).

        Parameters
        ----------
        emb : array-like of shape (N, d)
            Embeddings of Z; ``np.memmap`` is read block by block.
        rows : array-like of int, shape (m,), optional
            Absolute row indices into ``emb`` to fit on, typically the candidates
            (``candidate_idx``). All rows when None.

        Returns
        -------
        self
        """
        arr = check_embeddings(emb)
        sel = _rows_or_none(rows, arr.shape[0])
        self._fit_blocks(lambda: _iter_blocks(arr, sel, self.block_rows), arr.shape[1])
        self.n_features_in_ = int(arr.shape[1])
        return self

    def _fit_blocks(self, blocks: Any, d: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_fitted(self, d: int) -> None:
        if not self.is_fitted:
            raise ValidationError(
                f"This {type(self).__name__} is not fitted yet; call fit(emb, rows=candidate_idx) "
                f"before transform, or use fit_transform."
            )
        if d != self.n_features_in_:
            raise ValidationError(
                f"{type(self).__name__} was fitted on {self.n_features_in_}-dimensional embeddings; "
                f"got {d} columns. Fit it again on these embeddings."
            )

    # -- applying -----------------------------------------------------------------------------
    def transform(self, emb: Any, rows: Any = None, *, out: np.ndarray | None = None) -> np.ndarray:
        """Apply the fitted transform to ``emb[rows]`` block by block.

        Parameters
        ----------
        emb : array-like of shape (N, d)
            Embeddings; ``np.memmap`` is read block by block.
        rows : array-like of int, shape (m,), optional
            Absolute row indices into ``emb``; all N rows when None. Output row ``i`` is the
            transform of ``emb[rows[i]]``.
        out : ndarray of float32, shape (m, d_out), optional
            Where to write the result (e.g. a memmap from ``np.lib.format.open_memmap``).

        Returns
        -------
        ndarray of float32, shape (m, d_out)
            ``m = len(rows)`` (or N); ``d_out = self.n_features_out_``.
        """
        arr = check_embeddings(emb)
        self._check_fitted(arr.shape[1])
        sel = _rows_or_none(rows, arr.shape[0])
        m = arr.shape[0] if sel is None else sel.shape[0]
        shape = (m, self.n_features_out_)
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        elif out.shape != shape or out.dtype != np.float32:
            raise ValidationError(
                f"out must be a float32 array of shape {shape}; got {out.dtype} {out.shape}."
            )
        start = 0
        for x in _iter_blocks(arr, sel, self.block_rows):
            out[start : start + len(x)] = self._apply(x)
            start += len(x)
        return out

    def fit_transform(self, emb: Any, rows: Any = None, *, out: np.ndarray | None = None) -> np.ndarray:
        """``fit(emb, rows)`` then ``transform(emb, rows)``; see both."""
        return self.fit(emb, rows).transform(emb, rows, out=out)


# --------------------------------------------------------------------------------------------
# the transforms
# --------------------------------------------------------------------------------------------
class Normalize(EmbeddingTransform):
    """Scale every row to unit L2 norm (an all-zero row stays zero).

    Euclidean distance on the result is a monotone function of cosine distance, so Euclidean
    K-Center on normalised rows picks like cosine K-Center. Stateless: ``fit`` only records d.
    """

    name = "normalize"

    def _fit_blocks(self, blocks: Any, d: int) -> None:
        self.n_features_out_ = d

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return _l2_normalize_inplace(x)


class Center(EmbeddingTransform):
    """Subtract the mean of the fitted rows.

    Attributes
    ----------
    mean_ : ndarray of float64, shape (d,)
    """

    name = "center"

    def _fit_blocks(self, blocks: Any, d: int) -> None:
        total = np.zeros(d, dtype=np.float64)
        count = 0
        for x in blocks():
            total += x.sum(axis=0)
            count += len(x)
        self.mean_ = total / count
        self.n_features_out_ = d

    def _apply(self, x: np.ndarray) -> np.ndarray:
        x -= self.mean_
        return x


class Whiten(EmbeddingTransform):
    """Center, PCA-whiten, optionally cut to ``dim`` components, then (by default) L2-normalise.

    With covariance C = V diag(λ) Vᵀ of the fitted rows (λ sorted descending), a row x maps to
    ``(x - mean) V_r diag(λ_r)^(-1/2)`` over the r kept components, then to unit norm when
    ``normalize=True``. Before normalisation the fitted rows have identity covariance on the
    kept components.

    Parameters
    ----------
    dim : int, optional
        Keep at most this many leading components (also a speed lever: K-Center then works in
        ``dim`` dimensions). None keeps every component above the floor.
    eig_floor : float, default 1e-5
        Components whose eigenvalue is below ``eig_floor * λ_max`` are dropped: dividing by
        the square root of a near-zero eigenvalue would blow rounding noise (float32 inputs
        carry ~1e-7 relative error, i.e. ~1e-14 relative variance) and exactly-degenerate
        directions (rank-deficient data, duplicates) up to unit variance. 1e-5 keeps directions
        down to 1/316 of the leading standard deviation.
    normalize : bool, default True
        L2-normalise after whitening (the variant that held up on real data: whitening alone
        keeps the norm bias of Euclidean K-Center).
    block_rows : int, default 16384

    Attributes
    ----------
    mean_ : ndarray of float64, shape (d,)
    components_ : ndarray of float64, shape (d, r)
        The kept eigenvectors, one per column, leading first.
    explained_variance_ : ndarray of float64, shape (r,)
        Their eigenvalues (covariance with 1/m normalisation), in the input's units: ``inf`` (or
        0) where that variance is beyond float64, for rows near 1e160 (or 1e-160). The fit
        itself works in rescaled units, so whitening holds from about 1e-300 to 1e308.
    n_features_out_ : int
        r, the number of kept components.
    """

    name = "whiten"

    def __init__(
        self,
        dim: int | None = None,
        *,
        eig_floor: float = 1e-5,
        normalize: bool = True,
        block_rows: int = _DEFAULT_BLOCK_ROWS,
    ) -> None:
        super().__init__(block_rows=block_rows)
        self.dim = _check_dim(dim)
        self.eig_floor = check_scalar(
            eig_floor, "eig_floor", Interval(float, 0, 1, closed="left"), what="relative to the largest eigenvalue"
        )
        self.normalize = bool(normalize)

    def _fit_blocks(self, blocks: Any, d: int) -> None:
        # One pass: sums around a shift (the first block's mean) for a numerically stable covariance,
        # kept in units of 2**exp, the largest |value| seen rounded up to a power of two (exact
        # scaling), so rows near 1e300 do not overflow the scatter matrix and rows near 1e-300 do
        # not underflow it. A block with larger values rescales the sums so far.
        exp: int | None = None
        shift = np.zeros(d, dtype=np.float64)
        total = np.zeros(d, dtype=np.float64)
        scatter = np.zeros((d, d), dtype=np.float64)
        count = 0
        for x in blocks():
            block_exp = _exponent_above(x)
            if exp is None:
                exp = block_exp
            elif block_exp > exp:
                ratio = float(np.ldexp(1.0, exp - block_exp))
                shift *= ratio
                total *= ratio
                scatter *= ratio * ratio
                exp = block_exp
            np.ldexp(x, -exp, out=x)
            if count == 0:
                shift = x.mean(axis=0)
            x -= shift
            total += x.sum(axis=0)
            scatter += x.T @ x
            count += len(x)
        if count < 2 or exp is None:
            raise ValidationError(f"Whiten needs at least 2 rows to estimate a covariance; got {count}.")
        mean_shifted = total / count
        cov = scatter / count - np.outer(mean_shifted, mean_shifted)
        cov = (cov + cov.T) / 2
        eigval, eigvec = np.linalg.eigh(cov)
        order = np.argsort(eigval)[::-1]
        eigval, eigvec = eigval[order], eigvec[:, order]
        top = float(eigval[0])
        # In these units every value is at most 1 in magnitude: a variance below the square of a
        # few rounding errors is identical rows up to the rounding of their mean.
        if top <= (4 * np.finfo(np.float64).eps) ** 2:
            raise ValidationError(
                "Whiten cannot be fitted: the fitted rows are all identical (zero covariance). "
                "Fit it on rows that differ, or use 'normalize' instead of 'whiten'."
            )
        keep = int(np.count_nonzero(eigval > self.eig_floor * top))
        if self.dim is not None:
            keep = min(keep, self.dim)
        # Sign convention: the largest-magnitude entry of each component is positive (deterministic output).
        comps = eigvec[:, :keep]
        signs = np.sign(comps[np.argmax(np.abs(comps), axis=0), np.arange(keep)])
        signs[signs == 0] = 1.0
        self._exp = exp
        self._mean_scaled = shift + mean_shifted
        self.mean_ = np.ldexp(self._mean_scaled, exp)
        self.components_ = comps * signs
        with np.errstate(over="ignore", under="ignore"):
            self.explained_variance_ = np.ldexp(eigval[:keep], 2 * exp)
        self._projection = self.components_ / np.sqrt(eigval[:keep])
        self.n_features_out_ = keep

    def _apply(self, x: np.ndarray) -> np.ndarray:
        y = (np.ldexp(x, -self._exp) - self._mean_scaled) @ self._projection
        return _l2_normalize_inplace(y) if self.normalize else y


class RandomProjection(EmbeddingTransform):
    """Seeded random projection to ``dim`` dimensions (Johnson-Lindenstrauss).

    ``x -> x R`` with R of shape (d, dim) drawn once at ``fit`` from ``random_state``:
    Gaussian entries N(0, 1/dim), or Rademacher entries ±1/sqrt(dim). Squared distances are
    preserved in expectation, and within a factor (1 ± ε) for all pairs of m points with high
    probability once dim ≳ 8 ln(m) / ε². A speed lever for d = 4,096: K-Center cost is linear
    in d.

    Parameters
    ----------
    dim : int
        Output dimension.
    kind : {"gaussian", "rademacher"}, default "gaussian"
    random_state : None, int or numpy Generator, optional
        Seeds R. The same seed gives the same R (and the same output) on every machine.
    block_rows : int, default 16384

    Attributes
    ----------
    components_ : ndarray of float32, shape (d, dim)
        The projection matrix R.
    """

    name = "project"
    _KINDS = ("gaussian", "rademacher")

    def __init__(
        self,
        dim: int = 256,
        *,
        kind: str = "gaussian",
        random_state: RandomState = None,
        block_rows: int = _DEFAULT_BLOCK_ROWS,
    ) -> None:
        super().__init__(block_rows=block_rows)
        self.dim = _check_dim(dim, allow_none=False)
        if kind not in self._KINDS:
            raise ValidationError(f"kind must be one of {list(self._KINDS)}; got {kind!r}.")
        self.kind = kind
        self.random_state = random_state

    def _fit_blocks(self, blocks: Any, d: int) -> None:
        rng = check_random_state(self.random_state)
        if self.kind == "gaussian":
            r = rng.standard_normal((d, self.dim)) / np.sqrt(self.dim)
        else:
            r = (rng.integers(0, 2, size=(d, self.dim)) * 2 - 1) / np.sqrt(self.dim)
        self.components_ = r.astype(np.float32)
        self.n_features_out_ = self.dim

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return x @ self.components_.astype(np.float64)


class Pipeline(EmbeddingTransform):
    """Apply transforms in sequence; each step is fitted on the output of the previous ones.

    Parameters
    ----------
    steps : sequence of EmbeddingTransform
        Applied left to right. Fitting takes one pass over the rows per step that has state
        (center, whiten), each pass streaming the rows through the steps already fitted.
    block_rows : int, default 16384
    """

    name = "pipeline"

    def __init__(self, steps: Sequence[EmbeddingTransform], *, block_rows: int = _DEFAULT_BLOCK_ROWS) -> None:
        super().__init__(block_rows=block_rows)
        steps = list(steps)
        for step in steps:
            if not isinstance(step, EmbeddingTransform):
                raise ValidationError(
                    f"Pipeline steps must be EmbeddingTransform objects; got {step!r}. Build them with "
                    f'make_transform("center"), Whiten(dim=128), ...'
                )
        self.steps = steps

    def get_params(self) -> dict[str, Any]:
        return {"steps": [s.clone() for s in self.steps], "block_rows": self.block_rows}

    def __repr__(self) -> str:
        return f"Pipeline({self.steps!r})"

    def _fit_blocks(self, blocks: Any, d: int) -> None:
        dim = d
        for i, step in enumerate(self.steps):
            done = self.steps[:i]

            def through(done: list[EmbeddingTransform] = done) -> Iterator[np.ndarray]:
                for x in blocks():
                    for s in done:
                        x = s._apply(x)
                    yield x

            step._fit_blocks(through, dim)
            step.n_features_in_ = dim
            dim = step.n_features_out_
        self.n_features_out_ = dim

    def _apply(self, x: np.ndarray) -> np.ndarray:
        for step in self.steps:
            x = step._apply(x)
        return x


# --------------------------------------------------------------------------------------------
# construction from specs
# --------------------------------------------------------------------------------------------
_BY_NAME: dict[str, type[EmbeddingTransform]] = {
    cls.name: cls for cls in (Normalize, Center, Whiten, RandomProjection)
}
_ALIASES = {"l2": "normalize", "projection": "project", "random_projection": "project"}


def _from_spec_string(spec: str, random_state: RandomState) -> list[EmbeddingTransform]:
    steps: list[EmbeddingTransform] = []
    for part in spec.split("+"):
        part = part.strip()
        if not part:
            raise ValidationError(f"Empty step in transform spec {spec!r}; write e.g. 'center+normalize'.")
        name, _, arg_text = part.partition(":")
        name = _ALIASES.get(name.strip().lower(), name.strip().lower())
        if name in ("none", "identity"):
            continue
        cls = _BY_NAME.get(name)
        if cls is None:
            raise ValidationError(
                f"Unknown transform {name!r} in spec {spec!r}; known: {sorted(_BY_NAME)} "
                f"(combine with '+', parameters after ':', e.g. 'whiten:dim=128')."
            )
        kwargs: dict[str, Any] = {}
        for item in filter(None, (a.strip() for a in arg_text.split(","))):
            key, eq, value = item.partition("=")
            if not eq:
                raise ValidationError(f"Transform parameter {item!r} in {spec!r} must be written key=value.")
            kwargs[key.strip()] = _parse_value(value)
        if cls is RandomProjection and "random_state" not in kwargs:
            kwargs["random_state"] = random_state
        try:
            steps.append(cls(**kwargs))
        except TypeError as exc:
            raise ValidationError(f"Bad parameters for transform {name!r} in {spec!r}: {exc}.") from exc
    return steps


def make_transform(spec: Any, *, random_state: RandomState = None) -> EmbeddingTransform | None:
    """Build an unfitted transform from a spec.

    Parameters
    ----------
    spec : None, str, EmbeddingTransform or sequence of these
        ``None``, ``"none"`` or ``""``: no transform (returns None). A string: step names joined
        by ``+``, each with optional ``:key=value,...`` parameters, e.g. ``"normalize"``,
        ``"center+normalize"``, ``"whiten:dim=128"``, ``"project:dim=256,kind=rademacher"``.
        A transform object: an unfitted clone of it. A sequence: a :class:`Pipeline` of its
        items.
    random_state : None, int or numpy Generator, optional
        Seed for ``project`` steps given without their own ``random_state`` (a sampler passes
        ``ctx.rng`` here).

    Returns
    -------
    EmbeddingTransform or None
        A single transform for a one-step spec, a :class:`Pipeline` otherwise.

    Examples
    --------
    >>> from diverseevol.transforms import make_transform
    >>> make_transform("center+normalize")
    Pipeline([Center(block_rows=16384), Normalize(block_rows=16384)])
    >>> make_transform("whiten:dim=64")
    Whiten(dim=64, eig_floor=1e-05, normalize=True, block_rows=16384)
    """
    if spec is None:
        return None
    if isinstance(spec, EmbeddingTransform):
        return spec.clone()
    if isinstance(spec, str):
        if spec.strip().lower() in ("", "none", "identity"):
            return None
        steps = _from_spec_string(spec, random_state)
    elif isinstance(spec, Sequence):
        steps = []
        for item in spec:
            built = make_transform(item, random_state=random_state)
            if isinstance(built, Pipeline):
                steps.extend(built.steps)
            elif built is not None:
                steps.append(built)
    else:
        raise ValidationError(
            f"transform must be None, a spec string such as 'whiten' or 'center+normalize', an "
            f"EmbeddingTransform, or a list of these; got {spec!r} of type {type(spec).__name__}."
        )
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else Pipeline(steps)


def fit_transform_rows(
    transform: Any,
    emb: Any,
    fit_rows: Any,
    apply_rows: Any,
    *,
    random_state: RandomState = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Fit a transform on ``emb[fit_rows]`` and return an (N, d_out) array with ``apply_rows`` filled.

    The helper a sampler uses so that a selection kernel can keep working with absolute row
    indices into Z: rows outside ``apply_rows`` are left at zero and must not be used.

    Parameters
    ----------
    transform : spec accepted by :func:`make_transform`
        Must not be None.
    emb : array-like of shape (N, d)
    fit_rows : array-like of int, shape (m,)
        Absolute row indices into Z to fit on (the candidates).
    apply_rows : array-like of int, shape (p,)
        Absolute row indices into Z to transform (pool and candidates).
    random_state : None, int or numpy Generator, optional
        See :func:`make_transform`.
    out : ndarray of float32, shape (N, d_out), optional
        Where to write (e.g. a memmap); zero-initialised here only when allocated here.

    Returns
    -------
    ndarray of float32, shape (N, d_out)
        Row ``i`` is the transformed ``emb[i]`` for ``i`` in ``apply_rows``, zeros elsewhere.
    """
    built = make_transform(transform, random_state=random_state)
    if built is None:
        raise ValidationError("fit_transform_rows needs a transform; got None.")
    arr = check_embeddings(emb)
    built.fit(arr, fit_rows)
    rows = check_index_array(apply_rows, arr.shape[0], name="apply_rows")
    shape = (arr.shape[0], built.n_features_out_)
    if out is None:
        out = np.zeros(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32:
        raise ValidationError(f"out must be a float32 array of shape {shape}; got {out.dtype} {out.shape}.")
    for start in range(0, rows.size, built.block_rows):
        part = np.sort(rows[start : start + built.block_rows])
        out[part] = built.transform(arr, part)
    return out
