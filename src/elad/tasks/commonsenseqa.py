"""CommonsenseQA (v1.11, random split).

Layouts: the official files (`{train,dev}_rand_split.jsonl`, `test_rand_split_no_answers.jsonl`; fields
`id`, `question.stem`, `question.choices[{label, text}]`, `answerKey`), whose test split has no answers
(they load with answer "" and are never scored correct); and the Distilling Step-by-Step task files
(`cqa_{train,test}.json`; fields `id`, `question`, `choices` [5 texts], `answer` as text, CoS-E's
`abstractive_explanation`, kept as the gold rationale), read by row id like the release's PaLM rationales.
DSbS's "test" is the official dev split, in another row order.
"""

from pathlib import Path

from elad.errors import DataError, EladError
from elad.io import require
from elad.tasks import answers
from elad.tasks.base import INSTRUCTIONS, AnswerKind, Example, Task, data_root, format_choices, reject_unknown
from elad.tasks.esnli import detect_layout
from elad.tasks.rows import Row

OFFICIAL_FILES = {"train": "train_rand_split.jsonl", "valid": "dev_rand_split.jsonl",
                  "test": "test_rand_split_no_answers.jsonl"}


class CommonsenseQaTask(Task):
    """options: layout (auto | official | dsbs), skip_bad_rows, exemplars."""

    LAYOUTS = {"dsbs": ["cqa_*.json"], "official": ["*_rand_split*.jsonl"]}

    def __init__(self, path: str | Path | None = None, layout: str = "auto", skip_bad_rows: bool = False,
                 exemplars: str = "train", **unknown):
        reject_unknown("commonsenseqa", unknown)
        self.root = data_root(path, "commonsenseqa")
        layout = detect_layout(self.root, self.LAYOUTS, "CommonsenseQA") if layout == "auto" else layout
        if layout not in self.LAYOUTS:
            raise EladError(f"task.options.layout: '{layout}' is not one of auto, {', '.join(self.LAYOUTS)}")
        splits = ("train", "test") if layout == "dsbs" else tuple(OFFICIAL_FILES)
        super().__init__(name="commonsenseqa", answer_kind=AnswerKind.OPTION,
                         instruction=INSTRUCTIONS[AnswerKind.OPTION], splits=splits,
                         default_splits=("train", "test") if layout == "dsbs" else ("train", "valid"),
                         skip_bad_rows=skip_bad_rows, exemplar_source=exemplars)
        self.layout = layout

    def files(self, split: str) -> list[Path]:
        if split not in self.splits:
            raise self.unknown_split(split)
        if self.layout == "dsbs":
            return [self.root / f"cqa_{split}.json"]
        return [self.root / OFFICIAL_FILES[split]]

    def example(self, row: Row, split: str) -> Example:
        build = self._dsbs if self.layout == "dsbs" else self._official
        return build(row, split)

    def _official(self, row: Row, split: str) -> Example:
        data, where = row.data, (row.path, row.line)
        question = require(data, "question", *where, dict)
        stem = require(question, "stem", *where)
        choices = require(question, "choices", *where, list)
        if not all(isinstance(c, dict) and isinstance(c.get("text"), str) for c in choices) or len(choices) < 2:
            raise DataError(*where, "question.choices", "expected a list of {label, text} objects")
        choices = sorted(choices, key=lambda c: str(c.get("label", "")))
        labels = "".join(str(c.get("label", "")) for c in choices)
        if labels != answers.LETTERS[: len(choices)]:
            raise DataError(*where, "question.choices", f"labels should be A, B, C..., got {labels!r}")
        texts = tuple(c["text"].strip() for c in choices)
        answer = ""  # the official test file has no answers: the split is for prediction only
        if "no_answers" not in row.path.name:
            answer = require(data, "answerKey", *where).strip().upper()
            if answer not in labels:
                raise DataError(*where, "answerKey", f"expected one of {', '.join(labels)}, got {answer!r}")
        return Example(id=f"{split}-{row.index}", question=format_choices(stem, texts), answer=answer, choices=texts,
                       meta={"source_id": require(data, "id", *where), "source_id_field": "id"})

    def _dsbs(self, row: Row, split: str) -> Example:
        data, where = row.data, (row.path, row.line)
        choices = require(data, "choices", *where, list)
        if len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise DataError(*where, "choices", "expected a list of option texts")
        texts = tuple(c.strip() for c in choices)
        answer = require(data, "answer", *where).strip()
        if answer not in texts:
            raise DataError(*where, "answer", f"{answer!r} is not one of the choices")
        return Example(
            id=f"{split}-{row.index}",
            question=format_choices(require(data, "question", *where), texts),
            answer=answers.LETTERS[texts.index(answer)],
            rationale=(data.get("abstractive_explanation") or "").strip() or None,
            choices=texts,
            meta={"source_id": require(data, "id", *where), "source_id_field": "id"},
        )
