"""The teacher protocol: chat messages in, completions with token usage out."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from elad.errors import EladError


@dataclass(frozen=True)
class Request:
    messages: tuple[dict, ...]  # OpenAI-style {"role": ..., "content": ...}
    max_tokens: int = 256
    temperature: float = 0.0
    n: int = 1
    # Which example this is about. Live backends ignore it; replay teachers look their record up by it.
    example_id: str | None = None
    # Which ask this is when the same messages are sent again on purpose (a re-ask): part of the cache key,
    # so a re-ask is not answered from the cache with the reply it means to replace.
    sample: int = 0
    # A JSON schema the reply must follow ({"name": ..., "schema": {...}}), for backends that support
    # structured output (`Teacher.supports_json_schema`); others ignore it and rely on the prompt.
    json_schema: dict | None = None

    def to_dict(self) -> dict:
        """Everything that was asked, as JSON-ready values (what a durable record of the request keeps)."""
        return {
            "messages": list(self.messages), "max_tokens": self.max_tokens, "temperature": self.temperature,
            "n": self.n, "example_id": self.example_id, "sample": self.sample, "json_schema": self.json_schema,
        }

    @classmethod
    def from_dict(cls, asked: dict) -> "Request":
        return cls(
            messages=tuple(asked["messages"]), max_tokens=asked["max_tokens"], temperature=asked["temperature"],
            n=asked["n"], example_id=asked.get("example_id"), sample=asked.get("sample", 0),
            json_schema=asked.get("json_schema"),
        )


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int  # a reasoning model's hidden reasoning included, as providers bill it
    finish_reason: str = "stop"
    reasoning: str = ""  # the reasoning a server returned beside the reply (`reasoning_content`), if any
    cached_prompt_tokens: int = 0  # of prompt_tokens, those the server read from its prompt cache
    counted: bool = False  # the tokens are elad's count, the server reported none: its bill may be more


@dataclass
class Response:
    completions: list[Completion]
    backend: str
    model: str
    cache_hit: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def prompt_tokens(self) -> int:
        # One prompt is paid once however many completions it yields.
        return self.completions[0].prompt_tokens if self.completions else 0

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.completions)

    @property
    def cached_prompt_tokens(self) -> int:
        return self.completions[0].cached_prompt_tokens if self.completions else 0


@dataclass
class TeacherContext:
    """What a backend may need to be built, beyond its own config: nothing here is task-specific code."""

    count_tokens: Callable[[str], int]  # the tokenizer used to count replayed usage
    dataset: str  # the task's name, for recordings kept per dataset
    split: str  # the split the pool comes from
    data_root: Path | None  # where the task's files live (recordings often sit beside them)
    gold: dict[str, str] = field(default_factory=dict)  # example id -> gold "rationale + answer" text


class TeacherError(EladError):
    """The teacher could not be reached or refused the request, after the backend's retries.

    Nothing usable came back; the example stays unannotated and a rerun asks again. `maybe_billed`: the
    last attempt got no answer at all (a timeout, a dropped connection), so the provider may have
    generated, and billed, a reply nobody received: the ledger charges it at its worst case.
    """

    maybe_billed: bool = False


class TeacherRefused(TeacherError):
    """The server refused this one request as malformed (HTTP 400, 413, 422: e.g. a prompt longer than
    the model's context). Asking again would not help, but other requests may be fine."""


class TeacherReplyError(TeacherError):
    """The teacher answered, but the reply is unusable (not JSON, no choices).

    A provider may have billed it, so the ledger charges it as a call, with the usage the reply
    reported when it reported any (`usage` = (prompt tokens, completion tokens)).
    """

    def __init__(self, message: str, usage: tuple[int, int] | None = None, raw: str = ""):
        super().__init__(message)
        self.usage, self.raw = usage, raw


class Attempts(Protocol):
    """What a teacher that retries tells its caller about each attempt, so that every attempt is reserved
    against the budget before it is sent (a provider may bill an attempt the client abandoned)."""

    def retry(self, maybe_billed: bool) -> None:
        """The last attempt failed and another is about to be sent. `maybe_billed`: the failed one got no
        answer (timeout, dropped connection) and may still be billed. Raises BudgetExhausted when the
        budget cannot hold another attempt."""


class Teacher(Protocol):
    backend: str
    model: str
    supports_json_schema: bool  # honours Request.json_schema (structured output)
    replays: bool  # answers from a recording whatever the prompt says (CLEAR cannot use it; re-asks are pointless)
    keyed_by_example: bool  # the answer depends on Request.example_id (part of the cache key)

    def complete(self, request: Request, attempts: Attempts | None = None) -> Response:
        """One reply. A teacher that sends the request more than once calls `attempts.retry(...)` before
        each attempt after the first."""

    def key(self, request: Request) -> str:
        """What identifies the request's reply (the response cache's key)."""

    def lookup(self, request: Request) -> Response | None:
        """A reply kept from before (`cache_hit=True`, free), or None."""

    def take_unbooked(self) -> list[tuple[Request, Response]]:
        """Replies an earlier process kept but never recorded (once)."""

    def pending(self, request: Request) -> Response | None:
        """The reply to a request an earlier process sent and never received, if it can still be had
        (a batch still at the server: waits for it); None if not. Raises TeacherError when the server
        answered it with an error (nothing billed)."""

    def booked(self, request: Request) -> None:
        """The call that brought this reply is recorded."""


class TeacherBase:
    """The Teacher protocol's defaults: no structured output, no recording, no reply kept (a backend
    subclasses it and overrides what it does; the response cache overrides the last three)."""

    supports_json_schema = False
    replays = False
    keyed_by_example = False

    def key(self, request: Request) -> str:
        return request_key(self.backend, self.model, request, self.keyed_by_example)

    def lookup(self, request: Request) -> Response | None:
        return None

    def take_unbooked(self) -> list[tuple[Request, Response]]:
        return []

    def pending(self, request: Request) -> Response | None:
        return None

    def booked(self, request: Request) -> None:
        return None


def request_key(backend: str, model: str, request: Request, with_example: bool = False,
                options: dict | None = None) -> str:
    """`options`: what else the backend sends that changes the reply (e.g. `reasoning_effort`); only
    when there are any, so that the keys of plain requests stay what they were."""
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
    if options:
        fields["options"] = options
    blob = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
