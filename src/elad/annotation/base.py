"""The annotator protocol: an example (and the student's own explanation) in, a training target out."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from elad.tasks import Example, Task
from elad.teachers import Ledger, Request, Teacher
from elad.teachers.base import TeacherRefused, TeacherReplyError
from elad.teachers.concurrent import in_flight


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
    details: dict = field(default_factory=dict)  # the same counts an Annotation's details carry


class Annotator(Protocol):
    name: str
    reads_student_explanation: bool  # the loop must pass each item's greedy student explanation (CLEAR)

    def annotate(self, example: Example, student_explanation: str | None = None) -> Annotation | Rejection: ...

    def annotate_many(self, items: Iterable["Item"], concurrency: int = 1
                      ) -> Iterator[tuple[Example, Annotation | Rejection]]: ...


Item = Example | tuple[Example, str | None]


class TeacherAnnotator:
    """What annotators share: the teacher, the ledger, sampling settings, and N annotations in flight."""

    name = "annotator"
    reads_student_explanation = False

    def __init__(
        self,
        task: Task,
        teacher: Teacher,
        ledger: Ledger,
        max_tokens: int = 256,
        *,
        temperature: float = 0.0,
        few_shot: int = 0,
        gold_check: str = "off",
        seed: int = 0,
    ):
        if gold_check not in ("off", "drop", "reask"):
            raise ValueError(f"gold_check must be off, drop or reask, not {gold_check!r}")
        self.task, self.teacher, self.ledger = task, teacher, ledger
        self.max_tokens, self.temperature = max_tokens, temperature
        self.few_shot, self.gold_check, self.seed = few_shot, gold_check, seed

    def annotate(self, example: Example, student_explanation: str | None = None) -> Annotation | Rejection:
        raise NotImplementedError

    def annotate_many(self, items: Iterable[Item], concurrency: int = 1) -> Iterator[tuple[Example, Annotation | Rejection]]:
        """(example, result) as each finishes, `concurrency` annotations in flight.

        Items are examples or (example, student explanation) pairs. The ledger's `on_call` runs in the
        calling thread, as soon as the call ends (and always before the result of the annotation that made
        the call is yielded), so a paid reply is recorded even if the process dies mid-item. If a call
        fails (BudgetExhausted, TeacherError), no new annotation starts; those in flight finish and
        are yielded, then the error is raised: what was not yielded was not annotated.
        """
        pairs = (item if isinstance(item, tuple) else (item, None) for item in items)
        with self.ledger.deferred():
            for (example, explanation), result in in_flight(
                lambda pair: self.annotate(*pair), pairs, concurrency, between=self.ledger.flush,
                interrupt=getattr(self.teacher, "stop_waiting", None),
            ):
                self.ledger.flush()
                yield example, result

    # --- helpers for subclasses ----------------------------------------------------------------------

    def ask(self, request: Request, details: dict) -> str | None:
        """The reply's text; an unusable reply (not JSON, no choices) is asked once more, then None; a
        request the server refuses (HTTP 400: too long for the model, say) gives None at once. Counts the
        calls in `details['calls']`, unusable replies in `details['bad_replies']`; the last problem is in
        `details['last_error']`. Other teacher errors (unreachable, bad key, budget) are raised."""
        for attempt in range(2):
            details["calls"] = details.get("calls", 0) + 1
            try:
                response = self.ledger.call(self.teacher, request)
            except TeacherRefused as error:
                details["refused"] = details.get("refused", 0) + 1
                details["last_error"] = str(error)
                return None
            except TeacherReplyError as error:
                details["bad_replies"] = details.get("bad_replies", 0) + 1
                details["last_error"] = str(error)
                continue
            if response.cache_hit:
                details["cache_hits"] = details.get("cache_hits", 0) + 1
            return response.completions[0].text
        return None

    def gold_disagrees(self, example: Example, answer: str) -> bool:
        gold = example.answer
        return self.gold_check != "off" and bool(gold) and not self.task.is_correct(answer, gold)
