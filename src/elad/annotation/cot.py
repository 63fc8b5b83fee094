"""Chain-of-thought annotation: the teacher explains the question; its rationale and answer become the target."""

from elad.annotation.base import Annotation, Rejection
from elad.tasks import Example, Task
from elad.tasks.answers import split_rationale
from elad.teachers import Ledger, Request, Teacher

SYSTEM_PROMPT = (
    "You are a careful teacher. Solve the problem by reasoning step by step in plain sentences (no code), "
    "then state the final answer as 'So the answer is <answer>.'"
)


class CotAnnotator:
    name = "cot"

    def __init__(self, task: Task, teacher: Teacher, ledger: Ledger, max_tokens: int = 256):
        self.task, self.teacher, self.ledger, self.max_tokens = task, teacher, ledger, max_tokens

    def messages(self, example: Example) -> tuple[dict, ...]:
        return (
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": self.task.prompt(example)},
        )

    def annotate(self, example: Example, student_explanation: str | None = None) -> Annotation | Rejection:
        request = Request(messages=self.messages(example), max_tokens=self.max_tokens, example_id=example.id)
        raw = self.ledger.call(self.teacher, request).completions[0].text
        answer = self.task.parse_answer(raw, example)
        if answer is None:
            return Rejection("the teacher's reply states no answer that can be parsed", raw)
        rationale = split_rationale(raw)
        if not rationale:
            return Rejection("the teacher's reply has an answer but no rationale", raw)
        return Annotation(self.name, rationale, answer, self.task.target(rationale, answer), raw)
