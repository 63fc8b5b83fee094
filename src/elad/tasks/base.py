"""The example model shared by every task, and the Task base class: prompts, answer parsing, scoring."""

from dataclasses import dataclass, field
from enum import Enum

from elad.tasks import answers


class AnswerKind(str, Enum):
    LABEL = "label"  # one of a fixed set of words (NLI labels)
    OPTION = "option"  # a letter among the example's choices (AQuA, CommonsenseQA)
    NUMBER = "number"  # an open numeric answer (GSM8K, SVAMP)
    YES_NO = "yes_no"  # yes or no (StrategyQA)


@dataclass(frozen=True)
class Example:
    id: str
    question: str  # the formatted question, choices included where the task has them
    answer: str  # gold answer in canonical form: a label, an option letter, a number string, yes/no
    rationale: str | None = None  # gold rationale, when the dataset has one
    choices: tuple[str, ...] = ()  # option texts, in letter order, for OPTION tasks
    meta: dict = field(default_factory=dict, compare=False)


ANSWER_CUE = "So the answer is"


@dataclass
class Task:
    """What a loop needs from a task: examples, how to ask, how to read and score an answer."""

    name: str
    answer_kind: AnswerKind
    labels: tuple[str, ...] = ()  # the closed answer space of LABEL / YES_NO tasks
    instruction: str = "Explain your reasoning step by step, then finish with 'So the answer is <answer>.'"

    def load(self, split: str) -> list[Example]:
        raise NotImplementedError

    def prompt(self, example: Example) -> str:
        """The student's input: the question and how to answer it."""
        return f"{example.question}\n{self.instruction}"

    def target(self, rationale: str, answer: str) -> str:
        """The training target: the rationale, then the answer behind a fixed cue."""
        return f"{rationale.strip()}\n{ANSWER_CUE} {answer}."

    def candidates(self, example: Example) -> tuple[str, ...]:
        """The answer strings a student's probability can be spread over (empty for open answers)."""
        if self.answer_kind == AnswerKind.OPTION:
            return tuple(answers.LETTERS[: len(example.choices)])
        return self.labels

    def parse_answer(self, text: str, example: Example | None = None) -> str | None:
        choices = example.choices if example is not None else ()
        return answers.extract(text, self.answer_kind.value, labels=self.labels, choices=choices)

    def is_correct(self, predicted: str | None, gold: str) -> bool:
        if predicted is None:
            return False
        if self.answer_kind == AnswerKind.NUMBER:
            return answers.numbers_equal(predicted, gold)
        return predicted == gold
