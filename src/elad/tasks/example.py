"""What every task produces: examples, and the kind of answer they have (a leaf: imports nothing of elad)."""

from dataclasses import dataclass, field
from enum import Enum


class AnswerKind(str, Enum):
    LABEL = "label"  # one of a fixed set of words (NLI labels)
    OPTION = "option"  # a letter among the example's choices (AQuA, CommonsenseQA)
    NUMBER = "number"  # an open numeric answer (GSM8K, SVAMP)
    YES_NO = "yes_no"  # yes or no (StrategyQA)


@dataclass(frozen=True)
class Example:
    id: str
    question: str  # the formatted question, choices included where the task has them
    answer: str  # gold answer in canonical form: a label, an option letter, a number string, yes/no; "" = unknown
    rationale: str | None = None  # gold rationale, when the dataset has one
    choices: tuple[str, ...] = ()  # option texts, in letter order, for OPTION tasks
    meta: dict = field(default_factory=dict, compare=False)
