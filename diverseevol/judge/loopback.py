"""A tiny OpenAI-compatible chat-completions server on 127.0.0.1, for tests and offline examples.

It answers ``POST <url>/chat/completions`` with whatever a Python ``responder`` returns, so a
:class:`~diverseevol.judge.PairwiseJudge` can be driven end to end (HTTP, retries, timeouts,
cache) without any model or network. It is not a judge of answer quality: a responder decides.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["LoopbackChatServer", "LoopbackReply", "extract_answers", "length_responder"]

logger = logging.getLogger(__name__)


@dataclass
class LoopbackReply:
    """What the server sends back for one request.

    Attributes
    ----------
    content : str or None
        The assistant message text (status 200 only).
    status : int, default 200
        HTTP status; anything else than 200 sends an OpenAI-style error body.
    delay : float, default 0.0
        Seconds to wait before answering (longer than the client's timeout: a timeout).
    headers : dict, optional
        Extra response headers (e.g. ``{"Retry-After": "0"}``).
    body : str, bytes or dict, optional
        Sent as the response body instead of the generated one (a dict is JSON-encoded), with
        ``status``: injects malformed replies, e.g. ``body='{"choices": ['`` (a cut JSON body) or
        ``body={"id": "x", "choices": []}`` (no choices).
    drop : bool, default False
        Close the connection without answering (the client sees a connection error).
    """

    content: str | None = None
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: str | bytes | dict[str, Any] | None = None
    drop: bool = False


Responder = Callable[[dict[str, Any]], "str | LoopbackReply"]


def extract_answers(request: dict[str, Any]) -> tuple[str, str, str]:
    """Return ``(question, answer_1, answer_2)`` from a request built with the paper's template."""
    text = request["messages"][-1]["content"]
    question = text.split("[Question]\n", 1)[1].split("\n\n[The Start of Assistant 1's Answer]", 1)[0]
    a1 = text.split("[The Start of Assistant 1's Answer]\n", 1)[1].split("\n\n[The End of Assistant 1's Answer]", 1)[0]
    a2 = text.split("[The Start of Assistant 2's Answer]\n", 1)[1].split("\n\n[The End of Assistant 2's Answer]", 1)[0]
    return question, a1, a2


def length_responder(request: dict[str, Any]) -> str:
    """A toy judge: each answer scores ``1 + min(9, words // 10)``; replies in the paper's format."""
    _, a1, a2 = extract_answers(request)
    s1, s2 = (1 + min(9, len(a.split()) // 10) for a in (a1, a2))
    return f"{s1} {s2}\nScores follow the answers' lengths (toy loopback judge)."


class LoopbackChatServer:
    """A chat-completions endpoint on ``127.0.0.1`` served from a background thread.

    Parameters
    ----------
    responder : callable, default :func:`length_responder`
        ``responder(request_json) -> str | LoopbackReply``, called once per request (from the
        server's threads, so keep it thread-safe).
    port : int, default 0
        TCP port; 0 picks a free one.

    Attributes
    ----------
    url : str
        The ``base_url`` to give a client, ``"http://127.0.0.1:<port>/v1"``.
    requests : list of dict
        Every request body received, in arrival order.
    auth_headers : list of str
        The ``Authorization`` header of every request (to check what clients send).

    Examples
    --------
    >>> with LoopbackChatServer() as server:                                  # doctest: +SKIP
    ...     judge = PairwiseJudge("toy", base_url=server.url, api_key="none")
    """

    def __init__(self, responder: Responder | None = None, *, port: int = 0) -> None:
        self.responder: Responder = responder or length_responder
        self.requests: list[dict[str, Any]] = []
        self.auth_headers: list[str] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("loopback: " + format, *args)

            def _send(self, status: int, body: dict[str, Any] | str | bytes, headers: dict[str, str]) -> None:
                if isinstance(body, bytes):
                    data = body
                elif isinstance(body, str):
                    data = body.encode("utf-8")
                else:
                    data = json.dumps(body).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}}, {})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}, {})
                    return
                with outer._lock:
                    outer.requests.append(body)
                    outer.auth_headers.append(self.headers.get("Authorization", ""))
                try:
                    reply = outer.responder(body)
                except Exception as exc:  # noqa: BLE001 - a failing responder is a server error
                    reply = LoopbackReply(status=500, content=f"responder failed: {exc}")
                if isinstance(reply, str):
                    reply = LoopbackReply(content=reply)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True  # no status line, no body: the client's read fails
                    return
                if reply.body is not None:
                    self._send(reply.status, reply.body, reply.headers)
                    return
                if reply.status != 200:
                    err = {"error": {"message": reply.content or f"HTTP {reply.status}", "type": "loopback_error",
                                     "code": reply.status}}
                    self._send(reply.status, err, reply.headers)
                    return
                self._send(200, _completion(body.get("model", ""), reply.content), reply.headers)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def n_requests(self) -> int:
        """How many chat-completions requests arrived."""
        with self._lock:
            return len(self.requests)

    def start(self) -> LoopbackChatServer:
        """Start serving in a daemon thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-chat", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> LoopbackChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_COUNTER = iter(range(1, 1 << 62))


def _completion(model: str, content: str | None) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-loopback-{next(_COUNTER)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop", "logprobs": None}
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }
