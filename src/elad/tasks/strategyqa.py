"""StrategyQA: yes/no questions whose reasoning steps are implicit.

Layouts: the official JSON arrays (`train.json`, `dev.json`; fields qid, question, answer (bool), facts,
decomposition), where the gold rationale is the `facts` joined into a paragraph; and the BIG-bench
`task.json` (`examples` of input, target_scores {"Yes": 0/1, "No": 0/1}, target "Yes. <explanation>"),
one split "all", or the splits of a Fine-tune-CoT index file given as `split_file`.
"""

import re
from collections.abc import Iterable
from pathlib import Path

from elad.errors import DataError, EladError
from elad.io import read_json, require
from elad.tasks.base import INSTRUCTIONS, AnswerKind, Example, Task, data_root, reject_unknown
from elad.tasks.esnli import detect_layout
from elad.tasks.indexsplit import read_split_file, select_rows
from elad.tasks.rows import Row, read_rows

OFFICIAL_FILES = {"train": "train.json", "valid": "dev.json"}
_LEADING_ANSWER = re.compile(r"^\s*(yes|no)\b[.,:!]?\s*", re.IGNORECASE)


class StrategyQaTask(Task):
    """options: layout (auto | official | bigbench), split_file (bigbench), skip_bad_rows, exemplars."""

    LAYOUTS = {"official": ["train.json", "dev.json"], "bigbench": ["task.json", "bigbench/task.json"]}

    def __init__(self, path: str | Path | None = None, layout: str = "auto", split_file: str | None = None,
                 skip_bad_rows: bool = False, exemplars: str = "train", **unknown):
        reject_unknown("strategyqa", unknown)
        self.root = data_root(path, "strategyqa")
        layout = detect_layout(self.root, self.LAYOUTS, "StrategyQA") if layout == "auto" else layout
        if layout not in self.LAYOUTS:
            raise EladError(f"task.options.layout: '{layout}' is not one of auto, {', '.join(self.LAYOUTS)}")
        if split_file and layout != "bigbench":
            raise EladError("task.options.split_file: only the BIG-bench layout (task.json) is split by indices")
        self.layout = layout
        self.index_splits = read_split_file(split_file) if split_file else None
        self.split_file = Path(split_file) if split_file else None
        splits = tuple(OFFICIAL_FILES) if layout == "official" else ("all", *(self.index_splits or {}))
        default = ("train", "valid") if layout == "official" else (
            ("train", "test") if self.index_splits and {"train", "test"} <= set(self.index_splits) else ("all", "all"))
        super().__init__(name="strategyqa", answer_kind=AnswerKind.YES_NO, labels=("yes", "no"),
                         instruction=INSTRUCTIONS[AnswerKind.YES_NO], splits=splits, default_splits=default,
                         skip_bad_rows=skip_bad_rows, exemplar_source=exemplars)

    def files(self, split: str) -> list[Path]:
        if split not in self.splits:
            raise self.unknown_split(split)
        if self.layout == "official":
            return [self.root / OFFICIAL_FILES[split]]
        task_file = self.root / "task.json"
        return [task_file if task_file.exists() else self.root / "bigbench" / "task.json"]

    def rows(self, split: str) -> Iterable[Row]:
        if self.layout == "official":
            return read_rows(self.files(split))
        path = self.files(split)[0]
        task = read_json(path)
        if not isinstance(task, dict) or not isinstance(task.get("examples"), list):
            raise DataError(path, None, "examples", "expected a BIG-bench task with a list of examples")
        rows = [Row(path, None, index, item if isinstance(item, dict) else None,
                    None if isinstance(item, dict) else DataError(path, None, f"examples[{index}]", "expected an object"))
                for index, item in enumerate(task["examples"])]
        return rows if split == "all" else select_rows(rows, self.index_splits[split], self.split_file)

    def example(self, row: Row, split: str) -> Example:
        return (self._official if self.layout == "official" else self._bigbench)(row, split)

    def _official(self, row: Row, split: str) -> Example:
        data, where = row.data, (row.path, row.line)
        answer = require(data, "answer", *where, bool)
        facts = data.get("facts") or []
        if not isinstance(facts, list) or not all(isinstance(f, str) for f in facts):
            raise DataError(*where, "facts", "expected a list of sentences")
        rationale = " ".join(" ".join(f.split()) for f in facts if f.strip())
        return Example(
            id=f"{split}-{row.index}",
            question=require(data, "question", *where).strip(),
            answer="yes" if answer else "no",
            rationale=rationale or None,
            meta={"source_id": require(data, "qid", *where), "source_id_field": "qid",
                  "decomposition": data.get("decomposition") or []},
        )

    def _bigbench(self, row: Row, split: str) -> Example:
        data, field = row.data, f"examples[{row.index}]"
        scores = data.get("target_scores")
        if not isinstance(scores, dict) or sorted(scores.values()) != [0, 1] or set(scores) != {"Yes", "No"}:
            raise DataError(row.path, row.line, f"{field}.target_scores", 'expected {"Yes": 0/1, "No": 1/0}')
        question = data.get("input")
        if not isinstance(question, str) or not question.strip():
            raise DataError(row.path, row.line, f"{field}.input", "missing or empty")
        target = data.get("target") if isinstance(data.get("target"), str) else ""
        rationale = " ".join(_LEADING_ANSWER.sub("", target, count=1).split())
        return Example(
            id=f"{split}-{row.index}",
            question=question.strip(),
            answer="yes" if scores["Yes"] == 1 else "no",
            rationale=rationale or None,
        )
