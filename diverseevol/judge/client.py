"""A chat-completions endpoint with the judge's retry policy: backoff with jitter, counts, redaction.

:class:`RetryingChatClient` sends one request at a time per thread (it is thread-safe) and owns
what a request may go through: which failures are retried (HTTP 429, 408, 409, 5xx, timeouts,
connection errors, malformed 200 replies), how long to wait before each retry, and that no
message it raises or logs holds the API key. :func:`openai_client` builds the HTTP client for an
OpenAI-compatible endpoint (extra ``judge``).
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._files import redact_text
from .._optional import require
from ..errors import JudgeError

__all__ = ["MALFORMED", "Cancelled", "MalformedReply", "RetryingChatClient", "openai_client"]

logger = logging.getLogger(__name__)

_PLACEHOLDER_KEY = "EMPTY"  # sent to local servers (vLLM, Ollama, llama.cpp) that need no key

#: The retry reason of a malformed reply (a 200 that is not a chat completion).
MALFORMED = "malformed reply"


class MalformedReply(JudgeError):
    """A 200 reply that is not a chat completion (cut or non-JSON body, no choices, no message)."""


class Cancelled(Exception):
    """A request skipped because another request of the same run failed."""


def openai_client(*, base_url: str | None, api_key: str | None, timeout: float) -> tuple[Any, str]:
    """An ``openai.OpenAI`` client without retries of its own, and the key it sends.

    Parameters
    ----------
    base_url : str or None
        Endpoint root; None: OpenAI.
    api_key : str or None
        None: the ``OPENAI_API_KEY`` environment variable; with a ``base_url`` and no key, a
        placeholder (local servers ignore it).
    timeout : float
        Seconds per request.

    Raises
    ------
    OptionalDependencyError
        ``openai`` is not installed (extra ``judge``).
    JudgeError
        No key for the OpenAI endpoint itself.
    """
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
    return openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=0), key


def _status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


def _retry_reason(exc: BaseException) -> str | None:
    """Why ``exc`` is worth retrying (429, 5xx, 408/409, timeout, connection, malformed reply), or None."""
    if isinstance(exc, (MalformedReply, json.JSONDecodeError)):
        return MALFORMED
    if "APIResponseValidationError" in {cls.__name__ for cls in type(exc).__mro__}:
        return MALFORMED
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


def _reply_text(response: Any) -> str:
    """The message text of a chat-completions response ('' if absent)."""
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, KeyError, TypeError):
        try:
            content = response["choices"][0]["message"]["content"]
        except (IndexError, KeyError, TypeError) as exc:
            raise MalformedReply(
                f"judge endpoint answered outside the chat-completions protocol (no choices[0].message.content): "
                f"{response}"
            ) from exc
    return content if isinstance(content, str) else ""


class RetryingChatClient:
    """``client.chat.completions.create`` with retries, backoff with jitter and redacted errors.

    Parameters
    ----------
    client : object
        Has ``client.chat.completions.create(model=..., messages=..., **params)``.
    model : str
        The model name sent with every request (and named in errors).
    max_retries : int
        Retries per request of a retryable failure; then the request fails.
    retry_base_delay, retry_max_delay : float
        Before retry ``i`` (from 0) sleep a uniformly random time in ``[d/2, d]`` with
        ``d = min(retry_max_delay, retry_base_delay * 2**i)``; a ``Retry-After`` header raises it
        (capped at ``retry_max_delay``).
    secrets : sequence of str
        Values removed from every message and log line (with any key-shaped string).

    Attributes
    ----------
    n_requests : int
        Requests the endpoint answered (retries not counted).
    n_attempts : int
        Every request sent, retries included.
    sleep : callable
        How a retry waits (``time.sleep``; tests record instead).
    rng : random.Random
        Draws the jitter.
    """

    def __init__(
        self,
        client: Any,
        *,
        model: str,
        max_retries: int,
        retry_base_delay: float,
        retry_max_delay: float,
        secrets: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.model = model
        self.max_retries = int(max_retries)
        self.retry_base_delay = float(retry_base_delay)
        self.retry_max_delay = float(retry_max_delay)
        self.secrets = tuple(s for s in secrets if isinstance(s, str) and s and s != _PLACEHOLDER_KEY)
        self.rng = random.Random()
        self.sleep: Callable[[float], None] = time.sleep
        self.n_requests = 0
        self.n_attempts = 0
        self._lock = threading.Lock()

    def redact(self, text: str) -> str:
        """``text`` without the secrets and key-shaped strings."""
        return redact_text(text, self.secrets)

    def close(self) -> None:
        """Close the HTTP client (when it can be closed)."""
        closer = getattr(self.client, "close", None)
        if callable(closer):
            closer()

    def complete(
        self, messages: Sequence[Mapping[str, str]], params: Mapping[str, Any], stop: threading.Event | None = None
    ) -> str:
        """One chat completion with retries; returns the reply text ('' when the endpoint sent none).

        Parameters
        ----------
        messages : sequence of mapping
            The chat messages (``role``, ``content``).
        params : mapping
            Further arguments of ``create`` (temperature, max_tokens...).
        stop : threading.Event, optional
            Set when another request of the same run failed: ends the retries early
            (:class:`Cancelled`).

        Raises
        ------
        JudgeError
            A failure that is not retryable, or retries used up (:class:`MalformedReply` when the
            last failure was a malformed reply). Its ``status_code`` is the HTTP status, if any.
        """
        attempt = 0
        while True:
            if stop is not None and stop.is_set():
                raise Cancelled()
            with self._lock:
                self.n_attempts += 1
            failure, reason, delay, text = None, None, 0.0, ""
            try:
                response = self.client.chat.completions.create(model=self.model, messages=list(messages), **params)
                text = _reply_text(response)
            except Exception as exc:
                failure, reason, delay = self._after_failure(exc, attempt)
            if failure is not None:
                # Raised outside the handler: the original exception (which may quote the key) is
                # neither the cause nor the context of the error.
                raise failure
            if reason is not None:
                logger.info("judge request: %s; retry %d/%d in %.2fs", reason, attempt + 1, self.max_retries, delay)
                if stop is not None and self.sleep is time.sleep:
                    stop.wait(delay)  # wakes at once when another request of the run fails for good
                else:
                    self.sleep(delay)
                attempt += 1
                continue
            with self._lock:
                self.n_requests += 1
            return text

    def _after_failure(self, exc: Exception, attempt: int) -> tuple[JudgeError | None, str | None, float]:
        """``(error to raise, None, 0)`` when the request fails for good, else ``(None, reason, delay)``."""
        reason = _retry_reason(exc)
        code = _status_code(exc)
        failure: JudgeError | None = None
        if reason is None:
            hint = " (check the API key)" if code in (401, 403) else ""
            failure = JudgeError(self.redact(
                f"judge request to model {self.model!r} failed and is not retryable: "
                f"{type(exc).__name__}{f' HTTP {code}' if code else ''}{hint}: {exc}"
            ))
        elif attempt >= self.max_retries:
            error = MalformedReply if reason == MALFORMED else JudgeError
            # redacted before it is cut, so no partial key survives the cut
            detail = f": {type(exc).__name__}: {self.redact(str(exc))[:200]}" if reason == MALFORMED else ""
            failure = error(self.redact(
                f"judge request to model {self.model!r} still failing after {attempt + 1} attempts "
                f"({reason}{detail}); raise max_retries or check the endpoint"
            ))
        if failure is not None:
            failure.status_code = code  # type: ignore[attr-defined]
            return failure, None, 0.0
        delay = min(self.retry_max_delay, self.retry_base_delay * 2.0**attempt)
        delay = self.rng.uniform(delay / 2.0, delay)
        hinted = _retry_after(exc)
        if hinted is not None:
            delay = max(delay, min(hinted, self.retry_max_delay))
        return None, reason, delay
