"""The paper's pairwise judge against an OpenAI-compatible endpoint, here a loopback toy server.

``PairwiseJudge`` speaks the chat-completions protocol, so the same code works with OpenAI
(``base_url=None``, key from ``OPENAI_API_KEY``), a vLLM server (``base_url="http://host:8000/v1"``),
Ollama (``"http://localhost:11434/v1"``) or llama.cpp's server (``"http://localhost:8080/v1"``).
To run offline, this example starts ``LoopbackChatServer`` with a toy judge that scores answers
by their length: the numbers show the mechanics (both orders, RS, WTR, invalid replies, cache),
not answer quality.

Run:  python examples/judge_loopback.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from diverseevol.judge import Benchmark, PairwiseJudge, load_benchmark
from diverseevol.judge.loopback import LoopbackChatServer, extract_answers, length_responder


def benchmark() -> Benchmark:
    """Vicuna-Bench with ChatGPT's answers when the shared data is present, else a tiny stand-in."""
    root = os.environ.get("DIVERSEEVOL_SHARED_DATA")
    data = (Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "data") / "vicuna_bench"
    if (data / "vicuna_test_set.jsonl").is_file():
        return load_benchmark("vicuna", data / "vicuna_test_set.jsonl",
                              reference_answers=data / "vicuna_test_gpt35_0624_answers.jsonl")
    questions = [f"Explain topic number {i} in a few sentences." for i in range(10)]
    return Benchmark.from_lists("toy", questions, [f"A detailed answer about topic {i}. " * 8 for i in range(10)])


def flaky_responder(request: dict) -> str:
    """The toy judge, but it answers one question with prose instead of scores (an invalid reply)."""
    question, _, _ = extract_answers(request)
    if question.startswith("How can I improve my time management") or question.endswith("number 3 in a few sentences."):
        return "Both assistants give useful advice; I cannot choose."
    return length_responder(request)


bench = benchmark()
# The "model" under test answers with the first 40 words of the reference answer.
model_answers = [" ".join(ref.split()[:40]) for ref in bench.references]

with LoopbackChatServer(flaky_responder) as server, tempfile.TemporaryDirectory() as tmp:
    judge = PairwiseJudge(
        "toy-length-judge",
        base_url=server.url,           # any OpenAI-compatible endpoint
        api_key="not-needed",          # or leave out: OPENAI_API_KEY is used
        cache=Path(tmp) / "judge_cache.sqlite",
        max_concurrency=8,
        max_retries=4,
        progress=False,
    )
    report = judge.compare(bench, model_answers)
    print(f"{bench.name}: {len(bench)} questions, {report.n_requests} judge requests (2 orders each)")
    print(f"RS  = {report.rs:.2f}%   (100 = on par with the reference answers)")
    print(f"WTR = {report.wtr:.2f}%")
    print(f"invalid replies: {report.n_invalid}, questions left out of RS/WTR: {report.excluded_ids}")
    for bad in report.invalid:
        print(f"  question {bad.question_id}, order {bad.order}: {bad.reply!r}")

    again = judge.compare(bench, model_answers)  # e.g. after a crash: everything comes from the cache
    print(f"second run: {again.n_requests} new requests, {again.n_cached} cached judgments; "
          f"server saw {server.n_requests} requests in total")
    assert again.rs == report.rs
