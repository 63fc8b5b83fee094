"""The example model shared by every task, and the Task base class: loading, prompts, parsing, scoring.

A loader subclass says where a split's files are (`files`) and how one record becomes an `Example`
(`example`); the base class reads the records, names or skips bad rows, reports empty and duplicate ids,
and gives every task the same prompts, few-shot exemplars, answer parsing and accuracy.

Ids: a record read from a file in order gets the id `"{split}-{row}"` (row counted from 0 before any bad
row is skipped), the scheme of the recorded teacher files (Distilling Step-by-Step's `llm/{split}_CoT_*`
and others keep one rationale per row, in row order). A dataset's own id, when it has one, is kept in
`meta["source_id"]` and checked for duplicates too.
"""

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from elad.errors import DataError, EladError
from elad.tasks import answers
from elad.tasks.example import AnswerKind, Example
from elad.tasks.fewshot import wei_exemplars
from elad.tasks.rows import Row, read_rows


ANSWER_CUE = "So the answer is"

INSTRUCTIONS = {
    AnswerKind.NUMBER: "Solve the problem step by step, then finish with 'So the answer is <number>.'",
    AnswerKind.OPTION: "Explain your reasoning step by step, then finish with 'So the answer is <letter>.'",
    AnswerKind.YES_NO: "Explain your reasoning step by step, then finish with 'So the answer is yes.' or "
                       "'So the answer is no.'",
    AnswerKind.LABEL: "Explain your reasoning step by step, then finish with 'So the answer is <answer>.'",
}

# Other names of the canonical splits train / valid / test (official files say "dev").
SPLIT_ALIASES = {"dev": "valid", "validation": "valid", "val": "valid"}
MAX_PROBLEMS = 20  # skipped-row messages kept per split for the summary; the count is exact


def canonical_split(split: str) -> str:
    return SPLIT_ALIASES.get(split, split)


def format_choices(question: str, choices: Sequence[str]) -> str:
    """The question with its options, one format for every multiple-choice task."""
    listed = " ".join(f"({answers.LETTERS[i]}) {choice}" for i, choice in enumerate(choices))
    return f"{question.strip()}\nAnswer choices: {listed}"


def data_root(path: str | Path | None, task: str) -> Path:
    """The dataset folder from `task.path`; tasks without a packaged sample need one."""
    if path in (None, ""):
        raise EladError(f"task.path: the '{task}' task ships no data; set task.path to the dataset's folder "
                        f"(for example ../shared/data/{task})")
    root = Path(path).expanduser()
    if not root.exists():
        raise EladError(f"task.path: {root} does not exist")
    return root


def reject_unknown(task: str, options: dict) -> None:
    """task.options is a free dict in the config: a misspelt key must stop the run, not be ignored."""
    if options:
        raise EladError(f"task.options: unknown option(s) {', '.join(sorted(options))} for task '{task}'")


