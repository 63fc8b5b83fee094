"""Tasks: datasets, prompts, answer parsing and scoring. Knows nothing else in elad."""

from elad.registry import Registry
from elad.tasks.base import ANSWER_CUE, AnswerKind, Example, Task
from elad.tasks.esnli import EsnliTask

TASKS: Registry[Task] = Registry("task")
TASKS.register("esnli")(EsnliTask)

__all__ = ["ANSWER_CUE", "AnswerKind", "Example", "Task", "TASKS"]
