"""Tasks: datasets, prompts, answer parsing and scoring. Knows nothing else in elad."""

from elad.registry import Registry
from elad.tasks.anli import AnliTask
from elad.tasks.aqua import AquaTask
from elad.tasks.base import ANSWER_CUE, AnswerKind, Example, Task
from elad.tasks.commonsenseqa import CommonsenseQaTask
from elad.tasks.custom import CustomTask
from elad.tasks.esnli import EsnliTask
from elad.tasks.gsm8k import Gsm8kTask
from elad.tasks.strategyqa import StrategyQaTask
from elad.tasks.svamp import SvampTask

TASKS: Registry[Task] = Registry("task")
TASKS.register("esnli")(EsnliTask)
TASKS.register("anli")(AnliTask)
TASKS.register("gsm8k")(Gsm8kTask)
TASKS.register("aqua")(AquaTask)
TASKS.register("commonsenseqa")(CommonsenseQaTask)
TASKS.register("strategyqa")(StrategyQaTask)
TASKS.register("svamp")(SvampTask)
TASKS.register("custom")(CustomTask)

__all__ = ["ANSWER_CUE", "AnswerKind", "Example", "Task", "TASKS"]
