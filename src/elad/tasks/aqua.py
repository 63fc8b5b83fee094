"""AQuA-RAT: `{train,dev,test}.json` (JSON Lines despite the name), fields `question`, `options`
("A)32400" ... "E)10"), `rationale` (human-written solution, kept as the gold rationale) and `correct`.
"""

import re
from pathlib import Path

from elad.errors import DataError
from elad.io import require
from elad.tasks import answers
from elad.tasks.base import INSTRUCTIONS, AnswerKind, Example, Task, data_root, format_choices, reject_unknown
from elad.tasks.rows import Row

FILES = {"train": "train.json", "valid": "dev.json", "test": "test.json"}
_OPTION = re.compile(r"\s*\(?([A-J])\s*\)\s*(.*)", re.DOTALL)


def parse_options(options: list, row: Row) -> tuple[str, ...]:
    """Option texts in letter order from ["A)...", "B)...", ...]; letters must run A, B, C..."""
    texts = []
    for position, option in enumerate(options):
        match = _OPTION.fullmatch(option) if isinstance(option, str) else None
        if match is None or match.group(1) != answers.LETTERS[position]:
            raise DataError(row.path, row.line, "options",
                            f"option {position + 1} should start with '{answers.LETTERS[position]})', got {option!r}")
        texts.append(match.group(2).strip())
    return tuple(texts)


class AquaTask(Task):
    """options: skip_bad_rows, exemplars (no train split is shared: point it at another split or Wei's file)."""

    def __init__(self, path: str | Path | None = None, skip_bad_rows: bool = False, exemplars: str = "train",
                 **unknown):
        reject_unknown("aqua", unknown)
        super().__init__(name="aqua", answer_kind=AnswerKind.OPTION, instruction=INSTRUCTIONS[AnswerKind.OPTION],
                         splits=tuple(FILES), default_splits=("valid", "test"), skip_bad_rows=skip_bad_rows,
                         exemplar_source=exemplars)
        self.root = data_root(path, "aqua")

    def files(self, split: str) -> list[Path]:
        if split not in FILES:
            raise self.unknown_split(split)
        return [self.root / FILES[split]]

    def example(self, row: Row, split: str) -> Example:
        data = row.data
        choices = parse_options(require(data, "options", row.path, row.line, list), row)
        if len(choices) < 2:
            raise DataError(row.path, row.line, "options", "fewer than two options")
        correct = require(data, "correct", row.path, row.line).strip().upper()
        if correct not in answers.LETTERS[: len(choices)]:
            raise DataError(row.path, row.line, "correct", f"expected a letter among the options, got {correct!r}")
        return Example(
            id=f"{split}-{row.index}",
            question=format_choices(require(data, "question", row.path, row.line), choices),
            answer=correct,
            rationale=(data.get("rationale") or "").strip() or None,
            choices=choices,
        )
