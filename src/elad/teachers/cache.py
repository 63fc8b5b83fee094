"""The response cache's teacher side: a teacher's answer is paid for once, however often it is asked again.

`CachedTeacher` answers from a `ReplyCache` when it can and keeps every whole reply it buys; the cache's
storage is the run store's (`elad.store.ResponseCache`, one SQLite file beside `run.db`), handed in
by whoever builds the teacher. Keys: `request_key` (backend, model, messages, sampling parameters and the
sample index; the example id for teachers whose answer depends on it). Only requests and replies are
stored: never a key, a header or a URL.

A reply is kept *unbooked* when it arrives and marked booked once the ledger has recorded its call
(`CachedTeacher.booked`). A reply still unbooked when a later process starts was paid for by a process
that died before recording it: the ledger settles it then (see `Ledger.recover`).
"""

import threading
from typing import Protocol

from elad.teachers.base import Attempts, Completion, Request, Response, Teacher, TeacherBase


class ReplyCache(Protocol):
    """Where replies are kept, by key (the run store's `ResponseCache`)."""

    def get(self, key: str) -> list[Completion] | None: ...

    def put(self, key: str, backend: str, model: str, request: Request, completions: list[Completion],
            booked: bool = True) -> None: ...

    def mark_booked(self, key: str) -> None: ...

    def unbooked(self) -> list[tuple[str, str, str, Request, list[Completion]]]: ...


class CachedTeacher(TeacherBase):
    """Wraps a teacher: answers from the cache when it can (`cache_hit=True`, charged nothing by the
    ledger), else asks the teacher and keeps a whole reply (one with every completion it asked for)."""

    def __init__(self, teacher: Teacher, cache: ReplyCache):
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

    def key(self, request: Request) -> str:
        return self.teacher.key(request)  # the wrapped teacher knows what else changes its reply (options)

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

    def pending(self, request: Request) -> Response | None:
        """The wrapped teacher's reply to a request an earlier process sent (a batch), kept like any reply."""
        response = self.teacher.pending(request)
        if response is not None and len(response.completions) >= request.n:
            self.cache.put(self.key(request), self.backend, self.model, request, response.completions, booked=False)
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
