"""A teacher that sends requests through an OpenAI-style batch API (files + batches endpoints).

Batched requests cost half at OpenAI and come back within the batch's completion window (24 hours,
often minutes). Callers use it like any teacher: each `complete` blocks until its reply is back. The
requests that arrive together (a round's annotations, sent with many in flight) are gathered until none
has arrived for `window` seconds, written as one JSONL file, uploaded, and started as one batch; the
batch is polled until it ends, and each caller gets its own line of the output.

The ledger reserves each request's worst case before `complete` is called, so a batch never holds more
than the budget allows. The batch id and the cache keys of its requests are written to a `BatchLog` (the
run's response cache) as soon as the batch exists: a process killed while waiting leaves its requests
reserved, and the next one asks `pending(request)` for each (`Ledger.recover`), which polls the logged
batch and returns its reply instead of charging it at its worst case. A request that fails inside a batch
(an error line, or no line when the batch expired or was cancelled) is not billed by the provider and
raises TeacherError: the item stays unannotated and a rerun asks again.
"""

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from elad.teachers.base import Attempts, Request, Response, TeacherBase, TeacherError, TeacherRefused, TeacherReplyError
from elad.teachers.openai_compat import OpenAITeacher

log = logging.getLogger(__name__)

ENDED = ("completed", "failed", "expired", "cancelled")


class BatchInterrupted(Exception):
    """The wait for a batch was given up (the teacher is closing). Not a TeacherError: the ledger keeps the
    requests reserved, as for a process that dies, and the next process finds the batch in the log."""


class BatchLog(Protocol):
    """Where batch ids are kept until their replies are (the run's `ResponseCache`)."""

    def add_batch(self, batch_id: str, keys: list[str]) -> None: ...

    def open_batches(self) -> list[tuple[str, list[str]]]: ...

    def close_batch(self, batch_id: str, status: str) -> None: ...


@dataclass
class _Slot:
    request: Request
    done: threading.Event = field(default_factory=threading.Event)
    response: Response | None = None
    error: BaseException | None = None


@dataclass
class _Ended:
    """A batch that ended: its status and its output lines by custom id (error lines included)."""

    batch_id: str
    status: str
    lines: dict[str, dict]
    message: str = ""


