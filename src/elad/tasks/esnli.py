"""e-SNLI in the Distilling Step-by-Step layout: `esnli_{split}.json` (JSON Lines) beside `llm/`."""

from importlib import resources
from pathlib import Path

from elad.errors import DataError
from elad.tasks.base import AnswerKind, Example, Task
from elad.io import read_jsonl, require

NLI_LABELS = ("entailment", "neutral", "contradiction")
NLI_INSTRUCTION = (
    "Does the premise entail the hypothesis, contradict it, or neither? Explain your reasoning step by step, "
    "then finish with 'So the answer is entailment', 'So the answer is neutral' or "
    "'So the answer is contradiction'."
)


def packaged_sample(name: str) -> Path:
    """A small licensed sample shipped inside the package, for offline demos and tests."""
    return Path(str(resources.files("elad.tasks") / "samples" / name))


class EsnliTask(Task):
    def __init__(self, path: str | Path | None = None):
        super().__init__(name="esnli", answer_kind=AnswerKind.LABEL, labels=NLI_LABELS, instruction=NLI_INSTRUCTION)
        self.root = Path(path) if path else packaged_sample("esnli")

    def load(self, split: str) -> list[Example]:
        path = self.root / f"esnli_{split}.json"
        return [self._example(row, split, index, path, line) for index, (line, row) in enumerate(read_jsonl(path))]

    def _example(self, row: dict, split: str, index: int, path: Path, line: int) -> Example:
        premise = require(row, "premise", path, line)
        hypothesis = require(row, "hypothesis", path, line)
        label = require(row, "label", path, line, int)
        if label not in (0, 1, 2):
            raise DataError(path, line, "label", f"expected 0, 1 or 2, got {label}")
        return Example(
            # Row-index ids: the recorded rationales of this release are aligned to row order.
            id=f"{split}-{index}",
            question=f"Premise: {premise.strip()}\nHypothesis: {hypothesis.strip()}",
            answer=NLI_LABELS[label],
            rationale=row.get("explanation_1") or None,
        )
