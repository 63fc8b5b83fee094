"""The annotator protocol: an example (and the student's own explanation) in, a training target out."""

from dataclasses import dataclass, field
from typing import Protocol

from elad.tasks import Example


@dataclass
class Annotation:
    annotator: str
    rationale: str
    answer: str
    target: str  # what the student is trained to write
    raw: str  # the teacher's reply, verbatim
    details: dict = field(default_factory=dict)  # e.g. CLEAR's step verdicts


@dataclass
class Rejection:
    """The teacher answered, but nothing usable came back (the call is still paid and recorded)."""

    reason: str
    raw: str


class Annotator(Protocol):
    name: str

    def annotate(self, example: Example, student_explanation: str | None = None) -> Annotation | Rejection: ...
