"""ANLI (Adversarial NLI), rounds R1-R3.

Layouts: the official v1.0 release (`R{n}/{train,dev,test}.jsonl`, fields uid, context, hypothesis,
label e/n/c, reason), with task.path at the `anli` folder or at one round's folder; and the Distilling
Step-by-Step task files (`anli1_{train,valid,test}.json`, fields uid, premise, hypothesis, label 0/1/2,
reason), whose `llm/` PaLM rationales the replay teacher reads by row id. R1 dev/test of the official
release are DSbS's anli1 valid/test row for row, so both layouts give the same ids there.
The annotator's `reason` (why the adversarial model was wrong) is kept as the gold rationale.
"""

from pathlib import Path

from elad.errors import EladError
from elad.io import require
from elad.tasks.base import AnswerKind, Example, Task, data_root, reject_unknown
from elad.tasks.esnli import NLI_INSTRUCTION, NLI_LABELS, detect_layout, nli_label, nli_question
from elad.tasks.rows import Row

OFFICIAL_FILES = {"train": "train.jsonl", "valid": "dev.jsonl", "test": "test.jsonl"}


class AnliTask(Task):
    """options: round (1, 2, 3 or "all"), layout (auto | official | dsbs), skip_bad_rows, exemplars."""

    LAYOUTS = {"dsbs": ["anli*_*.json"], "official": ["R[123]/*.jsonl", "dev.jsonl", "test.jsonl"]}

    def __init__(self, path: str | Path | None = None, round: int | str = 1, layout: str = "auto",
                 skip_bad_rows: bool = False, exemplars: str = "train", **unknown):
        reject_unknown("anli", unknown)
        super().__init__(name="anli", answer_kind=AnswerKind.LABEL, labels=NLI_LABELS, instruction=NLI_INSTRUCTION,
                         splits=("train", "valid", "test"), skip_bad_rows=skip_bad_rows, exemplar_source=exemplars)
        self.root = data_root(path, "anli")
        self.layout = detect_layout(self.root, self.LAYOUTS, "ANLI") if layout == "auto" else layout
        if self.layout not in self.LAYOUTS:
            raise EladError(f"task.options.layout: '{layout}' is not one of auto, {', '.join(self.LAYOUTS)}")
        self.rounds = self._rounds(round)

    def _rounds(self, value) -> list[int]:
        if str(value).lower() == "all":
            rounds = [1, 2, 3]
        elif str(value).upper().lstrip("R") in ("1", "2", "3"):
            rounds = [int(str(value).upper().lstrip("R"))]
        else:
            raise EladError(f"task.options.round: expected 1, 2, 3 or 'all', got {value!r}")
        if self.layout == "dsbs" and len(rounds) > 1:
            raise EladError("task.options.round: the Distilling Step-by-Step files hold one round; pick 1, 2 or 3")
        return rounds

    def files(self, split: str) -> list[Path]:
        if split not in self.splits:
            raise self.unknown_split(split)
        if self.layout == "dsbs":
            return [self.root / f"anli{self.rounds[0]}_{split}.json"]
        if (self.root / OFFICIAL_FILES[split]).exists() or not (self.root / "R1").exists():
            return [self.root / OFFICIAL_FILES[split]]  # task.path is one round's folder
        return [self.root / f"R{n}" / OFFICIAL_FILES[split] for n in self.rounds]

    def example(self, row: Row, split: str) -> Example:
        data = row.data
        premise = "premise" if self.layout == "dsbs" else "context"
        uid = require(data, "uid", row.path, row.line)
        return Example(
            id=f"{split}-{row.index}",
            question=nli_question(require(data, premise, row.path, row.line),
                                  require(data, "hypothesis", row.path, row.line)),
            answer=nli_label(data, "label", row),
            rationale=(data.get("reason") or "").strip() or None,
            meta={"source_id": uid, "source_id_field": "uid"},
        )
