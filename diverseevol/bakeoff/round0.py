"""Round 0 of one seed, paid once for every recipe of a bake-off.

Every recipe of a seed starts from the same P_0 (drawn from the seed alone), so M_0, its
embeddings and scores of Z and its judge metrics are the same for all of them.
:class:`SharedRound0` wraps the loop's callables so that round 0 is computed the first time a
recipe asks for it and read back from ``DIR/seed_<s>/round0/`` by every other recipe (and by a
rerun). Other rounds go straight to the wrapped callables.

The loop receives a placeholder, :class:`Round0Model`, as M_0; the real model is trained (or
loaded, when the trainer has ``load``) only when something not yet cached needs it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._files import read_json, write_json, write_npy
from ..data import data_fingerprint
from ..errors import ValidationError

__all__ = ["Round0Model", "SharedRound0"]


@dataclass(frozen=True)
class Round0Model:
    """Stands for the seed's M_0 in the loops; resolved by :class:`SharedRound0`."""

    directory: Path


class SharedRound0:
    """Round-0 caching wrappers around one seed's trainer, embedder, scorer and judge.

    Parameters
    ----------
    trainer, embedder, scorer, judge : callables
        The loop's parts (embedder, scorer, judge may be None).
    directory : Path
        ``DIR/seed_<s>/round0``: M_0's training output and the cached round-0 signals.

    Attributes
    ----------
    computed : collections.Counter
        How many times each round-0 step actually ran in this process: ``"train"``,
        ``"embed"``, ``"score"``, ``"judge"`` (each at most 1 per seed and process).
    """

    def __init__(self, trainer: Any, embedder: Any, scorer: Any, judge: Any, directory: Path) -> None:
        self.inner_trainer, self.inner_embedder = trainer, embedder
        self.inner_scorer, self.inner_judge = scorer, judge
        self.dir = Path(directory)
        self.computed: Counter[str] = Counter()
        self._model: Any = None
        self._p0_records: list[Any] | None = None

    # -- what the loop receives ------------------------------------------------------------
    def parts(self) -> tuple[Any, Any, Any, Any]:
        """(trainer, embedder, scorer, judge) to hand to the loop; None stays None."""
        trainer = (_LoadingTrainer if callable(getattr(self.inner_trainer, "load", None)) else _Trainer)(self)
        embedder = None
        if self.inner_embedder is not None:
            joint = callable(getattr(self.inner_embedder, "embed_and_score", None))
            embedder = (_JointEmbedder if joint else _Embedder)(self)
        scorer = None
        if self.inner_scorer is not None:
            shares = callable(getattr(self.inner_scorer, "shares_pass_with", None))
            scorer = (_SharingScorer if shares else _Scorer)(self)
        judge = _Judge(self) if self.inner_judge is not None else None
        return trainer, embedder, scorer, judge

    # -- M_0 --------------------------------------------------------------------------------
    def _p0(self, records: Sequence[Any]) -> None:
        fp = data_fingerprint(list(records))
        path = self.dir / "p0.json"
        if path.is_file():
            stored = read_json(path)
            if stored != fp:
                raise ValidationError(
                    f"Round 0 of this seed was trained on another P_0 ({stored}) than this recipe's ({fp}); every "
                    f"recipe of a seed must start from the same initial pool. Start the bake-off in a new folder."
                )
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            write_json(path, fp)
        self._p0_records = list(records)

    def model(self) -> Any:
        """The real M_0: in memory, else loaded, else trained (counted in ``computed["train"]``)."""
        if self._model is not None:
            return self._model
        out_dir = self.dir / "model"
        loader = getattr(self.inner_trainer, "load", None)
        if (self.dir / "trained.json").is_file() and callable(loader):
            self._model = loader(out_dir, 0)
            return self._model
        if self._p0_records is None:
            raise ValidationError("Round 0's model was asked for before the loop trained round 0.")
        out_dir.mkdir(parents=True, exist_ok=True)
        self._model = self.inner_trainer(self._p0_records, 0, out_dir)
        self.computed["train"] += 1
        write_json(self.dir / "trained.json", {"records": len(self._p0_records)})
        return self._model

    # -- cached signals ---------------------------------------------------------------------
    def embeddings(self, records: Sequence[Any]) -> np.ndarray:
        path = self.dir / "embeddings.npy"
        if path.is_file():
            emb = np.load(path)
            if emb.shape[0] == len(records):
                return emb
        emb = np.asarray(self.inner_embedder(self.model(), records))
        self.computed["embed"] += 1
        write_npy(path, emb)
        return emb

    def scores(self, records: Sequence[Any]) -> dict[str, np.ndarray]:
        cached = self._read_scores(len(records))
        if cached is not None:
            return cached
        scores = {str(k): np.asarray(v) for k, v in self.inner_scorer(self.model(), records).items()}
        self.computed["score"] += 1
        self._write_scores(scores)
        return scores

    def embed_and_score(self, records: Sequence[Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        emb_path = self.dir / "embeddings.npy"
        scores = self._read_scores(len(records))
        if emb_path.is_file() and scores is not None:
            return self.embeddings(records), scores
        emb, scores = self.inner_embedder.embed_and_score(self.model(), records)
        emb = np.asarray(emb)
        scores = {str(k): np.asarray(v) for k, v in scores.items()}
        self.computed["embed"] += 1
        self.computed["score"] += 1
        write_npy(emb_path, emb)
        self._write_scores(scores)
        return emb, scores

    def judged(self) -> dict[str, Any]:
        path = self.dir / "judge.json"
        if path.is_file():
            return dict(read_json(path))
        write_json(path, dict(self.inner_judge(self.model(), 0)))
        self.computed["judge"] += 1
        return dict(read_json(path))

    def _read_scores(self, n: int) -> dict[str, np.ndarray] | None:
        names_path = self.dir / "scores.json"
        if not names_path.is_file():
            return None
        out = {}
        for name in read_json(names_path)["names"]:
            arr = np.load(self.dir / f"score_{name}.npy")
            if arr.shape[0] != n:
                return None
            out[name] = arr
        return out

    def _write_scores(self, scores: Mapping[str, np.ndarray]) -> None:
        for name, arr in scores.items():
            write_npy(self.dir / f"score_{name}.npy", arr)
        write_json(self.dir / "scores.json", {"names": sorted(scores)})


class _Part:
    def __init__(self, shared: SharedRound0) -> None:
        self.shared = shared


class _Trainer(_Part):
    def __call__(self, records: Sequence[Any], round: int, out_dir: Path) -> Any:
        if round == 0:
            self.shared._p0(records)
            return Round0Model(self.shared.dir)
        return self.shared.inner_trainer(records, round, out_dir)


class _LoadingTrainer(_Trainer):
    def load(self, out_dir: Path, round: int) -> Any:
        if round == 0:
            return Round0Model(self.shared.dir)
        return self.shared.inner_trainer.load(out_dir, round)


class _Embedder(_Part):
    def __call__(self, model: Any, records: Sequence[Any]) -> Any:
        if isinstance(model, Round0Model):
            return self.shared.embeddings(records)
        return self.shared.inner_embedder(model, records)


class _JointEmbedder(_Embedder):
    def embed_and_score(self, model: Any, records: Sequence[Any]) -> Any:
        if isinstance(model, Round0Model):
            return self.shared.embed_and_score(records)
        return self.shared.inner_embedder.embed_and_score(model, records)


class _Scorer(_Part):
    def __call__(self, model: Any, records: Sequence[Any]) -> Any:
        if isinstance(model, Round0Model):
            return self.shared.scores(records)
        return self.shared.inner_scorer(model, records)


class _SharingScorer(_Scorer):
    def shares_pass_with(self, embedder: Any) -> bool:
        inner = embedder.shared.inner_embedder if isinstance(embedder, _Embedder) else embedder
        return bool(self.shared.inner_scorer.shares_pass_with(inner))


class _Judge(_Part):
    def __call__(self, model: Any, round: int) -> Any:
        if isinstance(model, Round0Model):
            return self.shared.judged()
        return self.shared.inner_judge(model, round)
