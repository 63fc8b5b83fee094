"""SVAMP: arithmetic word problems.

Layouts: the original `SVAMP.json` (array of ID, Body, Question, Equation, Answer), one split "all", or
the splits of a Fine-tune-CoT index file given as `split_file`; and the Distilling Step-by-Step task files
(`svamp_{train,test}.json`, fields `input` = body + "\\n" + question, `label` = the equation), read by row
id like the release's PaLM rationales. SVAMP has no written solutions: the gold rationale is the equation
with its result ("76 - 25 = 51"), the short form DSbS trains on.
"""

import re
from collections.abc import Iterable
from pathlib import Path

from elad.errors import DataError, EladError
from elad.io import require
from elad.tasks import answers
from elad.tasks.base import INSTRUCTIONS, AnswerKind, Example, Task, data_root, reject_unknown
from elad.tasks.esnli import detect_layout
from elad.tasks.indexsplit import read_split_file, select_rows
from elad.tasks.rows import Row, read_rows

# The equation comes from a data file: read it as arithmetic only, never eval it.
evaluate_equation = answers.evaluate_arithmetic


def equation_rationale(equation: str, result: float) -> str:
    """'( 76.0 - 25.0 )' -> '76 - 25 = 51': numbers in their shortest spelling, outer brackets dropped."""
    text = re.sub(r"\d+\.\d+|\d+", lambda m: answers.format_number(float(m.group(0))), equation)
    text = " ".join(text.split())
    while text.startswith("( ") and text.endswith(" )") and _balanced(text[2:-2]):
        text = text[2:-2]
    return f"{text} = {answers.format_number(result)}."


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


class SvampTask(Task):
    """options: layout (auto | original | dsbs), split_file (original), skip_bad_rows, exemplars."""

    LAYOUTS = {"dsbs": ["svamp_*.json"], "original": ["SVAMP.json"]}

    def __init__(self, path: str | Path | None = None, layout: str = "auto", split_file: str | None = None,
                 skip_bad_rows: bool = False, exemplars: str = "train", **unknown):
        reject_unknown("svamp", unknown)
        self.root = data_root(path, "svamp")
        layout = detect_layout(self.root, self.LAYOUTS, "SVAMP") if layout == "auto" else layout
        if layout not in self.LAYOUTS:
            raise EladError(f"task.options.layout: '{layout}' is not one of auto, {', '.join(self.LAYOUTS)}")
        if split_file and layout != "original":
            raise EladError("task.options.split_file: only the original SVAMP.json is split by indices")
        self.layout = layout
        self.index_splits = read_split_file(split_file) if split_file else None
        self.split_file = Path(split_file) if split_file else None
        splits = ("train", "test") if layout == "dsbs" else ("all", *(self.index_splits or {}))
        default = ("train", "test") if layout == "dsbs" or (
            self.index_splits and {"train", "test"} <= set(self.index_splits)) else ("all", "all")
        super().__init__(name="svamp", answer_kind=AnswerKind.NUMBER, instruction=INSTRUCTIONS[AnswerKind.NUMBER],
                         splits=splits, default_splits=default, skip_bad_rows=skip_bad_rows,
                         exemplar_source=exemplars)

    def files(self, split: str) -> list[Path]:
        if split not in self.splits:
            raise self.unknown_split(split)
        return [self.root / (f"svamp_{split}.json" if self.layout == "dsbs" else "SVAMP.json")]

    def rows(self, split: str) -> Iterable[Row]:
        rows = read_rows(self.files(split))
        if self.layout == "dsbs" or split == "all":
            return rows
        return select_rows(rows, self.index_splits[split], self.split_file)

    def example(self, row: Row, split: str) -> Example:
        data, where = row.data, (row.path, row.line)
        if self.layout == "dsbs":
            question, equation_field, source = require(data, "input", *where), "label", {}
        else:
            body, ask = require(data, "Body", *where), require(data, "Question", *where)
            question, equation_field = f"{body.strip()} {ask.strip()}", "Equation"
            source = {"source_id": str(require(data, "ID", *where, (str, int))), "source_id_field": "ID"}
        equation = require(data, equation_field, *where)
        try:
            result = evaluate_equation(equation)
        except ValueError as error:
            raise DataError(*where, equation_field, str(error)) from None
        rationale = equation_rationale(equation, result)
        if self.layout == "original":
            # The stated Answer is the gold everyone scores against; where the equation disagrees (chal-680:
            # "( ( 4.0 - 2.0 ) + 3.0 )" with Answer 1.0) the equation cannot serve as its rationale.
            stated = require(data, "Answer", *where, (int, float))
            if not answers.numbers_equal(str(stated), str(result), rel=1e-4):
                rationale, source["equation_disagrees"] = None, True
            result = float(stated)
        return Example(
            id=f"{split}-{row.index}",
            question=" ".join(question.split()),
            answer=answers.format_number(result),
            rationale=rationale,
            meta={**source, "equation": equation},
        )
