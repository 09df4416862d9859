"""Evaluation: the paper's pairwise LLM judge, RS / WTR, benchmark sets and offline judges.

Importing this package needs numpy only; :class:`PairwiseJudge` imports ``openai`` (extra
``judge``) when constructed.
"""

from __future__ import annotations

from .benchmarks import BENCHMARK_FORMATS, Benchmark, BenchmarkFormat, load_answers, load_benchmark
from .cache import JudgeCache, judgment_key
from .loop_judge import PairwiseLoopJudge
from .metrics import RoundSummary, relative_score, summarize_rounds, valid_questions, win_tie_rate
from .offline import NORMALIZERS, ExactMatchJudge
from .pairwise import PairwiseJudge
from .parsing import parse_scores
from .protocol import AnswerGenerator, Judge, generate_answers
from .report import ORDERS, InvalidJudgment, JudgeReport
from .template import JUDGE_INSTRUCTION, JUDGE_SYSTEM_PROMPT, JUDGE_TEMPLATE, render_judge_prompt

__all__ = [
    "BENCHMARK_FORMATS",
    "JUDGE_INSTRUCTION",
    "JUDGE_SYSTEM_PROMPT",
    "JUDGE_TEMPLATE",
    "NORMALIZERS",
    "ORDERS",
    "AnswerGenerator",
    "Benchmark",
    "BenchmarkFormat",
    "ExactMatchJudge",
    "InvalidJudgment",
    "Judge",
    "JudgeCache",
    "JudgeReport",
    "PairwiseJudge",
    "PairwiseLoopJudge",
    "RoundSummary",
    "generate_answers",
    "judgment_key",
    "load_answers",
    "load_benchmark",
    "parse_scores",
    "relative_score",
    "render_judge_prompt",
    "summarize_rounds",
    "valid_questions",
    "win_tie_rate",
]
