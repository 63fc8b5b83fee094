"""Evaluation on held-out questions: greedy generation with the answer parsed from it, or rank
classification (the most likely of the task's answers after `predict:`), which scores what the student
knows even before it has learnt to write the answer in the expected form."""

from dataclasses import dataclass

from elad.errors import EladError
from elad.students import Student
from elad.tasks import Example, Task
from elad.tasks.base import ANSWER_CUE, AnswerKind
from elad.tasks.steps import split_steps


@dataclass
class Evaluation:
    accuracy: float
    correct: int
    total: int
    unparsed: int
    rows: list[tuple]  # (example_id, sample, text, steps, answer, correct) for the store
    chance: float | None = None  # the accuracy of a uniform guess among each question's candidates

    def metrics(self) -> dict[str, float]:
        chance = {} if self.chance is None else {"chance": self.chance}
        return {"accuracy": self.accuracy, "correct": self.correct, "total": self.total, "unparsed": self.unparsed,
                **chance}


def chance_accuracy(task: Task, examples: list[Example]) -> float | None:
    """The expected accuracy of guessing uniformly among each question's candidate answers; None for open
    answers (no candidates to guess among)."""
    counts = [len(task.candidates(e)) for e in examples]
    if not counts or not all(counts):
        return None
    return sum(1 / n for n in counts) / len(counts)


def check_ranking(task: Task, objective: str, inference: str) -> None:
    """Ranking needs a closed answer space and a student that answers without a rationale."""
    if objective != "step_by_step" or inference != "predict":
        raise EladError("loop.evaluate_by: ranking needs training.objective: step_by_step and training.inference: "
                        f"predict (got {objective} / {inference})")
    if task.answer_kind == AnswerKind.NUMBER:
        raise EladError(f"loop.evaluate_by: ranking needs a task with labels or options; {task.name} has open answers")


def evaluate(student: Student, task: Task, examples: list[Example], progress=None, ranking: bool = False) -> Evaluation:
    if ranking:
        return score_texts(task, examples, _ranked_answers(student, task, examples, progress))
    texts = student.generate([task.prompt(e) for e in examples], progress=progress)
    return score_texts(task, examples, texts)


def _ranked_answers(student: Student, task: Task, examples: list[Example], progress) -> list[str]:
    """'<cue> <most likely candidate>.' per example, from one teacher-forced pass over its candidates."""
    distributions = student.answer_scores(
        [task.prompt(e) for e in examples], [[] for _ in examples], [task.candidates(e) for e in examples],
        mode="predict", progress=progress,
    )
    return [f"{ANSWER_CUE} {max(d[0], key=d[0].get)}." for d in distributions]


def score_texts(task: Task, examples: list[Example], texts: list[str]) -> Evaluation:
    """The evaluation of the student's texts (one per example): each answer parsed and checked."""
    rows, correct, unparsed = [], 0, 0
    for example, text in zip(examples, texts):
        answer = task.parse_answer(text, example)
        right = task.is_correct(answer, example.answer)
        correct += right
        unparsed += answer is None
        rows.append((example.id, 0, text, split_steps(text), answer, int(right)))
    total = len(examples)
    return Evaluation(correct / total if total else 0.0, correct, total, unparsed, rows, chance_accuracy(task, examples))
