"""The run store as the ledger's journal (`elad.teachers.journal.Journal`): reservations and charged calls
in `run.db`, so that what was spent survives any crash.

A reservation row is committed (synchronous=FULL: past a power cut too) before its request leaves; its
reply is recorded in `teacher_calls` and the reservation closed in one transaction. The journal has its
own connection, shared by the threads that send requests (a lock serialises them), beside the store's.
"""

import json
import sqlite3
import threading
import time
from pathlib import Path

from elad.teachers.base import Request
from elad.teachers.journal import Book, Reservation

SCHEMA = """
CREATE TABLE IF NOT EXISTS reservations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, round INTEGER NOT NULL, example_id TEXT,
    purpose TEXT NOT NULL, request TEXT NOT NULL, estimate INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL, dollars REAL NOT NULL, state TEXT NOT NULL, created_at REAL NOT NULL,
    closed_at REAL);
CREATE INDEX IF NOT EXISTS reservations_by_key ON reservations (key, state)
"""
# teacher_calls gains the reservation a row settles (unique: a call is recorded once) and its status:
# 'paid' (a reply), 'unusable' (a paid reply with nothing usable), 'unreported' (a reply without usage,
# charged at its worst case), 'lost' (no reply; charged at its worst case), 'hit' (the response cache's).
CALL_COLUMNS = {"reservation": "INTEGER", "status": "TEXT NOT NULL DEFAULT 'paid'"}


class StoreJournal:
    def __init__(self, path: str | Path, purpose: str = "cot"):
        self.path = Path(path)
        self.round, self.purpose = 0, purpose
        self._lock = threading.Lock()
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA synchronous=FULL")
        with self._transaction():
            for statement in (s.strip() for s in SCHEMA.split(";") if s.strip()):
                self.db.execute(statement)
            have = {row[1] for row in self.db.execute("PRAGMA table_info(teacher_calls)")}
            for name, kind in CALL_COLUMNS.items():
                if name not in have:
                    self.db.execute(f"ALTER TABLE teacher_calls ADD COLUMN {name} {kind}")
            self.db.execute("CREATE UNIQUE INDEX IF NOT EXISTS calls_by_reservation ON teacher_calls (reservation)")

    def at(self, round_: int, purpose: str) -> None:
        """Calls from now on belong to this round and annotation method."""
        self.round, self.purpose = round_, purpose

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # --- the journal -------------------------------------------------------------------------------

    def reserve(self, key, request, estimate, prompt_tokens, completion_tokens, dollars) -> Reservation:
        row = (key, self.round, request.example_id, self.purpose, json.dumps(request.to_dict()), estimate,
               prompt_tokens, completion_tokens, dollars, time.time())
        with self._transaction():
            cursor = self.db.execute(
                "INSERT INTO reservations (key, round, example_id, purpose, request, estimate, prompt_tokens,"
                " completion_tokens, dollars, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)", row)
        return Reservation(cursor.lastrowid, key, request, estimate, prompt_tokens, completion_tokens, dollars)

    def settle(self, reservation, response, dollars) -> None:
        with self._transaction():
            self._insert_call(reservation, response.backend, response.model, [c.text for c in response.completions],
                              response.prompt_tokens, response.completion_tokens, dollars, _status(response))
            self._close(reservation, "paid")

    def release(self, reservation) -> None:
        with self._transaction():
            self._close(reservation, "void")

    def lose(self, reservation) -> None:
        with self._transaction():
            self._insert_call(reservation, "", "", [], reservation.prompt_tokens, reservation.completion_tokens,
                              reservation.dollars, "lost")
            self._close(reservation, "lost")

    def record(self, request, response, dollars) -> None:
        with self._transaction():
            self._insert_call(None, response.backend, response.model, [c.text for c in response.completions],
                              response.prompt_tokens, response.completion_tokens, dollars,
                              "hit" if response.cache_hit else "paid", request=request,
                              cache_hit=response.cache_hit)

    def open(self) -> list[Reservation]:
        with self._lock:
            rows = self.db.execute("SELECT * FROM reservations WHERE state = 'open' ORDER BY id").fetchall()
        return [
            Reservation(r["id"], r["key"], Request.from_dict(json.loads(r["request"])), r["estimate"],
                        r["prompt_tokens"], r["completion_tokens"], r["dollars"])
            for r in rows
        ]

    def closed(self, key: str) -> bool:
        with self._lock:
            row = self.db.execute("SELECT 1 FROM reservations WHERE key = ? AND state != 'open' LIMIT 1", (key,))
            return row.fetchone() is not None

    def book(self) -> Book:
        with self._lock:
            row = self.db.execute(
                "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0),"
                " COALESCE(SUM(dollars), 0) FROM teacher_calls WHERE cache_hit = 0").fetchone()
        return Book(*row)

    def prompt_ratio(self) -> float:
        with self._lock:
            row = self.db.execute(
                "SELECT MAX(1.0 * c.prompt_tokens / r.estimate) FROM teacher_calls c JOIN reservations r"
                " ON c.reservation = r.id WHERE c.status IN ('paid', 'unusable') AND r.estimate > 0").fetchone()
        return float(row[0] or 0.0)

    # --- rows --------------------------------------------------------------------------------------

    def _insert_call(self, reservation, backend, model, texts, prompt_tokens, completion_tokens, dollars, status,
                     request=None, cache_hit=False) -> None:
        """A teacher_calls row: for a reservation, with the round, item and purpose it was made for."""
        if reservation is not None:
            place = self.db.execute("SELECT round, example_id, purpose FROM reservations WHERE id = ?",
                                    (reservation.id,)).fetchone()
            round_, example_id, purpose = place["round"], place["example_id"], place["purpose"]
            request = reservation.request
        else:
            round_, example_id, purpose = self.round, request.example_id, self.purpose
        self.db.execute(
            "INSERT OR IGNORE INTO teacher_calls (round, example_id, purpose, backend, model, messages, completions,"
            " prompt_tokens, completion_tokens, dollars, cache_hit, created_at, reservation, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (round_, example_id, purpose, backend, model, json.dumps(list(request.messages)), json.dumps(texts),
             prompt_tokens, completion_tokens, dollars, int(cache_hit), time.time(),
             None if reservation is None else reservation.id, status),
        )

    def _close(self, reservation, state: str) -> None:
        self.db.execute("UPDATE reservations SET state = ?, closed_at = ? WHERE id = ? AND state = 'open'",
                        (state, time.time(), reservation.id))

    def _transaction(self):
        return _Transaction(self.db, self._lock)


def _status(response) -> str:
    if response.meta.get("usage") == "worst case":
        return "unreported"
    return "unusable" if any(c.finish_reason == "error" for c in response.completions) else "paid"


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT under the journal's lock; ROLLBACK on any exception."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock):
        self.db, self.lock = db, lock

    def __enter__(self):
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.db

    def __exit__(self, kind, error, trace):
        try:
            self.db.execute("ROLLBACK" if kind is not None else "COMMIT")
        finally:
            self.lock.release()
        return False
