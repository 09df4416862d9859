"""A persistent SQLite cache of judge replies, so a rerun never pays for a judgment twice."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["JudgeCache", "judgment_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    judge_model TEXT NOT NULL,
    reply TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def judgment_key(
    judge_model: str,
    system_prompt: str,
    template: str,
    question: str,
    answer_1: str,
    answer_2: str,
    order: int,
    params: Mapping[str, object] | None = None,
) -> str:
    """SHA-256 hex digest identifying one judge request.

    The key covers the judge model, the system prompt, the template (with its instruction
    filled in), the question, the two answers in presentation order, the order index and the
    request parameters (temperature, max_tokens, ...): change any of them and the cache misses.
    Nothing secret goes in.
    """
    payload = json.dumps(
        [1, judge_model, system_prompt, template, question, answer_1, answer_2, int(order), dict(params or {})],
        ensure_ascii=False,
        sort_keys=True,
        default=str,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class JudgeCache:
    """Judge replies stored in one SQLite file, safe to share between threads of one process.

    Each judgment is committed as soon as it arrives, so a crash loses at most the requests in
    flight. Only the key, the judge model name, the raw reply and a timestamp are stored (no
    API key, no request headers).

    Parameters
    ----------
    path : str or Path
        The database file, or ``":memory:"``. The file (and its parent folders) is created on
        first use, not at construction, so a cache may live inside a run directory that the
        loop has yet to initialise.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @property
    def _conn(self) -> sqlite3.Connection:
        # Called with self._lock held.
        if self._db is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
            with db:
                if self.path != ":memory:":
                    db.execute("PRAGMA journal_mode=WAL")
                db.execute(_SCHEMA)
            self._db = db
        return self._db

    def get(self, key: str) -> str | None:
        """Return the stored reply for ``key``, or None."""
        with self._lock:
            row = self._conn.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put(self, key: str, judge_model: str, reply: str) -> None:
        """Store (or replace) the reply for ``key`` and commit at once."""
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO replies (key, judge_model, reply, created) VALUES (?, ?, ?, ?)",
                (key, judge_model, reply, time.time()),
            )

    def delete(self, key: str) -> None:
        """Forget one reply (e.g. to ask the judge again about an invalid reply)."""
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM replies WHERE key = ?", (key,))

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> JudgeCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JudgeCache({self.path!r})"
