"""The teacher's response cache on disk: one SQLite file per run (`teacher_cache.db`, WAL), a row per
whole reply, keyed by `elad.teachers.base.request_key`. `CachedTeacher` (teachers/cache.py) uses it
through the `ReplyCache` protocol; here is only the storage. It also logs the batches a batch teacher
sent (`BatchLog`, teachers/batch.py) until they end, so that a killed run finds them again.
"""

import dataclasses
import json
import sqlite3
import threading
import time
from pathlib import Path

from elad.teachers.base import Completion, Request

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, backend TEXT NOT NULL, model TEXT NOT NULL, request TEXT NOT NULL,
    completions TEXT NOT NULL, created_at REAL NOT NULL, booked INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, keys TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL);
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
        self.db.executescript(SCHEMA)
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
        rows = [dataclasses.asdict(c) for c in completions]
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

    def add_batch(self, batch_id: str, keys: list[str]) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO batches VALUES (?, ?, 'open', ?)",
                            (batch_id, json.dumps(keys), time.time()))

    def open_batches(self) -> list[tuple[str, list[str]]]:
        """(batch id, the cache keys of its requests) of every batch not yet seen to end, oldest first."""
        with self._lock:
            rows = self.db.execute(
                "SELECT batch_id, keys FROM batches WHERE status = 'open' ORDER BY created_at").fetchall()
        return [(batch_id, json.loads(keys)) for batch_id, keys in rows]

    def close_batch(self, batch_id: str, status: str) -> None:
        with self._lock:
            self.db.execute("UPDATE batches SET status = ? WHERE batch_id = ?", (status, batch_id))

    def __len__(self) -> int:
        with self._lock:
            return self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self.db.close()
