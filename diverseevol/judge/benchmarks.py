"""Benchmark question sets and reference answers (Vicuna, Koala, WizardLM, or any JSONL)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataFormatError, ValidationError

__all__ = ["BENCHMARK_FORMATS", "Benchmark", "BenchmarkFormat", "load_answers", "load_benchmark", "read_jsonl"]


@dataclass(frozen=True)
class BenchmarkFormat:
    """Field names of a question file.

    Attributes
    ----------
    question_field : str
        The field holding the question text.
    id_field : str or None
        The field holding the question id; None numbers the questions by line (0, 1, ...).
    category_field : str or None
        An optional field with the question's category (used to group results).
    """

    question_field: str
    id_field: str | None = None
    category_field: str | None = None


#: The formats of the paper's three test sets (DiverseEvol's ``test_data/*.jsonl``).
BENCHMARK_FORMATS: dict[str, BenchmarkFormat] = {
    "vicuna": BenchmarkFormat("text", "question_id", "category"),
    "koala": BenchmarkFormat("prompt", "id", None),
    "wizardlm": BenchmarkFormat("Instruction", "idx", "Skill"),
}


@dataclass(frozen=True)
class Benchmark:
    """A list of questions, optionally with one reference answer per question.

    Attributes
    ----------
    name : str
        Short name, used as the metric prefix (``"vicuna"`` gives ``"vicuna/rs"``).
    ids : tuple of str
        Question ids, unique, in file order (ids are compared as strings).
    questions : tuple of str
        The question texts, aligned with ``ids``.
    references : tuple of str or None
        The reference answers (the paper: ChatGPT's), aligned with ``ids``.
    categories : tuple of str or None
        Per-question category labels, aligned with ``ids``.
    """

    name: str
    ids: tuple[str, ...]
    questions: tuple[str, ...]
    references: tuple[str, ...] | None = None
    categories: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        n = len(self.ids)
        if n == 0:
            raise ValidationError(f"benchmark {self.name!r} has no questions")
        if len(self.questions) != n:
            raise ValidationError(f"benchmark {self.name!r}: {n} ids but {len(self.questions)} questions")
        for what, seq in (("references", self.references), ("categories", self.categories)):
            if seq is not None and len(seq) != n:
                raise ValidationError(f"benchmark {self.name!r}: {n} questions but {len(seq)} {what}")
        if len(set(self.ids)) != n:
            dup = sorted({i for i in self.ids if self.ids.count(i) > 1})
            raise ValidationError(f"benchmark {self.name!r} has duplicate question ids: {dup[:10]}")

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_lists(
        cls,
        name: str,
        questions: Sequence[str],
        references: Sequence[str] | None = None,
        *,
        ids: Sequence[object] | None = None,
        categories: Sequence[str] | None = None,
    ) -> Benchmark:
        """Build a benchmark from in-memory lists (ids default to ``"0"``, ``"1"``, ...)."""
        ids_t = tuple(str(i) for i in (ids if ids is not None else range(len(questions))))
        return cls(
            name=name,
            ids=ids_t,
            questions=tuple(questions),
            references=None if references is None else tuple(references),
            categories=None if categories is None else tuple(categories),
        )

    def with_references(self, references: Sequence[str] | Mapping[object, str]) -> Benchmark:
        """Return a copy with reference answers (a list aligned with the questions, or an id -> answer map)."""
        return Benchmark(self.name, self.ids, self.questions, _align(self, references, "reference answers"), self.categories)


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSON Lines file (one object per non-empty line); errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"benchmark file {str(path)!r} does not exist; pass the path to a .jsonl file")
    rows: list[dict] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(f"{path}:{lineno}: invalid JSON ({exc.msg}); expected one JSON object per line") from exc
            if not isinstance(row, dict):
                raise DataFormatError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    if not rows:
        raise DataFormatError(f"{path} holds no records")
    return rows


def _field(row: dict, name: str, path: Path, lineno: int) -> object:
    if name not in row:
        raise DataFormatError(
            f"{path} record {lineno}: no field {name!r} (fields: {sorted(row)}); pass the right field name "
            "(question_field= / id_field= / answer_field=)"
        )
    return row[name]


def _align(bench: Benchmark, answers: Sequence[str] | Mapping[object, str], what: str) -> tuple[str, ...]:
    if isinstance(answers, Mapping):
        by_id = {str(k): v for k, v in answers.items()}
        missing = [i for i in bench.ids if i not in by_id]
        if missing:
            raise DataFormatError(
                f"{what} lack {len(missing)} of the {len(bench)} question ids of {bench.name!r}: "
                f"{missing[:10]}{' ...' if len(missing) > 10 else ''}"
            )
        out = tuple(by_id[i] for i in bench.ids)
    else:
        out = tuple(answers)
        if len(out) != len(bench):
            raise ValidationError(f"{bench.name!r} has {len(bench)} questions but {len(out)} {what} were given")
    bad = [bench.ids[j] for j, a in enumerate(out) if not isinstance(a, str)]
    if bad:
        raise DataFormatError(f"{what} for ids {bad[:10]} are not strings")
    return out


def load_answers(
    path: str | Path,
    benchmark: Benchmark,
    *,
    answer_field: str = "answer",
    id_field: str | None = None,
) -> tuple[str, ...]:
    """Read one answer per question from a JSONL file, joined to ``benchmark`` by question id.

    Parameters
    ----------
    path : str or Path
        JSONL file, one object per answer (e.g. DiverseEvol's ``gpt35_0624.jsonl``).
    benchmark : Benchmark
        The questions the answers belong to.
    answer_field : str, default "answer"
        Field with the answer text.
    id_field : str, optional
        Field with the question id; defaults to the benchmark format's id field when the
        benchmark name is a known one, else ``"id"``. Extra answers (ids not in the benchmark)
        are ignored; a missing id is a :class:`~diverseevol.errors.DataFormatError`.

    Returns
    -------
    tuple of str
        Answers aligned with ``benchmark.ids``.
    """
    path = Path(path)
    fmt = BENCHMARK_FORMATS.get(benchmark.name)
    id_field = id_field or (fmt.id_field if fmt and fmt.id_field else "id")
    by_id: dict[str, str] = {}
    for lineno, row in enumerate(read_jsonl(path), 1):
        key = str(_field(row, id_field, path, lineno))
        if key in by_id:
            raise DataFormatError(f"{path}: question id {key!r} has more than one answer (record {lineno})")
        by_id[key] = _field(row, answer_field, path, lineno)  # type: ignore[assignment]
    return _align(benchmark, by_id, f"answers in {path}")


def load_benchmark(
    name: str,
    path: str | Path,
    *,
    reference_answers: str | Path | Sequence[str] | Mapping[object, str] | None = None,
    question_field: str | None = None,
    id_field: str | None = None,
    category_field: str | None = None,
    answer_field: str = "answer",
) -> Benchmark:
    """Load a benchmark question file, optionally with reference answers.

    Parameters
    ----------
    name : str
        ``"vicuna"`` (field ``text``, id ``question_id``), ``"koala"`` (``prompt``, ``id``),
        ``"wizardlm"`` (``Instruction``, ``idx``) or any other name together with
        ``question_field``.
    path : str or Path
        The question file (JSONL).
    reference_answers : path, sequence or mapping, optional
        A JSONL file of answers (joined by id; see :func:`load_answers`), a list aligned with the
        questions, or an id -> answer mapping.
    question_field, id_field, category_field : str, optional
        Override the known format's fields, or name them for a new benchmark (no ``id_field``:
        questions are numbered by line from 0).
    answer_field : str, default "answer"
        Answer field of the reference-answer file.

    Returns
    -------
    Benchmark

    Examples
    --------
    >>> bench = load_benchmark("vicuna", "vicuna_test_set.jsonl",
    ...                        reference_answers="gpt35_0624.jsonl")  # doctest: +SKIP
    """
    fmt = BENCHMARK_FORMATS.get(name)
    if fmt is None and question_field is None:
        raise ValidationError(
            f"unknown benchmark {name!r}: known formats are {sorted(BENCHMARK_FORMATS)}; for another file pass "
            "question_field= (and id_field= if the file has ids)"
        )
    fmt = BenchmarkFormat(
        question_field or fmt.question_field,  # type: ignore[union-attr]
        id_field if id_field is not None else (fmt.id_field if fmt else None),
        category_field if category_field is not None else (fmt.category_field if fmt else None),
    )
    path = Path(path)
    rows = read_jsonl(path)
    questions, ids, cats = [], [], []
    for lineno, row in enumerate(rows, 1):
        q = _field(row, fmt.question_field, path, lineno)
        if not isinstance(q, str):
            raise DataFormatError(f"{path} record {lineno}: field {fmt.question_field!r} is not a string")
        questions.append(q)
        ids.append(str(_field(row, fmt.id_field, path, lineno)) if fmt.id_field else str(lineno - 1))
        if fmt.category_field:
            cats.append(str(row.get(fmt.category_field, "")))
    bench = Benchmark(name, tuple(ids), tuple(questions), None, tuple(cats) if fmt.category_field else None)
    if reference_answers is None:
        return bench
    if isinstance(reference_answers, (str, Path)):
        if fmt.id_field is None:
            # No ids to join on: the answer file is read line by line, aligned with the questions.
            ref_path = Path(reference_answers)
            rows = read_jsonl(ref_path)
            reference_answers = [_field(row, answer_field, ref_path, i) for i, row in enumerate(rows, 1)]  # type: ignore[misc]
        else:
            reference_answers = load_answers(reference_answers, bench, answer_field=answer_field, id_field=fmt.id_field)
    return bench.with_references(reference_answers)  # type: ignore[arg-type]
