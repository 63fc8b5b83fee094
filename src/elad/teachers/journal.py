"""The journal: the ledger's durable book of teacher calls, written before a request leaves.

The ledger writes a *reservation* (the request, its key and its worst-case cost) to the journal before
the request is sent, and settles it when the attempt ends: `settle` records the reply and closes the
reservation in one transaction, `release` closes it unbilled (the server answered with an error status),
`lose` charges it at its worst case (no reply came back, and the provider may bill one all the same).
A reservation still open when a process starts belongs to a process that died with the request in
flight: the ledger settles it with the reply if the response cache caught one, and loses it otherwise.
So a crash at any moment can leave budget unused, never overspent.

The run store implements it (`elad.store.journal.StoreJournal`); `MemoryJournal` keeps the same book in
memory for uses without a run directory.
"""

import itertools
import threading
from dataclasses import dataclass
from typing import Protocol

from elad.teachers.base import Request, Response


@dataclass(frozen=True)
class Reservation:
    id: int
    key: str  # the response cache's key of the request
    request: Request
    estimate: int  # the prompt tokens counted before sending (without the safety margin)
    prompt_tokens: int  # the worst case: prompt estimate with its margin, and max_tokens per completion
    completion_tokens: int
    dollars: float


@dataclass(frozen=True)
class Book:
    """What the journal holds as spent (every charged call, cache hits excluded)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    dollars: float = 0.0


class Journal(Protocol):
    def reserve(self, key: str, request: Request, estimate: int, prompt_tokens: int, completion_tokens: int,
                dollars: float) -> Reservation:
        """Durable before it returns."""

    def settle(self, reservation: Reservation, response: Response, dollars: float) -> None:
        """Record the paid reply and close the reservation, in one transaction."""

    def release(self, reservation: Reservation) -> None:
        """Close the reservation, unbilled."""

    def lose(self, reservation: Reservation) -> None:
        """Record the call at its worst case (no reply came back) and close the reservation."""

    def record(self, request: Request, response: Response, dollars: float) -> None:
        """A call with no reservation: a cache hit (free), or a reply recovered from the cache alone."""

    def open(self) -> list[Reservation]:
        """Reservations of earlier processes that were never settled, oldest first."""

    def closed(self, key: str) -> bool:
        """Whether a reservation with this key was settled, released or lost."""

    def book(self) -> Book: ...

    def prompt_ratio(self) -> float:
        """The largest ratio of billed to estimated prompt tokens over the calls settled with the usage the
        provider reported (0 if none): where a resumed ledger's margin starts."""


class MemoryJournal:
    """The journal in memory: the same bookkeeping, nothing durable (for calls without a run store)."""

    def __init__(self):
        self._ids = itertools.count(1)
        self._open: dict[int, Reservation] = {}
        self._closed: set[str] = set()
        self._book = Book()
        self._lock = threading.Lock()

    def reserve(self, key, request, estimate, prompt_tokens, completion_tokens, dollars) -> Reservation:
        reservation = Reservation(next(self._ids), key, request, estimate, prompt_tokens, completion_tokens, dollars)
        with self._lock:
            self._open[reservation.id] = reservation
        return reservation

    def settle(self, reservation, response, dollars) -> None:
        with self._lock:
            self._close(reservation)
            self._add(response.prompt_tokens, response.completion_tokens, dollars)

    def release(self, reservation) -> None:
        with self._lock:
            self._close(reservation)

    def lose(self, reservation) -> None:
        with self._lock:
            self._close(reservation)
            self._add(reservation.prompt_tokens, reservation.completion_tokens, reservation.dollars)

    def record(self, request, response, dollars) -> None:
        if not response.cache_hit:
            with self._lock:
                self._add(response.prompt_tokens, response.completion_tokens, dollars)

    def open(self) -> list[Reservation]:
        return []  # nothing outlives the process that reserved it

    def closed(self, key: str) -> bool:
        with self._lock:
            return key in self._closed

    def book(self) -> Book:
        with self._lock:
            return self._book

    def prompt_ratio(self) -> float:
        return 0.0  # a new process knows nothing of an earlier one's calls

    def _close(self, reservation: Reservation) -> None:
        self._open.pop(reservation.id, None)
        self._closed.add(reservation.key)

    def _add(self, prompt: int, completion: int, dollars: float) -> None:
        b = self._book
        self._book = Book(b.calls + 1, b.prompt_tokens + prompt, b.completion_tokens + completion, b.dollars + dollars)
