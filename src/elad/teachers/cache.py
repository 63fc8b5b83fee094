"""The response cache: a teacher's answer is paid for once, however often it is asked again.

One SQLite file, keyed by a hash of backend, model, messages, sampling parameters (max tokens,
temperature, n, JSON schema) and the sample index; the example id joins the key for teachers whose
answer depends on it (replay). Only requests and replies are stored: never a key, a header or a URL.

A reply is kept *unbooked* when it arrives and marked booked once the ledger's caller has recorded the
call (`CachedTeacher.booked`). A reply still unbooked when a later process opens the cache was paid for by
a process that died before recording it: `take_unbooked` hands those to the ledger once, which charges
and records them, so a crash between the reply and its record neither hides the spend nor pays twice.
"""

import json
import sqlite3
import threading
import time
from pathlib import Path

from elad.teachers.base import Attempts, Completion, Request, Response, Teacher, TeacherBase

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, backend TEXT NOT NULL, model TEXT NOT NULL, request TEXT NOT NULL,
    completions TEXT NOT NULL, created_at REAL NOT NULL, booked INTEGER NOT NULL DEFAULT 1)
"""


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
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(responses)")}
        if "booked" not in columns:  # a cache written before replies were booked: all of them were
            self.db.execute("ALTER TABLE responses ADD COLUMN booked INTEGER NOT NULL DEFAULT 1")

    def get(self, key: str) -> list[Completion] | None:
        with self._lock:
            row = self.db.execute("SELECT completions FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return [Completion(**c) for c in json.loads(row[0])]

    def put(
        self, key: str, backend: str, model: str, request: Request, completions: list[Completion], booked: bool = True
    ) -> None:
        rows = [
            {"text": c.text, "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
             "finish_reason": c.finish_reason}
            for c in completions
        ]
        with self._lock:
            self.db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, backend, model, json.dumps(request.to_dict()), json.dumps(rows), time.time(), int(booked)),
            )

    def mark_booked(self, key: str) -> None:
        with self._lock:
            self.db.execute("UPDATE responses SET booked = 1 WHERE key = ?", (key,))

    def unbooked(self) -> list[tuple[str, str, str, Request, list[Completion]]]:
        """(key, backend, model, request, completions) of every reply not marked booked, oldest first."""
        with self._lock:
            rows = self.db.execute(
                "SELECT key, backend, model, request, completions FROM responses WHERE booked = 0 ORDER BY created_at"
            ).fetchall()
        found = []
        for key, backend, model, request, completions in rows:
            completions_ = [Completion(**c) for c in json.loads(completions)]
            found.append((key, backend, model, Request.from_dict(json.loads(request)), completions_))
        return found

    def __len__(self) -> int:
        with self._lock:
            return self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self.db.close()


class CachedTeacher(TeacherBase):
    """Wraps a teacher: answers from the cache when it can (`cache_hit=True`, charged nothing by the
    ledger), else asks the teacher and keeps a whole reply (one with every completion it asked for)."""

    def __init__(self, teacher: Teacher, cache: ResponseCache):
        self.teacher, self.cache = teacher, cache
        self.backend, self.model = teacher.backend, teacher.model
        self.hits = self.misses = 0
        self._count_lock = threading.Lock()
        self._mine: set[str] = set()  # keys this object put in the cache (booked or about to be)
        self._unbooked_taken = False

    # The wrapped teacher's capabilities (its own may change, e.g. a server found to refuse JSON schemas).
    supports_json_schema = property(lambda self: self.teacher.supports_json_schema)
    replays = property(lambda self: self.teacher.replays)
    keyed_by_example = property(lambda self: self.teacher.keyed_by_example)

    def __getattr__(self, name):  # anything else of the wrapped teacher (close, concurrency, ...)
        if name == "teacher":
            raise AttributeError(name)
        return getattr(self.teacher, name)

    def lookup(self, request: Request) -> Response | None:
        completions = self.cache.get(self.key(request))
        if completions is None:
            return None
        with self._count_lock:
            self.hits += 1
        return Response(completions=completions, backend=self.backend, model=self.model, cache_hit=True)

    def complete(self, request: Request, attempts: Attempts | None = None) -> Response:
        hit = self.lookup(request)
        if hit is not None:
            return hit
        response = self.teacher.complete(request, attempts)
        with self._count_lock:
            self.misses += 1
        if response.completions and len(response.completions) >= request.n and not response.cache_hit:
            key = self.key(request)
            with self._count_lock:
                self._mine.add(key)
            self.cache.put(key, self.backend, self.model, request, response.completions, booked=False)
        return response

    def booked(self, request: Request) -> None:
        """The call that brought this reply is recorded (or there is nowhere to record it)."""
        self.cache.mark_booked(self.key(request))

    def take_unbooked(self) -> list[tuple[Request, Response]]:
        """Replies an earlier process paid for and kept here but died before recording: (request, the
        reply as a paid response, `meta['recovered']`). Given once per CachedTeacher; book each with
        `booked(request)` once it is recorded."""
        with self._count_lock:
            if self._unbooked_taken:
                return []
            self._unbooked_taken = True
            mine = set(self._mine)
        return [
            (request, Response(completions=completions, backend=backend, model=model, meta={"recovered": True}))
            for key, backend, model, request, completions in self.cache.unbooked()
            if key not in mine
        ]
