"""The paper's pairwise LLM judge on any OpenAI-compatible chat-completions endpoint."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_write, redact_text
from .._optional import require
from .._progress import progress_bar
from ..errors import JudgeError, ValidationError
from .benchmarks import Benchmark, _align
from .cache import JudgeCache, judgment_key
from .metrics import relative_score, valid_questions, win_tie_rate
from .parsing import parse_scores
from .request_kwargs import check_request_kwargs
from .template import JUDGE_INSTRUCTION, JUDGE_SYSTEM_PROMPT, JUDGE_TEMPLATE, render_judge_prompt

__all__ = ["ORDERS", "InvalidJudgment", "JudgeReport", "PairwiseJudge"]

logger = logging.getLogger(__name__)

#: The two presentation orders: order 0 shows the model's answer first (as Assistant 1),
#: order 1 shows the reference answer first.
ORDERS: tuple[str, str] = ("model_first", "reference_first")

_PLACEHOLDER_KEY = "EMPTY"  # sent to local servers (vLLM, Ollama, llama.cpp) that need no key


@dataclass(frozen=True)
class InvalidJudgment:
    """A judge reply whose scores could not be read.

    Attributes
    ----------
    question_id : str
        The benchmark question id.
    order : int
        0 when the model's answer was shown first, 1 when the reference's was.
    reply : str
        The raw reply, as received ('' when no usable reply came at all).
    error : str, default ""
        Why no usable reply came (e.g. a malformed body on every attempt); '' for a reply that
        arrived but holds no scores.
    """

    question_id: str
    order: int
    reply: str
    error: str = ""


@dataclass
class JudgeReport:
    """The outcome of judging one set of model answers against reference answers.

    Attributes
    ----------
    benchmark : str
        The benchmark name.
    question_ids : tuple of str, length n_questions
        The question ids, in benchmark order.
    model_scores, reference_scores : ndarray of shape (n_questions, 2)
        Judge scores per question (rows) and order (columns, see :data:`ORDERS`); NaN where
        the reply of that order was invalid.
    replies : list of list of str, shape (n_questions, 2)
        Raw judge replies per question and order.
    invalid : list of InvalidJudgment
        Every unparseable reply; none of them is scored.
    judge_model : str
        The judge model name.
    n_requests : int
        Requests answered by the endpoint for this report (retries not counted).
    n_cached : int
        Judgments taken from the cache instead.

    Notes
    -----
    Questions with an invalid reply in any order are left out of ``rs`` and ``wtr`` (see
    :attr:`excluded_ids`), so the two orders of every counted question are both present.
    """

    benchmark: str
    question_ids: tuple[str, ...]
    model_scores: np.ndarray
    reference_scores: np.ndarray
    replies: list[list[str]]
    invalid: list[InvalidJudgment] = field(default_factory=list)
    judge_model: str = ""
    n_requests: int = 0
    n_cached: int = 0

    @property
    def n_invalid(self) -> int:
        """How many replies (question x order) were unparseable."""
        return len(self.invalid)

    @property
    def valid_mask(self) -> np.ndarray:
        """Boolean array, shape (n_questions,): True where both orders were scored."""
        return valid_questions(self.model_scores, self.reference_scores)

    @property
    def excluded_ids(self) -> list[str]:
        """Ids of the questions left out of RS and WTR because a reply was invalid."""
        return [q for q, ok in zip(self.question_ids, self.valid_mask) if not ok]

    @property
    def n_valid(self) -> int:
        """How many questions count towards RS and WTR."""
        return int(self.valid_mask.sum())

    @property
    def rs(self) -> float:
        """Relative Score in percent over the valid questions (NaN if none is valid)."""
        if self.n_valid == 0:
            return float("nan")
        return relative_score(self.model_scores, self.reference_scores, nan_policy="omit")

    @property
    def wtr(self) -> float:
        """Win-and-Tie Rate in percent over the valid questions (NaN if none is valid)."""
        if self.n_valid == 0:
            return float("nan")
        return win_tie_rate(self.model_scores, self.reference_scores, nan_policy="omit")

    def metrics(self, prefix: str | None = None) -> dict[str, float]:
        """Return ``{"<prefix>/rs", "<prefix>/wtr", "<prefix>/invalid", "<prefix>/n_valid"}``.

        ``prefix`` defaults to the benchmark name; ``invalid`` counts invalid replies.
        """
        p = self.benchmark if prefix is None else prefix
        return {f"{p}/rs": self.rs, f"{p}/wtr": self.wtr, f"{p}/invalid": float(self.n_invalid),
                f"{p}/n_valid": float(self.n_valid)}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: metrics, per-question scores and replies, the invalid list."""

        def _num(x: float) -> float | None:
            return None if np.isnan(x) else float(x)

        return {
            "benchmark": self.benchmark,
            "judge_model": self.judge_model,
            "rs": _num(self.rs),
            "wtr": _num(self.wtr),
            "n_questions": len(self.question_ids),
            "n_valid": self.n_valid,
            "n_invalid": self.n_invalid,
            "excluded_ids": self.excluded_ids,
            "invalid": [vars(i) for i in self.invalid],
            "questions": [
                {
                    "question_id": qid,
                    "model_scores": [_num(x) for x in self.model_scores[i]],
                    "reference_scores": [_num(x) for x in self.reference_scores[i]],
                    "replies": list(self.replies[i]),
                }
                for i, qid in enumerate(self.question_ids)
            ],
        }

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (atomically: temporary file, then rename)."""
        data = json.dumps(self.to_dict(), ensure_ascii=False, indent=1).encode("utf-8")
        return atomic_write(path, lambda fh: fh.write(data))


def _status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


_MALFORMED = "malformed reply"


class _MalformedReply(JudgeError):
    """A 200 reply that is not a chat completion (cut or non-JSON body, no choices, no message)."""


def _retry_reason(exc: BaseException) -> str | None:
    """Why ``exc`` is worth retrying (429, 5xx, 408/409, timeout, connection, malformed reply), or None."""
    if isinstance(exc, (_MalformedReply, json.JSONDecodeError)):
        return _MALFORMED
    if "APIResponseValidationError" in {cls.__name__ for cls in type(exc).__mro__}:
        return _MALFORMED
    code = _status_code(exc)
    if code is not None:
        return f"HTTP {code}" if code in (408, 409, 429) or code >= 500 else None
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, TimeoutError) or "APITimeoutError" in names:
        return "timeout"
    if isinstance(exc, ConnectionError) or "APIConnectionError" in names:
        return "connection error"
    return None


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get("retry-after")
        return None if value is None else max(0.0, float(value))
    except (TypeError, ValueError):
        return None


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
        if max_concurrency < 1:
            raise ValidationError(f"max_concurrency must be >= 1; got {max_concurrency}")
        if max_retries < 0:
            raise ValidationError(f"max_retries must be >= 0; got {max_retries}")
        if retry_base_delay < 0 or retry_max_delay < 0:
            raise ValidationError(
                f"retry delays must be >= 0; got base {retry_base_delay}, max {retry_max_delay}"
            )
        render_judge_prompt("q", "a", "b", template=template, instruction=instruction)  # validates placeholders
        self.model = model
        self.base_url = base_url
        self.max_concurrency = int(max_concurrency)
        self.max_retries = int(max_retries)
        self.retry_base_delay = float(retry_base_delay)
        self.retry_max_delay = float(retry_max_delay)
        self.timeout = float(timeout)
        self.temperature = float(temperature)
        self.max_tokens = max_tokens
        self.system_prompt = system_prompt
        self.template = template
        self.instruction = instruction
        self.request_kwargs = check_request_kwargs(request_kwargs, known_client=client is None)
        self.progress = progress
        self.cache = cache if isinstance(cache, JudgeCache) or cache is None else JudgeCache(cache)
        self._rng = random.Random()
        self._sleep: Callable[[float], None] = time.sleep
        self._lock = threading.Lock()
        self.n_requests = 0  # successful endpoint replies, over this judge's lifetime
        self.n_attempts = 0  # every request sent, retries included
        key: str | None = None
        if client is not None:
            self._client = client
            key = getattr(client, "api_key", None)
        else:
            openai = require("openai", feature="PairwiseJudge", extra="judge")
            key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
            if not key:
                if base_url is None:
                    raise JudgeError(
                        "PairwiseJudge needs an API key for the OpenAI endpoint: set the OPENAI_API_KEY "
                        "environment variable or pass api_key=...; for a local server pass base_url=..."
                    )
                key = _PLACEHOLDER_KEY
            # Retries are ours (backoff with jitter, counted, logged); the client must not add its own.
            self._client = openai.OpenAI(api_key=key, base_url=base_url, timeout=self.timeout, max_retries=0)
        # Values to remove from every message and log line (with any key-shaped string): a server may
        # echo the key it was sent. Kept out of repr() and get_config().
        self._secrets = tuple(
            s for s in (key, os.environ.get("OPENAI_API_KEY")) if isinstance(s, str) and s and s != _PLACEHOLDER_KEY
        )

    def _redact(self, text: str) -> str:
        return redact_text(text, self._secrets)

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
        closer = getattr(self._client, "close", None)
        if callable(closer):
            closer()

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
        """One judge call with retries; returns the reply text ('' when the endpoint sent none).

        ``stop`` (set when another request of the same run failed) ends the retries early.
        """
        messages = [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": render_judge_prompt(
                question, answer_1, answer_2, template=self.template, instruction=self.instruction)},
        ]
        attempt = 0
        while True:
            if stop is not None and stop.is_set():
                raise _Cancelled()
            with self._lock:
                self.n_attempts += 1
            failure: JudgeError | None = None
            reason: str | None = None
            try:
                response = self._client.chat.completions.create(model=self.model, messages=messages, **self._params())
                text = _reply_text(response)
            except Exception as exc:
                reason = _retry_reason(exc)
                code = _status_code(exc)
                if reason is None:
                    hint = " (check the API key)" if code in (401, 403) else ""
                    failure = JudgeError(self._redact(
                        f"judge request to model {self.model!r} failed and is not retryable: "
                        f"{type(exc).__name__}{f' HTTP {code}' if code else ''}{hint}: {exc}"
                    ))
                elif attempt >= self.max_retries:
                    error = _MalformedReply if reason == _MALFORMED else JudgeError
                    # redacted before it is cut, so no partial key survives the cut
                    detail = f": {type(exc).__name__}: {self._redact(str(exc))[:200]}" if reason == _MALFORMED else ""
                    failure = error(self._redact(
                        f"judge request to model {self.model!r} still failing after {attempt + 1} attempts "
                        f"({reason}{detail}); raise max_retries or check the endpoint"
                    ))
                else:
                    delay = min(self.retry_max_delay, self.retry_base_delay * 2.0**attempt)
                    delay = self._rng.uniform(delay / 2.0, delay)
                    hinted = _retry_after(exc)
                    if hinted is not None:
                        delay = max(delay, min(hinted, self.retry_max_delay))
                if failure is not None:
                    failure.status_code = code  # type: ignore[attr-defined]
            if failure is not None:
                # Raised outside the handler: the original exception (which may quote the key) is
                # neither the cause nor the context of the error.
                raise failure
            if reason is not None:
                logger.info("judge request: %s; retry %d/%d in %.2fs", reason, attempt + 1, self.max_retries, delay)
                if stop is not None and self._sleep is time.sleep:
                    stop.wait(delay)  # wakes at once when another request of the run fails for good
                else:
                    self._sleep(delay)
                attempt += 1
                continue
            with self._lock:
                self.n_requests += 1
            return text

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

        def work(key: str, job: tuple[int, int, str, str]) -> tuple[str, str | _MalformedReply]:
            i, _order, a1, a2 = job
            try:
                reply = self._request(benchmark.questions[i], a1, a2, stop)
            except _MalformedReply as exc:
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
        futures: list[Future[tuple[str, str | _MalformedReply]]] = []
        try:
            futures = [pool.submit(work, key, job) for key, job in todo.items()]
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in done:
                    exc = fut.exception()
                    if isinstance(exc, _Cancelled):
                        continue
                    if exc is not None:
                        raise exc
                    key, reply = fut.result()
                    if isinstance(reply, _MalformedReply):
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


class _Cancelled(Exception):
    """A request skipped because another request of the same run failed."""


def _reply_text(response: Any) -> str:
    """The message text of a chat-completions response ('' if absent)."""
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, KeyError, TypeError):
        try:
            content = response["choices"][0]["message"]["content"]
        except (IndexError, KeyError, TypeError) as exc:
            raise _MalformedReply(
                f"judge endpoint answered outside the chat-completions protocol (no choices[0].message.content): "
                f"{response}"
            ) from exc
    return content if isinstance(content, str) else ""
