"""e-SNLI: the Distilling Step-by-Step layout (`esnli_{split}.json`, JSON Lines, beside `llm/`) and the
official CSVs (`esnli_train_1.csv` + `esnli_train_2.csv`, `esnli_dev.csv`, `esnli_test.csv`).

Both layouts give row ids `"{split}-{row}"`: the release's recorded PaLM rationales are aligned to row
order, and its train rows are the Hugging Face `esnli` train split, i.e. train_1 then train_2 of the CSVs.
With no path, the small sample shipped in the package is read (DSbS layout).
"""

from importlib import resources
from pathlib import Path

from elad.errors import DataError, EladError
from elad.io import require
from elad.tasks.base import AnswerKind, Example, Task, reject_unknown
from elad.tasks.rows import Row

NLI_LABELS = ("entailment", "neutral", "contradiction")
NLI_INSTRUCTION = (
    "Does the premise entail the hypothesis, contradict it, or neither? Explain your reasoning step by step, "
    "then finish with 'So the answer is entailment', 'So the answer is neutral' or "
    "'So the answer is contradiction'."
)
CSV_FILES = {"train": ("esnli_train_1.csv", "esnli_train_2.csv"), "valid": ("esnli_dev.csv",),
             "test": ("esnli_test.csv",)}


def packaged_sample(name: str) -> Path:
    """A small licensed sample shipped inside the package, for offline demos and tests."""
    return Path(str(resources.files("elad.tasks") / "samples" / name))


def nli_question(premise: str, hypothesis: str) -> str:
    return f"Premise: {premise.strip()}\nHypothesis: {hypothesis.strip()}"


def nli_label(row: dict, field: str, row_ref: Row) -> str:
    """0/1/2 (Hugging Face and DSbS), a label word, or ANLI's e/n/c, as a canonical label."""
    value = require(row, field, row_ref.path, row_ref.line, (int, str))
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1, 2):
        return NLI_LABELS[value]
    words = {"e": "entailment", "n": "neutral", "c": "contradiction", **{label: label for label in NLI_LABELS}}
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise DataError(row_ref.path, row_ref.line, field, f"expected 0, 1 or 2 or an NLI label, got {value!r}")


def detect_layout(root: Path, layouts: dict[str, list[str]], task: str) -> str:
    """The first layout one of whose marker file patterns exists under root."""
    for layout, patterns in layouts.items():
        if any(next(root.glob(pattern), None) is not None for pattern in patterns):
            return layout
    expected = "; ".join(f"{layout}: {', '.join(p)}" for layout, p in layouts.items())
    raise EladError(f"task.path: {root} holds no {task} files (looked for {expected})")


class EsnliTask(Task):
    """options: layout (auto | dsbs | csv), skip_bad_rows, exemplars."""

    LAYOUTS = {"dsbs": ["esnli_*.json"], "csv": ["esnli_*.csv"]}

    def __init__(self, path: str | Path | None = None, layout: str = "auto", skip_bad_rows: bool = False,
                 exemplars: str = "train", **unknown):
        reject_unknown("esnli", unknown)
        super().__init__(name="esnli", answer_kind=AnswerKind.LABEL, labels=NLI_LABELS, instruction=NLI_INSTRUCTION,
                         splits=("train", "valid", "test"), skip_bad_rows=skip_bad_rows, exemplar_source=exemplars)
        self.root = Path(path) if path else packaged_sample("esnli")
        if not self.root.exists():
            raise EladError(f"task.path: {self.root} does not exist")
        if layout == "auto":
            layout = detect_layout(self.root, self.LAYOUTS, "e-SNLI")
        if layout not in self.LAYOUTS:
            raise EladError(f"task.options.layout: '{layout}' is not one of auto, {', '.join(self.LAYOUTS)}")
        self.layout = layout

    def files(self, split: str) -> list[Path]:
        if split not in self.splits:
            raise self.unknown_split(split)
        if self.layout == "csv":
            return [self.root / name for name in CSV_FILES[split]]
        return [self.root / f"esnli_{split}.json"]

    def example(self, row: Row, split: str) -> Example:
        data = row.data
        if self.layout == "csv":
            premise, hypothesis, label = "Sentence1", "Sentence2", "gold_label"
            explanation, source_id = data.get("Explanation_1"), {"source_id": data.get("pairID", "")}
        else:
            premise, hypothesis, label = "premise", "hypothesis", "label"
            explanation, source_id = data.get("explanation_1"), {}
        return Example(
            id=f"{split}-{row.index}",
            question=nli_question(require(data, premise, row.path, row.line),
                                  require(data, hypothesis, row.path, row.line)),
            answer=nli_label(data, label, row),
            rationale=(explanation or "").strip() or None,
            meta={**source_id, "source_id_field": "pairID"} if source_id else {},
        )
