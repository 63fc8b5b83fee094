"""GSM8K: `{split}.jsonl` with `question` and `answer` (the solution, `<<calc=result>>` marks inline, last
line `#### <number>`). The gold rationale is the solution without the calculator marks and without the
`####` line, whose number becomes the answer. `test_socratic` (and `train_socratic`) are splits too.
"""

import re
from pathlib import Path

from elad.errors import DataError
from elad.io import require
from elad.tasks import answers
from elad.tasks.base import INSTRUCTIONS, AnswerKind, Example, Task, data_root, reject_unknown
from elad.tasks.rows import Row

_CALCULATION = re.compile(r"<<[^<>]*>>")


def clean_solution(solution: str) -> tuple[str, str | None]:
    """(rationale, final answer text) from a GSM8K solution; the answer is None without a `####` line."""
    body, marker, final = solution.rpartition("####")
    if not marker:
        return _CALCULATION.sub("", solution).strip(), None
    return _CALCULATION.sub("", body).strip(), final.strip()


class Gsm8kTask(Task):
    """options: skip_bad_rows, exemplars."""

    def __init__(self, path: str | Path | None = None, skip_bad_rows: bool = False, exemplars: str = "train",
                 **unknown):
        reject_unknown("gsm8k", unknown)
        super().__init__(name="gsm8k", answer_kind=AnswerKind.NUMBER, instruction=INSTRUCTIONS[AnswerKind.NUMBER],
                         splits=("train", "test", "test_socratic", "train_socratic"), default_splits=("train", "test"),
                         skip_bad_rows=skip_bad_rows, exemplar_source=exemplars)
        self.root = data_root(path, "gsm8k")

    def files(self, split: str) -> list[Path]:
        if split not in self.splits:
            raise self.unknown_split(split)
        return [self.root / f"{split}.jsonl"]

    def example(self, row: Row, split: str) -> Example:
        solution = require(row.data, "answer", row.path, row.line)
        rationale, final = clean_solution(solution)
        if final is None:
            raise DataError(row.path, row.line, "answer", "no final '#### <number>' line")
        value = answers.parse_number(final)
        if value is None:
            raise DataError(row.path, row.line, "answer", f"final answer {final!r} is not a number")
        return Example(
            id=f"{split}-{row.index}",
            question=require(row.data, "question", row.path, row.line).strip(),
            answer=answers.format_number(value),
            rationale=rationale or None,
        )
