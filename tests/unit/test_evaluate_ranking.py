"""Rank-classification evaluation: the most likely label after `predict:` is the answer; refused where it
cannot apply."""

import pytest

from elad.errors import EladError
from elad.loop.evaluate import check_ranking, evaluate
from elad.tasks import TASKS, Example


class ScoringStudent:
    """Answers from fixed label distributions; fails the test if asked to generate."""

    def __init__(self, distributions: dict[str, dict[str, float]]):
        self.distributions = distributions
        self.calls = []

    def answer_scores(self, prompts, steps, candidates, mode=None, progress=None, **_):
        self.calls.append((mode, steps, candidates))
        return [[self.distributions[p.split("Premise: ")[1].split("\n")[0]]] for p in prompts]

    def generate(self, *args, **kwargs):
        raise AssertionError("ranking must not generate")


def example(i: int, answer: str) -> Example:
    return Example(id=f"t{i}", question=f"Premise: p{i}\nHypothesis: h{i}", answer=answer)


def test_the_most_likely_label_is_the_answer():
    task = TASKS.create("esnli")
    student = ScoringStudent({
        "p0": {"entailment": 0.2, "neutral": 0.7, "contradiction": 0.1},
        "p1": {"entailment": 0.5, "neutral": 0.2, "contradiction": 0.3},
        "p2": {"entailment": 0.1, "neutral": 0.1, "contradiction": 0.8},
    })
    examples = [example(0, "neutral"), example(1, "contradiction"), example(2, "contradiction")]
    result = evaluate(student, task, examples, ranking=True)
    assert (result.correct, result.total, result.unparsed) == (2, 3, 0)
    assert [row[4] for row in result.rows] == ["neutral", "entailment", "contradiction"]
    mode, steps, candidates = student.calls[0]
    assert mode == "predict" and steps == [[], [], []] and candidates[0] == task.labels


@pytest.mark.parametrize("task_name, objective, inference, message", [
    ("esnli", "cot", "cot", "step_by_step"),
    ("esnli", "step_by_step", "cot", "predict"),
    ("gsm8k", "step_by_step", "predict", "open answers"),
])
def test_ranking_is_refused_where_it_cannot_apply(task_name, objective, inference, message, tmp_path):
    task = TASKS.create(task_name, path=str(tmp_path)) if task_name == "gsm8k" else TASKS.create(task_name)
    with pytest.raises(EladError, match=message):
        check_ranking(task, objective, inference)