@dataclass
class Task:
    """What a loop needs from a task: examples, how to ask, how to read and score an answer."""

    name: str
    answer_kind: AnswerKind
    labels: tuple[str, ...] = ()  # the closed answer space of LABEL / YES_NO tasks
    instruction: str = INSTRUCTIONS[AnswerKind.LABEL]
    splits: tuple[str, ...] = ()  # canonical split names the layout knows (some files may be absent)
    default_splits: tuple[str, str] = ("valid", "test")  # (pool, test) that suit this dataset
    skip_bad_rows: bool = False  # skip and count malformed rows instead of stopping the load
    exemplar_source: str = "train"  # a split name, or a few_shot_cot_prompts.json file (Wei et al.)
    instruction_first: bool = False  # instruction before the question: a prefix every prompt shares
    skipped: dict[str, int] = field(default_factory=dict)  # split -> rows skipped by the last load
    problems: dict[str, list[str]] = field(default_factory=dict)  # split -> the first skipped rows' errors

    # --- loading -------------------------------------------------------------------------------

    def load(self, split: str) -> list[Example]:
        split = canonical_split(split)
        return self.collect(split, self.rows(split), lambda row: self.example(row, split))

    def rows(self, split: str) -> Iterable[Row]:
        return read_rows(self.files(split))

    def files(self, split: str) -> list[Path]:
        """The files of a (canonical) split, in reading order; raise EladError for an unknown split."""
        raise NotImplementedError

    def example(self, row: Row, split: str) -> Example:
        """One record as an Example; raise DataError (from `require` and friends) for a bad record."""
        raise NotImplementedError

    def available_splits(self) -> list[str]:
        """The known splits whose files are all there."""
        found = []
        for split in self.splits:
            try:
                if all(path.exists() for path in self.files(split)):
                    found.append(split)
            except EladError:
                continue
        return found

    def unknown_split(self, split: str) -> EladError:
        known = ", ".join(self.splits) or "none"
        return EladError(f"task '{self.name}' has no split '{split}'; known: {known}")

    def collect(self, split: str, rows: Iterable[Row], build: Callable[[Row], Example]) -> list[Example]:
        """Build every row; a bad row stops the load, or is skipped and counted when skip_bad_rows is on.
        Empty and duplicate ids (ours and the dataset's own) are bad rows too."""
        examples: list[Example] = []
        seen: dict[tuple[str, str], int | None] = {}  # (which id, value) -> line it was first seen on
        self.skipped[split], self.problems[split] = 0, []
        for row in rows:
            try:
                if row.error is not None:
                    raise row.error
                example = build(row)
                self._check_ids(example, row, seen)
            except DataError as error:
                if not self.skip_bad_rows:
                    raise
                self.skipped[split] += 1
                if len(self.problems[split]) < MAX_PROBLEMS:
                    self.problems[split].append(str(error))
                continue
            examples.append(example)
        return examples

    @staticmethod
    def _check_ids(example: Example, row: Row, seen: dict) -> None:
        ids = [("id", example.id)]
        if "source_id" in example.meta:
            ids.append((example.meta.get("source_id_field", "id"), str(example.meta["source_id"])))
        for which, value in ids:
            if not value.strip():
                raise DataError(row.path, row.line, which, "empty id")
            if (which, value) in seen:
                first = seen[(which, value)]
                raise DataError(row.path, row.line, which, f"duplicate id '{value}'" +
                                (f" (first on line {first})" if first is not None else ""))
        for which, value in ids:
            seen[(which, value)] = row.line

    # --- prompts -------------------------------------------------------------------------------

    def prompt(self, example: Example) -> str:
        """The student's input (zero-shot): the question and how to answer it, or, with `instruction_first`,
        how to answer then the question (prompts then share their opening, which generation computes once)."""
        if self.instruction_first:
            return f"{self.instruction}\n{example.question}"
        return f"{example.question}\n{self.instruction}"

    def target(self, rationale: str, answer: str) -> str:
        """The training target: the rationale, then the answer behind a fixed cue."""
        return f"{rationale.strip()}\n{ANSWER_CUE} {answer}."

    def exemplars(self, k: int, seed: int = 0) -> list[tuple[Example, str]]:
        """k worked examples (example, its target text) for a few-shot teacher prompt.

        From a split (`exemplar_source`, default "train"): k examples with a gold rationale, drawn with
        the seed. From a few_shot_cot_prompts.json file: the first k of Wei et al.'s fixed exemplars for
        this task (the seed is not used). Keep the exemplar split apart from the pool split, or the
        teacher sees the gold rationale of a question it is asked about.
        """
        if k <= 0:
            return []
        if self.exemplar_source.endswith(".json"):
            shots = wei_exemplars(Path(self.exemplar_source), self)
        else:
            shots = [(e, self.target(e.rationale, e.answer)) for e in self._exemplar_pool()]
            shots = random.Random(seed).sample(shots, min(k, len(shots)))
        if len(shots) < k:
            raise EladError(f"annotation.few_shot: {k} exemplars asked, but '{self.exemplar_source}' has "
                            f"{len(shots)} for task '{self.name}'")
        return shots[:k]

    def _exemplar_pool(self) -> list[Example]:
        if not hasattr(self, "_exemplar_cache"):
            split = canonical_split(self.exemplar_source)
            try:
                pool = self.load(split)
            except (DataError, EladError) as error:
                raise EladError(f"task.options.exemplars: no exemplars for '{self.name}' from split "
                                f"'{split}' ({error}); name another split or a few_shot_cot_prompts.json") from None
            self._exemplar_cache = [e for e in pool if e.rationale and e.answer]
        return self._exemplar_cache

    def few_shot_prompt(self, example: Example, shots: Sequence[tuple[Example, str]]) -> str:
        """Worked exemplars as Q/A pairs, then the question: the classic chain-of-thought prompt."""
        blocks = [f"Q: {shot.question}\nA: {text}" for shot, text in shots]
        return "\n\n".join([*blocks, f"Q: {example.question}\nA:"])

    # --- answers -------------------------------------------------------------------------------

    def candidates(self, example: Example) -> tuple[str, ...]:
        """The answer strings a student's probability can be spread over (empty for open answers)."""
        if self.answer_kind == AnswerKind.OPTION:
            return tuple(answers.LETTERS[: len(example.choices)])
        return self.labels

    def parse_answer(self, text: str, example: Example | None = None) -> str | None:
        choices = example.choices if example is not None else ()
        return answers.extract(text, self.answer_kind.value, labels=self.labels, choices=choices)

    def is_correct(self, predicted: str | None, gold: str) -> bool:
        if predicted is None or gold == "":
            return False
        if self.answer_kind == AnswerKind.NUMBER:
            return answers.numbers_equal(predicted, gold)
        return predicted == gold

    def accuracy(self, predictions: Sequence[str | None], examples: Sequence[Example]) -> float:
        """Share of examples answered correctly; examples without a gold answer are left out."""
        if len(predictions) != len(examples):
            raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
        scored = [self.is_correct(p, e.answer) for p, e in zip(predictions, examples) if e.answer != ""]
        return sum(scored) / len(scored) if scored else 0.0
