"""The response cache: a teacher's answer is paid for once, however often it is asked again.

One SQLite file, keyed by a hash of backend, model, messages, sampling parameters (max tokens,
temperature, n, JSON schema) and the sample index; the example id joins the key for teachers whose
answer depends on it (replay). Only requests and replies are stored: never a key, a header or a URL.
"""

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

from elad.teachers.base import Completion, Request, Response, Teacher

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, backend TEXT NOT NULL, model TEXT NOT NULL, request TEXT NOT NULL,
    completions TEXT NOT NULL, created_at REAL NOT NULL)
"""


def request_key(backend: str, model: str, request: Request, with_example: bool = False) -> str:
    fields = {
        "backend": backend,
        "model": model,
        "messages": list(request.messages),
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "n": request.n,
        "sample": request.sample,
        "json_schema": request.json_schema,
    }
    if with_example:
        fields["example_id"] = request.example_id
    blob = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """A thread-safe SQLite store of replies (one connection, serialised by a lock, WAL journal)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(SCHEMA)

    def get(self, key: str) -> list[Completion] | None:
        with self._lock:
            row = self.db.execute("SELECT completions FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return [Completion(**c) for c in json.loads(row[0])]

    def put(self, key: str, backend: str, model: str, request: Request, completions: list[Completion]) -> None:
        stored_request = {
            "messages": list(request.messages), "max_tokens": request.max_tokens, "temperature": request.temperature,
            "n": request.n, "sample": request.sample, "example_id": request.example_id,
            "json_schema": request.json_schema,
        }
        rows = [
            {"text": c.text, "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
             "finish_reason": c.finish_reason}
            for c in completions
        ]
        with self._lock:
            self.db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                (key, backend, model, json.dumps(stored_request), json.dumps(rows), time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self.db.close()


class CachedTeacher:
    """Wraps a teacher: answers from the cache when it can (`cache_hit=True`, charged nothing by the
    ledger), else asks the teacher and keeps a whole reply (one with every completion it asked for)."""

    def __init__(self, teacher: Teacher, cache: ResponseCache):
        self.teacher, self.cache = teacher, cache
        self.backend, self.model = teacher.backend, teacher.model
        self.hits = self.misses = 0
        self._count_lock = threading.Lock()

    def __getattr__(self, name):  # supports_json_schema, replays, ... of the wrapped teacher
        if name == "teacher":
            raise AttributeError(name)
        return getattr(self.teacher, name)

    def key(self, request: Request) -> str:
        return request_key(self.backend, self.model, request, getattr(self.teacher, "keyed_by_example", False))

    def lookup(self, request: Request) -> Response | None:
        completions = self.cache.get(self.key(request))
        if completions is None:
            return None
        with self._count_lock:
            self.hits += 1
        return Response(completions=completions, backend=self.backend, model=self.model, cache_hit=True)

    def complete(self, request: Request) -> Response:
        hit = self.lookup(request)
        if hit is not None:
            return hit
        response = self.teacher.complete(request)
        with self._count_lock:
            self.misses += 1
        if response.completions and len(response.completions) >= request.n and not response.cache_hit:
            self.cache.put(self.key(request), self.backend, self.model, request, response.completions)
        return response
