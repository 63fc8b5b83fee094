"""Replay of recorded teacher output, counted like a live teacher.

Distilling Step-by-Step released PaLM-540B few-shot rationales: `llm/{split}_CoT_{i}.json` hold one raw
continuation per task row, in row order, `B` rows a file. The continuation runs on into invented new
exemplars, so it is cut where the release's own loader cuts it.
"""

from collections.abc import Callable
from pathlib import Path

from elad.errors import DataError, EladError
from elad.io import read_json, read_jsonl, require
from elad.teachers.base import Completion, Request, Response, TeacherBase, TeacherContext

# Rows per rationale file, and where the run-on text starts, for each dataset of the release.
DSBS_LAYOUT = {
    "esnli": (5500, "Premise:"),
    "anli1": (5000, "Premise:"),
    "cqa": (1000, "Q:"),
    "svamp": (500, "Q:"),
}


# elad task name -> the release's dataset folder name.
DSBS_NAMES = {"anli": "anli1", "commonsenseqa": "cqa"}


def cut_run_on(text: str, marker: str) -> str:
    """The continuation up to the first invented exemplar (the marker), trailing blank lines removed."""
    return text.split(marker, 1)[0].strip()


def load_dsbs_rationales(root: Path, dataset: str, split: str) -> dict[str, str]:
    """{'{split}-{row}': cut rationale} for one split of the release."""
    if dataset not in DSBS_LAYOUT:
        raise EladError(f"no recorded rationales for dataset '{dataset}'; known: {', '.join(DSBS_LAYOUT)}")
    rows_per_file, marker = DSBS_LAYOUT[dataset]
    records, part = {}, 0
    while True:
        path = _rationale_file(root / "llm", split, part)
        if path is None:
            break
        texts = read_json(path)
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise DataError(path, None, None, "expected a JSON array of strings")
        for offset, text in enumerate(texts):
            records[f"{split}-{part * rows_per_file + offset}"] = cut_run_on(text, marker)
        part += 1
    if not records:
        raise DataError(root / "llm", None, None, f"no rationale files '{split}_CoT_*.json' found")
    return records


def _rationale_file(folder: Path, split: str, part: int) -> Path | None:
    for name in (f"{split}_CoT_{part}.json", f"{split}_CoT_{part}.json.gz"):
        if (folder / name).exists():
            return folder / name
    return None


def load_jsonl_rationales(path: Path) -> dict[str, str]:
    """A generic recording: JSON Lines of {"id": ..., "rationale": ..., "answer": ...}."""

    records = {}
    for line, row in read_jsonl(path):
        key = str(require(row, "id", path, line, (str, int)))
        text = require(row, "rationale", path, line)
        answer = row.get("answer")
        records[key] = f"{text.strip()}\nSo the answer is {answer}." if answer not in (None, "") else text
    return records


class ReplayTeacher(TeacherBase):
    """Serves a recorded completion per example id; usage is counted with the given tokenizer."""

    backend = "replay"
    replays = True  # the prompt does not change the answer: CLEAR falls back to CoT, re-asks are pointless
    keyed_by_example = True  # the answer depends on the example id: part of the cache key
    supports_json_schema = False

    def __init__(self, records: dict[str, str], model: str, count_tokens: Callable[[str], int]):
        self.records, self.model, self.count_tokens = records, model, count_tokens

    @classmethod
    def from_config(cls, config, context: TeacherContext) -> "ReplayTeacher":
        """source 'dsbs': the PaLM rationales of Distilling Step-by-Step beside the task's files;
        'gold': the dataset's own rationales; 'jsonl': a file of {id, rationale, answer}."""
        if config.source == "gold":
            return cls(context.gold, model="gold-rationales", count_tokens=context.count_tokens)
        if config.source == "jsonl":
            if not config.path:
                raise EladError("teacher.path: a replay teacher with source 'jsonl' needs the file's path")
            return cls(load_jsonl_rationales(Path(config.path)), config.model, context.count_tokens)
        root = Path(config.path) if config.path else context.data_root
        if root is None:
            raise EladError("teacher.path: no folder of recorded rationales given")
        records = load_dsbs_rationales(root, DSBS_NAMES.get(context.dataset, context.dataset), context.split)
        return cls(records, config.model, context.count_tokens)

    def complete(self, request: Request, attempts=None) -> Response:  # never retries: `attempts` unused
        if request.example_id not in self.records:
            raise EladError(f"replay teacher '{self.model}' has no record for example '{request.example_id}'")
        text = self.records[request.example_id]
        prompt_tokens = sum(self.count_tokens(m["content"]) for m in request.messages)
        completion = Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=self.count_tokens(text))
        return Response(completions=[completion] * request.n, backend=self.backend, model=self.model)