class BatchTeacher(TeacherBase):
    """Wraps an OpenAITeacher: same model, key, request bodies and reply parsing, sent in batches."""

    def __init__(self, teacher: OpenAITeacher, log: BatchLog, poll_seconds: float = 30.0, window: float = 1.0,
                 max_requests: int = 1000, completion_window: str = "24h"):
        self.teacher, self.log = teacher, log
        self.backend, self.model = teacher.backend, teacher.model
        self.poll_seconds, self.window, self.completion_window = poll_seconds, window, completion_window
        self.concurrency = max_requests  # requests in flight: all of a round's, so that they share a batch
        self._client = teacher.client.with_options(max_retries=teacher.max_retries)  # nothing here is billed
        self._gathering: dict[str, _Slot] = {}
        self._last_arrival = 0.0
        self._arrived = threading.Condition()
        self._resume_lock = threading.Lock()
        self._logged: dict[str, str] | None = None  # key -> batch id of the batches an earlier process left
        self._ended: dict[str, _Ended] = {}
        self.batches_sent = 0
        self._closing = threading.Event()

    supports_json_schema = property(lambda self: self.teacher.supports_json_schema)

    def key(self, request: Request) -> str:
        return self.teacher.key(request)

    def __repr__(self) -> str:
        return f"BatchTeacher({self.teacher!r})"

    def stop_waiting(self) -> None:
        """Give up the batches being waited for: their requests stay reserved and their ids logged, for
        the next process to pick up."""
        self._closing.set()

    def close(self) -> None:
        self.stop_waiting()
        self.teacher.close()

    # --- a request joins the batch being gathered ---------------------------------------------------

    def complete(self, request: Request, attempts: Attempts | None = None) -> Response:
        slot, leads = self._join(request)
        if leads:
            self._send(self._gathered())
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.response

    def _join(self, request: Request) -> tuple[_Slot, bool]:
        """The request's slot in the batch being gathered; whether this caller sends that batch (the
        first to arrive does)."""
        key = self.key(request)
        with self._arrived:
            leads = not self._gathering
            slot = self._gathering.setdefault(key, _Slot(request))  # the same request twice: one line
            self._last_arrival = time.monotonic()
            self._arrived.notify_all()
        return slot, leads

    def _gathered(self) -> dict[str, _Slot]:
        """The batch, once no request has joined it for `window` seconds (or it is full)."""
        with self._arrived:
            while len(self._gathering) < self.concurrency:
                quiet = self._last_arrival + self.window - time.monotonic()
                if quiet <= 0:
                    break
                self._arrived.wait(quiet)
            slots, self._gathering = self._gathering, {}
        return slots

    def _send(self, slots: dict[str, _Slot]) -> None:
        """Upload, start and wait for one batch; every slot gets its reply or its error."""
        try:
            batch_id = self._start(slots)
            ended = self._wait(batch_id)
        except self.teacher.openai.OpenAIError as error:
            failure = self.teacher.failed(error)
            failure.maybe_billed = False  # the batch did not start, or is still at the server (logged)
            self._fail(slots, failure)
            return
        except BaseException as error:  # interrupted: every request waiting on it stops too, reservations open
            self._fail(slots, error)
            raise
        try:
            for key, slot in slots.items():
                try:
                    slot.response = self._reply(ended, key, slot.request)
                except Exception as error:  # noqa: BLE001 - one bad line must not leave the others waiting
                    slot.error = error
                finally:
                    slot.done.set()
        finally:
            self.log.close_batch(batch_id, ended.status)

    @staticmethod
    def _fail(slots: dict[str, _Slot], error: BaseException) -> None:
        for slot in slots.values():
            slot.error = error
            slot.done.set()

    def _start(self, slots: dict[str, _Slot]) -> str:
        lines = [{"custom_id": key, "method": "POST", "url": "/v1/chat/completions",
                  "body": self.teacher.body(slot.request)} for key, slot in slots.items()]
        content = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8")
        uploaded = self._client.files.create(file=("elad-batch.jsonl", content), purpose="batch")
        batch = self._client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                            completion_window=self.completion_window)
        self.log.add_batch(batch.id, list(slots))  # before waiting: a killed run finds it again
        self.batches_sent += 1
        log.info("teacher batch %s: %d requests sent", batch.id, len(slots))
        return batch.id

    # --- a batch ends ----------------------------------------------------------------------------------

    def _wait(self, batch_id: str) -> _Ended:
        """Poll the batch until it ends; its output and error lines by custom id."""
        while True:
            batch = self._client.batches.retrieve(batch_id)
            if batch.status in ENDED:
                break
            counts = batch.request_counts
            log.info("teacher batch %s: %s (%s of %s done)", batch_id, batch.status,
                     getattr(counts, "completed", "?"), getattr(counts, "total", "?"))
            if self._closing.wait(self.poll_seconds):
                raise BatchInterrupted(f"teacher batch {batch_id}: stopped waiting (the run is closing); "
                                       "a rerun picks its replies up")
        lines: dict[str, dict] = {}
        for file_id in (batch.error_file_id, batch.output_file_id):  # an output line wins over an error line
            if file_id:
                for number, text in enumerate(self._client.files.content(file_id).text.splitlines(), start=1):
                    if not text.strip():
                        continue
                    line = _line(text)
                    if line is None:  # its request ends "without a reply", and a rerun asks again
                        log.warning("teacher batch %s: file %s line %d is not a reply line; skipped",
                                    batch_id, file_id, number)
                        continue
                    lines[line["custom_id"]] = line
        errors = getattr(batch, "errors", None)
        message = "; ".join(str(getattr(e, "message", e)) for e in (getattr(errors, "data", None) or []))
        return _Ended(batch_id, batch.status, lines, message)

    def _reply(self, ended: _Ended, key: str, request: Request) -> Response:
        line = ended.lines.get(key)
        where = f"teacher '{self.model}' batch {ended.batch_id}"
        if line is None:
            raise TeacherError(f"{where} ended {ended.status} without a reply to this request"
                               + (f": {ended.message}" if ended.message else ""))
        reply = line.get("response") or {}
        status, body = reply.get("status_code"), reply.get("body") or {}
        if line.get("error") or status != 200:
            detail = (line.get("error") or body.get("error") or {}).get("message", "no detail")
            failure = TeacherRefused if status in (400, 413, 422) else TeacherError
            raise failure(f"{where} answered this request with an error (HTTP {status}): "
                          f"{self.teacher.redacted(str(detail))}")
        try:
            completion = self.teacher.openai.types.chat.ChatCompletion.model_validate(body)
        except ValueError as error:  # pydantic's ValidationError: a 200 whose body is no chat completion
            raise TeacherReplyError(f"{where} sent a reply that is not a chat completion ({error})",
                                    raw=json.dumps(body)[:2000]) from None
        response = self.teacher.response(request, completion)
        response.meta["batch"] = ended.batch_id
        return response

    # --- resuming ------------------------------------------------------------------------------------------

    def pending(self, request: Request) -> Response | None:
        """The reply to a request an earlier process sent in a batch it did not see end: polls the batch
        (waiting for it to end), or None when no logged batch holds the request."""
        key = self.key(request)
        with self._resume_lock:
            if self._logged is None:
                self._logged = {k: batch_id for batch_id, keys in self.log.open_batches() for k in keys}
            batch_id = self._logged.get(key)
            if batch_id is None:
                return None
            if batch_id not in self._ended:
                log.info("teacher batch %s: waiting for the batch an earlier run sent", batch_id)
                self._ended[batch_id] = self._wait(batch_id)
                self.log.close_batch(batch_id, self._ended[batch_id].status)
        response = self._reply(self._ended[batch_id], key, request)  # TeacherError: not answered, not billed
        response.meta["recovered"] = True
        return response


def _line(text: str) -> dict | None:
    """One line of a batch's output or error file, or None where it is no reply line (not JSON, no
    custom id)."""
    try:
        line = json.loads(text)
    except ValueError:
        return None
    return line if isinstance(line, dict) and isinstance(line.get("custom_id"), str) else None
