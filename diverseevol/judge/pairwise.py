"""The paper's pairwise LLM judge on any OpenAI-compatible chat-completions endpoint.

:class:`PairwiseJudge` asks each question in both orders, caches the replies and builds the
:class:`~diverseevol.judge.report.JudgeReport`; the requests themselves (retries, backoff,
redaction) go through :class:`~diverseevol.judge.client.RetryingChatClient`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

from .._files import redact_text
from .._progress import progress_bar
from .._validation import check_scalar
from ..errors import ValidationError
from .benchmarks import Benchmark, _align
from .cache import JudgeCache, judgment_key
from .client import Cancelled, MalformedReply, RetryingChatClient, openai_client
from .parsing import parse_scores
from .report import ORDERS, InvalidJudgment, JudgeReport
from .request_kwargs import check_request_kwargs
from .template import JUDGE_INSTRUCTION, JUDGE_SYSTEM_PROMPT, JUDGE_TEMPLATE, render_judge_prompt

__all__ = ["ORDERS", "InvalidJudgment", "JudgeReport", "PairwiseJudge"]

logger = logging.getLogger(__name__)


class _OnClient:
    """A judge attribute that is its :class:`RetryingChatClient`'s (read and written there)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, judge: Any, owner: type | None = None) -> Any:
        return self if judge is None else getattr(judge._http, self.name)

    def __set__(self, judge: Any, value: Any) -> None:
        setattr(judge._http, self.name, value)


def _shown(url: str | None) -> str | None:
    """``url`` as it may be printed: a ``user:password@`` password redacted."""
    return None if url is None else redact_text(url)


