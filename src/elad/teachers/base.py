"""The teacher protocol: chat messages in, completions with token usage out."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Request:
    messages: tuple[dict, ...]  # OpenAI-style {"role": ..., "content": ...}
    max_tokens: int = 256
    temperature: float = 0.0
    n: int = 1
    # Which example this is about. Live backends ignore it; replay teachers look their record up by it.
    example_id: str | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"


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


@dataclass
class TeacherContext:
    """What a backend may need to be built, beyond its own config: nothing here is task-specific code."""

    count_tokens: Callable[[str], int]  # the tokenizer used to count replayed usage
    dataset: str  # the task's name, for recordings kept per dataset
    split: str  # the split the pool comes from
    data_root: Path | None  # where the task's files live (recordings often sit beside them)
    gold: dict[str, str] = field(default_factory=dict)  # example id -> gold "rationale + answer" text


class Teacher(Protocol):
    backend: str
    model: str

    def complete(self, request: Request) -> Response: ...
