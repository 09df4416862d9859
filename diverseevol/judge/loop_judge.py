"""The paper's evaluation as a loop judge: generate answers, compare them pairwise, return RS / WTR.

:class:`PairwiseLoopJudge` wraps a :class:`~diverseevol.judge.PairwiseJudge` (the LLM endpoint)
and benchmarks with reference answers into the loop's ``judge(model, round) -> metrics`` callable.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._files import atomic_write
from ..errors import ValidationError
from .benchmarks import Benchmark
from .pairwise import PairwiseJudge
from .protocol import AnswerGenerator, generate_answers
from .report import JudgeReport

__all__ = ["PairwiseLoopJudge"]

logger = logging.getLogger(__name__)


class PairwiseLoopJudge:
    """The paper's evaluation as a loop judge: ``judge(model, round) -> {"<bench>/rs": ..., ...}``.

    For each benchmark, the round's model answers every question (through ``generate``), the
    pairwise judge compares the answers with the benchmark's reference answers in both orders,
    and the judge returns ``"<bench>/rs"``, ``"<bench>/wtr"`` (percent, over the questions with
    valid judgments) and ``"<bench>/invalid"`` (number of unparseable replies) per benchmark.

    Parameters
    ----------
    judge : PairwiseJudge
        The configured judge (endpoint, cache, retries).
    benchmarks : Benchmark or sequence of Benchmark
        Benchmarks with reference answers; their names prefix the metric keys.
    generate : callable
        ``generate(model, prompts: list[str]) -> list[str]``.
    prompt_format : callable, optional
        Applied to each question before generation (e.g. :func:`diverseevol.data.format_prompt`).
    output_dir : str or Path, optional
        When given, each round's answers and judge reports are written to
        ``output_dir/round_<t>/<bench>.answers.jsonl`` and ``<bench>.report.json``.

    Attributes
    ----------
    reports : dict of (int, str) -> JudgeReport
        The full report of every (round, benchmark) judged so far.
    """

    def __init__(
        self,
        judge: PairwiseJudge,
        benchmarks: Benchmark | Sequence[Benchmark],
        generate: AnswerGenerator,
        *,
        prompt_format: Callable[[str], str] | None = None,
        output_dir: str | Path | None = None,
    ) -> None:
        self.judge = judge
        self.benchmarks = [benchmarks] if isinstance(benchmarks, Benchmark) else list(benchmarks)
        if not self.benchmarks:
            raise ValidationError("PairwiseLoopJudge needs at least one benchmark")
        names = [b.name for b in self.benchmarks]
        if len(set(names)) != len(names):
            raise ValidationError(f"benchmark names must be unique (they prefix the metric keys); got {names}")
        missing = [b.name for b in self.benchmarks if b.references is None]
        if missing:
            raise ValidationError(
                f"benchmarks {missing} have no reference answers; load them with load_benchmark(..., reference_answers=...)"
            )
        self.generate = generate
        self.prompt_format = prompt_format
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.reports: dict[tuple[int, str], JudgeReport] = {}

    def get_config(self) -> dict[str, Any]:
        """Settings for run records: the pairwise judge's (no API key) and the benchmarks."""
        return {
            "judge": self.judge.get_config(),
            "benchmarks": {b.name: len(b) for b in self.benchmarks},
            "output_dir": None if self.output_dir is None else str(self.output_dir),
        }

    def __call__(self, model: Any, round: int) -> dict[str, float]:
        """Answer, judge and return the metrics of every benchmark for this round's model."""
        metrics: dict[str, float] = {}
        for bench in self.benchmarks:
            answers = generate_answers(self.generate, model, list(bench.questions), prompt_format=self.prompt_format)
            report = self.judge.compare(bench, answers)
            self.reports[(round, bench.name)] = report
            if self.output_dir is not None:
                self._write(round, bench, answers, report)
            m = report.metrics()
            metrics.update({k: m[k] for k in (f"{bench.name}/rs", f"{bench.name}/wtr", f"{bench.name}/invalid")})
            logger.info(
                "round %d %s: RS %.2f WTR %.2f (%d invalid replies)", round, bench.name, report.rs, report.wtr,
                report.n_invalid,
            )
        return metrics

    def _write(self, round: int, bench: Benchmark, answers: Sequence[str], report: JudgeReport) -> None:
        folder = self.output_dir / f"round_{round}"  # type: ignore[operator]
        lines = "".join(
            json.dumps({"id": qid, "question": q, "answer": a}, ensure_ascii=False) + "\n"
            for qid, q, a in zip(bench.ids, bench.questions, answers)
        ).encode("utf-8")
        atomic_write(folder / f"{bench.name}.answers.jsonl", lambda fh: fh.write(lines))
        report.save(folder / f"{bench.name}.report.json")