class PairwiseJudge:
    """The paper's GPT-4 pairwise judge, on any OpenAI-compatible chat-completions endpoint.

    Each question is judged twice, with the model's and the reference's answers in both
    orders (position swap); the two score pairs are mapped back to (model, reference).
    Replies are cached in SQLite as they arrive, so a rerun after a crash asks only for the
    judgments it lacks.

    Parameters
    ----------
    model : str, default "gpt-4-0613"
        The judge model name, as the endpoint knows it.
    base_url : str, optional
        Endpoint root, e.g. ``"http://localhost:8000/v1"`` for vLLM, ``"http://localhost:11434/v1"``
        for Ollama, ``"http://localhost:8080/v1"`` for llama.cpp's server. None: OpenAI.
    api_key : str, optional
        The API key; defaults to the ``OPENAI_API_KEY`` environment variable. With a
        ``base_url`` and no key a placeholder is sent (local servers ignore it). The key is
        held by the HTTP client only: it is never written to the cache, logs or reports, and it
        (with any key-shaped string, e.g. ``sk-...`` or ``Bearer ...``) is removed from every error
        message and log line, even when the server echoes it.
    cache : str, Path or JudgeCache, optional
        SQLite file for replies (recommended: judgments cost money). None: no cache.
    max_concurrency : int, default 4
        Requests in flight at once (threads).
    max_retries : int, default 6
        Retries per request on HTTP 429, 408, 409, 5xx, timeouts, connection errors and
        malformed 200 replies (a cut or non-JSON body, no ``choices``, no message). Other errors
        (400, 401, 404...) fail at once. When the retries are used up, :meth:`compare` fails with
        a :class:`~diverseevol.errors.JudgeError`, except after malformed replies: that judgment
        is then recorded as invalid (see :attr:`JudgeReport.invalid`, not cached) and the run goes on.
    retry_base_delay, retry_max_delay : float, default 1.0 and 60.0
        Exponential backoff: before retry ``i`` (from 0) sleep a uniformly random time in
        ``[d/2, d]`` with ``d = min(retry_max_delay, retry_base_delay * 2**i)``; a
        ``Retry-After`` header raises it (capped at ``retry_max_delay``).
    timeout : float, default 120.0
        Seconds per request.
    temperature : float, default 0.0
        Sampling temperature (the paper: 0).
    max_tokens : int or None, default 1024
        Reply length limit; None sends none.
    system_prompt, template, instruction : str, optional
        The prompt (defaults: the paper's; see :mod:`diverseevol.judge.template`).
    request_kwargs : mapping, optional
        Extra arguments for ``chat.completions.create`` (e.g. ``{"seed": 0}``); part of the cache key.
    client : object, optional
        A ready client with ``client.chat.completions.create(...)`` (for tests or custom
        transports); when given, ``base_url``/``api_key``/``timeout`` are not used.
    progress : bool, optional
        Show a progress bar (default: on unless ``DIVERSEEVOL_PROGRESS=0``).

    Examples
    --------
    >>> judge = PairwiseJudge("gpt-4-0613", cache="judge_cache.sqlite")  # doctest: +SKIP
    >>> report = judge.compare(bench, model_answers)                      # doctest: +SKIP
    >>> report.rs, report.wtr, report.n_invalid                           # doctest: +SKIP
    """

    max_retries = _OnClient("max_retries")
    retry_base_delay = _OnClient("retry_base_delay")
    retry_max_delay = _OnClient("retry_max_delay")
    n_requests = _OnClient("n_requests")  # successful endpoint replies, over this judge's lifetime
    n_attempts = _OnClient("n_attempts")  # every request sent, retries included
    _sleep = _OnClient("sleep")
    _rng = _OnClient("rng")

    def __init__(
        self,
        model: str = "gpt-4-0613",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        cache: str | Path | JudgeCache | None = None,
        max_concurrency: int = 4,
        max_retries: int = 6,
        retry_base_delay: float = 1.0,
        retry_max_delay: float = 60.0,
        timeout: float = 120.0,
        temperature: float = 0.0,
        max_tokens: int | None = 1024,
        system_prompt: str = JUDGE_SYSTEM_PROMPT,
        template: str = JUDGE_TEMPLATE,
        instruction: str = JUDGE_INSTRUCTION,
        request_kwargs: Mapping[str, Any] | None = None,
        client: Any | None = None,
        progress: bool | None = None,
    ) -> None:
        check_scalar(max_concurrency, "max_concurrency", int, min_val=1)
        check_scalar(max_retries, "max_retries", int, min_val=0)
        for name, delay in (("retry_base_delay", retry_base_delay), ("retry_max_delay", retry_max_delay)):
            check_scalar(delay, name, float, min_val=0, finite=False, what="seconds")
        render_judge_prompt("q", "a", "b", template=template, instruction=instruction)  # validates placeholders
        self.model = model
        self.base_url = base_url
        self.max_concurrency = int(max_concurrency)
        self.timeout = float(timeout)
        self.temperature = float(temperature)
        self.max_tokens = max_tokens
        self.system_prompt = system_prompt
        self.template = template
        self.instruction = instruction
        self.request_kwargs = check_request_kwargs(request_kwargs, known_client=client is None)
        self.progress = progress
        if client is not None:
            key = getattr(client, "api_key", None)
        else:
            client, key = openai_client(base_url=base_url, api_key=api_key, timeout=self.timeout)
        # The key (and the environment's) are removed from every message and log line, with any
        # key-shaped string: a server may echo the key it was sent. Kept out of repr() and get_config().
        self._http = RetryingChatClient(
            client,
            model=model,
            max_retries=max_retries,
            retry_base_delay=retry_base_delay,
            retry_max_delay=retry_max_delay,
            secrets=(key, os.environ.get("OPENAI_API_KEY")),
        )
        self.cache = cache if isinstance(cache, JudgeCache) or cache is None else JudgeCache(cache)

    def get_config(self) -> dict[str, Any]:
        """The judge's settings, for run records (never the API key)."""
        return {
            "model": self.model,
            "base_url": self.base_url,
            "cache": None if self.cache is None else self.cache.path,
            "max_concurrency": self.max_concurrency,
            "max_retries": self.max_retries,
            "retry_base_delay": self.retry_base_delay,
            "retry_max_delay": self.retry_max_delay,
            "timeout": self.timeout,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "request_kwargs": dict(self.request_kwargs),
            "prompt_sha256": hashlib.sha256(
                json.dumps([self.system_prompt, self.template, self.instruction]).encode("utf-8")
            ).hexdigest(),
        }

    def close(self) -> None:
        """Close the cache database and the HTTP client."""
        if self.cache is not None:
            self.cache.close()
        self._http.close()

    def __enter__(self) -> PairwiseJudge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        cache = None if self.cache is None else self.cache.path
        return (
            f"PairwiseJudge(model={self.model!r}, base_url={_shown(self.base_url)!r}, cache={cache!r}, "
            f"max_concurrency={self.max_concurrency}, max_retries={self.max_retries})"
        )

    # ------------------------------------------------------------------ single requests
    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"temperature": self.temperature, **self.request_kwargs}
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        return params

    def _key(self, question: str, answer_1: str, answer_2: str, order: int) -> str:
        return judgment_key(
            self.model, self.system_prompt, self.template.replace("{prompt}", self.instruction),
            question, answer_1, answer_2, order, self._params(),
        )

    def _request(self, question: str, answer_1: str, answer_2: str, stop: threading.Event | None = None) -> str:
        """One judge call with retries (:meth:`RetryingChatClient.complete`); the reply text ('' when none came).

        ``stop`` (set when another request of the same run failed) ends the retries early.
        """
        messages = [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": render_judge_prompt(
                question, answer_1, answer_2, template=self.template, instruction=self.instruction)},
        ]
        self._http.model = self.model
        return self._http.complete(messages, self._params(), stop)

    def ask(self, question: str, answer_1: str, answer_2: str, *, order: int = 0) -> str:
        """Return the judge's raw reply for one presentation (from the cache when present).

        Parameters
        ----------
        question, answer_1, answer_2 : str
            The question and the answers shown as Assistant 1 and Assistant 2.
        order : int, default 0
            Stored in the cache key (0: model first, 1: reference first).
        """
        key = self._key(question, answer_1, answer_2, order)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        reply = self._request(question, answer_1, answer_2)
        if self.cache is not None:
            self.cache.put(key, self.model, reply)
        return reply

    # ------------------------------------------------------------------ a benchmark
    def compare(
        self,
        benchmark: Benchmark,
        model_answers: Sequence[str] | Mapping[object, str],
        *,
        reference_answers: Sequence[str] | Mapping[object, str] | None = None,
    ) -> JudgeReport:
        """Judge ``model_answers`` against the reference answers, both orders per question.

        Parameters
        ----------
        benchmark : Benchmark
            The questions (and, usually, the reference answers).
        model_answers : sequence of str or mapping id -> str
            The model's answers, aligned with ``benchmark.ids`` or keyed by question id.
        reference_answers : sequence of str or mapping, optional
            Overrides ``benchmark.references``.

        Returns
        -------
        JudgeReport

        Raises
        ------
        JudgeError
            A request failed for good (non-retryable error, or retries used up). Every reply
            received before the failure is already in the cache, so calling again resumes.
            A judgment that got only malformed replies is not an error: it is listed in
            ``report.invalid`` with its ``error`` and asked again by the next call.
        """
        answers = _align(benchmark, model_answers, "model answers")
        if reference_answers is not None:
            refs = _align(benchmark, reference_answers, "reference answers")
        elif benchmark.references is not None:
            refs = benchmark.references
        else:
            raise ValidationError(
                f"benchmark {benchmark.name!r} has no reference answers; load it with reference_answers= "
                "or pass reference_answers= to compare()"
            )
        n = len(benchmark)
        # (question row, order, answer shown first, answer shown second)
        jobs: list[tuple[int, int, str, str]] = []
        for i in range(n):
            jobs.append((i, 0, answers[i], refs[i]))
            jobs.append((i, 1, refs[i], answers[i]))
        keys = [self._key(benchmark.questions[i], a1, a2, o) for i, o, a1, a2 in jobs]
        replies: dict[str, str] = {}
        if self.cache is not None:
            for key in set(keys):
                hit = self.cache.get(key)
                if hit is not None:
                    replies[key] = hit
        n_cached = sum(k in replies for k in keys)
        todo: dict[str, tuple[int, int, str, str]] = {}
        for key, job in zip(keys, jobs):
            if key not in replies:
                todo.setdefault(key, job)
        requests_before = self.n_requests
        if todo:
            logger.info(
                "judging %s: %d requests to %s (%d judgments cached)", benchmark.name, len(todo), self.model, n_cached
            )
            answered, failed = self._run_all(benchmark, todo)
            replies.update(answered)
        else:
            failed = {}
        report = self._build_report(benchmark, jobs, keys, replies, failed)
        report.n_requests = self.n_requests - requests_before
        report.n_cached = n_cached
        if report.invalid:
            logger.warning(
                "%s: %d unparseable judge replies; %d question(s) left out of RS/WTR: %s",
                benchmark.name, report.n_invalid, len(report.excluded_ids), report.excluded_ids[:10],
            )
        return report

    def _run_all(
        self, benchmark: Benchmark, todo: Mapping[str, tuple[int, int, str, str]]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Ask every judgment of ``todo``; return (key -> reply, key -> error of the malformed ones)."""
        out: dict[str, str] = {}
        failed: dict[str, str] = {}
        stop = threading.Event()

        def work(key: str, job: tuple[int, int, str, str]) -> tuple[str, str | MalformedReply]:
            i, _order, a1, a2 = job
            try:
                reply = self._request(benchmark.questions[i], a1, a2, stop)
            except MalformedReply as exc:
                logger.warning("%s: question %s: %s; recorded as invalid", benchmark.name, benchmark.ids[i], exc)
                return key, exc  # not cached: the next run asks again
            except BaseException:
                stop.set()  # no new requests once one has failed for good
                raise
            if self.cache is not None:
                self.cache.put(key, self.model, reply)
            return key, reply

        bar = progress_bar(total=len(todo), desc=f"judge {benchmark.name}", disable=None if self.progress is None
                           else not self.progress)
        pool = ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="diverseevol-judge")
        futures: list[Future[tuple[str, str | MalformedReply]]] = []
        try:
            futures = [pool.submit(work, key, job) for key, job in todo.items()]
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in done:
                    exc = fut.exception()
                    if isinstance(exc, Cancelled):
                        continue
                    if exc is not None:
                        raise exc
                    key, reply = fut.result()
                    if isinstance(reply, MalformedReply):
                        failed[key] = str(reply)
                    else:
                        out[key] = reply
                    bar.update(1)
        except BaseException:
            stop.set()
            for fut in futures:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)  # requests in flight finish and are cached
            raise
        finally:
            bar.close()
        pool.shutdown(wait=True)
        return out, failed

    def _build_report(
        self,
        benchmark: Benchmark,
        jobs: list[tuple[int, int, str, str]],
        keys: list[str],
        replies: Mapping[str, str],
        failed: Mapping[str, str],
    ) -> JudgeReport:
        n = len(benchmark)
        model_scores = np.full((n, len(ORDERS)), np.nan)
        ref_scores = np.full((n, len(ORDERS)), np.nan)
        raw = [["", ""] for _ in range(n)]
        invalid: list[InvalidJudgment] = []
        for (i, order, _a1, _a2), key in zip(jobs, keys):
            if key in failed:
                invalid.append(InvalidJudgment(benchmark.ids[i], order, "", error=failed[key]))
                continue
            reply = replies[key]
            raw[i][order] = reply
            scores = parse_scores(reply)
            if scores is None:
                invalid.append(InvalidJudgment(benchmark.ids[i], order, reply))
                continue
            first, second = scores
            model_scores[i, order], ref_scores[i, order] = (first, second) if order == 0 else (second, first)
        return JudgeReport(
            benchmark=benchmark.name,
            question_ids=benchmark.ids,
            model_scores=model_scores,
            reference_scores=ref_scores,
            replies=raw,
            invalid=invalid,
            judge_model=self.model,
        )
