"""Evaluation: greedy chain-of-thought generation on held-out questions, answers parsed and scored."""

from dataclasses import dataclass

from elad.students import Student
from elad.tasks import Example, Task
from elad.tasks.steps import split_steps


@dataclass
class Evaluation:
    accuracy: float
    correct: int
    total: int
    unparsed: int
    rows: list[tuple]  # (example_id, sample, text, steps, answer, correct) for the store

    def metrics(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "correct": self.correct, "total": self.total, "unparsed": self.unparsed}


def evaluate(student: Student, task: Task, examples: list[Example], progress=None) -> Evaluation:
    texts = student.generate([task.prompt(e) for e in examples], progress=progress)
    rows, correct, unparsed = [], 0, 0
    for example, text in zip(examples, texts):
        answer = task.parse_answer(text, example)
        right = task.is_correct(answer, example.answer)
        correct += right
        unparsed += answer is None
        rows.append((example.id, 0, text, split_steps(text), answer, int(right)))
    total = len(examples)
    return Evaluation(correct / total if total else 0.0, correct, total, unparsed, rows)
