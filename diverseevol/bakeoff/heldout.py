"""The bake-off's held-out records: split off the input, or read from their own file.

Index spaces: ``heldout_idx`` and ``train_idx`` hold row indices into the *input* records (as
loaded); the loops run on ``train_idx``'s records only, so a held-out record can never be
selected, and their pools are row indices into that training view.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ValidationError
from .._validation import check_scalar

__all__ = ["HeldoutSpec", "HeldoutSplit", "split_heldout"]


@dataclass(frozen=True)
class HeldoutSpec:
    """Where the held-out records come from.

    Attributes
    ----------
    label_field : str, optional
        Split off ``per_label`` records of every value of this field (e.g. Dolly's ``category``).
    per_label : int, optional
        Records held out per label (with ``label_field``).
    path : str or Path, optional
        A separate file of held-out records (anything ``load_instructions`` reads); then nothing
        is split off the input. ``label_field`` still labels them when given.
    seed : int, default 0
        Draws which records of a label are held out; fixed across the bake-off's seeds so every
        seed is judged on the same records.
    """

    label_field: str | None = None
    per_label: int | None = None
    path: str | Path | None = None
    seed: int = 0

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str = "bakeoff.heldout") -> HeldoutSpec:
        """Build from a config mapping, refusing unknown keys and wrong types with the key's path."""
        allowed = {"label_field", "per_label", "path", "seed"}
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise ValidationError(f"{where}: unknown key {unknown[0]!r}; expected some of {sorted(allowed)}.")
        spec = cls(**dict(raw))
        spec.check(where)
        return spec

    def check(self, where: str = "heldout") -> None:
        if self.path is None and (self.label_field is None or self.per_label is None):
            raise ValidationError(
                f"{where} needs either `path` (a file of held-out records) or `label_field` with `per_label` "
                f"(e.g. {{label_field: category, per_label: 20}}); got {self.__dict__}."
            )
        if self.label_field is not None and (not isinstance(self.label_field, str) or not self.label_field):
            raise ValidationError(f"{where}.label_field must be a field name such as 'category'; got {self.label_field!r}.")
        if self.path is None:
            check_scalar(self.per_label, f"{where}.per_label", int, min_val=1)
        check_scalar(self.seed, f"{where}.seed", int, min_val=0)


@dataclass(frozen=True)
class HeldoutSplit:
    """The result of :func:`split_heldout`.

    Attributes
    ----------
    train_idx : ndarray of int64, shape (N_train,)
        Input rows the loops may select from, ascending.
    heldout_idx : ndarray of int64, shape (N_heldout,)
        Input rows held out (empty when the held-out records come from ``path``).
    heldout_records : list of InstructionRecord
    heldout_labels : list of str
        One per held-out record (``"all"`` when there is no label field).
    """

    train_idx: np.ndarray
    heldout_idx: np.ndarray
    heldout_records: list[Any]
    heldout_labels: list[str]


def split_heldout(records: Sequence[Any], spec: HeldoutSpec, *, base_dir: Path | None = None) -> HeldoutSplit:
    """Split ``records`` (the input Z) into selectable rows and held-out records.

    Parameters
    ----------
    records : sequence of InstructionRecord, length N
    spec : HeldoutSpec
    base_dir : Path, optional
        Resolves a relative ``spec.path`` (the config file's folder).

    Raises
    ------
    ValidationError
        When a label has fewer than ``per_label + 1`` records (nothing of it would be left to
        select), or a record lacks the label field.
    """
    from ..samplers.record_signals import record_labels

    spec.check()
    n = len(records)
    if spec.path is not None:
        from ..data import load_instructions

        path = Path(spec.path)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        held = list(load_instructions(path))
        labels = ([str(x) for x in record_labels(held, spec.label_field)] if spec.label_field
                  else ["all"] * len(held))
        return HeldoutSplit(np.arange(n, dtype=np.int64), np.zeros(0, dtype=np.int64), held, labels)
    labels_all = [str(x) for x in record_labels(records, spec.label_field)]
    by_label: dict[str, list[int]] = {}
    for i, lab in enumerate(labels_all):
        by_label.setdefault(lab, []).append(i)
    per = int(spec.per_label)
    small = sorted((lab, len(rows)) for lab, rows in by_label.items() if len(rows) <= per)
    if small:
        lab, size = small[0]
        raise ValidationError(
            f"bakeoff.heldout.per_label = {per} holds out every record of label {lab!r} ({size} records"
            f"{', and ' + str(len(small) - 1) + ' more labels' if len(small) > 1 else ''}); lower per_label below "
            f"the smallest label's size ({min(s for _, s in small)}), or drop that label from the data."
        )
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(7,)))
    held: list[int] = []
    for lab in sorted(by_label):
        rows = np.asarray(by_label[lab], dtype=np.int64)
        held.extend(int(i) for i in np.sort(rng.choice(rows, size=per, replace=False)))
    heldout_idx = np.asarray(held, dtype=np.int64)
    keep = np.ones(n, dtype=bool)
    keep[heldout_idx] = False
    return HeldoutSplit(
        np.flatnonzero(keep).astype(np.int64), heldout_idx,
        [records[i] for i in held], [labels_all[i] for i in held],
    )
