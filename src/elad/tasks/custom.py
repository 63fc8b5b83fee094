"""A task from the user's own data, configured by field names and an answer kind.

    task:
      name: custom
      path: data/my_task            # a folder with {split}.jsonl|.json|.csv|.parquet, or one file (split "all"),
                                    # or a folder written by `datasets`' save_to_disk, or hf:OWNER/NAME[:CONFIG]
      options:
        answer_kind: option         # label | option | number | yes_no
        question: question          # field holding the question ...
        template: "Premise: {premise}\\nHypothesis: {hypothesis}"   # ... or a template over several fields
        answer: answer              # gold answer: a label, a letter or option text, a number, yes/no
        choices: options            # option tasks: a list, or a string split on `choice_separator`
        rationale: explanation      # optional gold rationale
        id: uid                     # optional; default "{split}-{row}"
        labels: [positive, negative]  # label tasks: the answer space (default: every answer seen, sorted)
        files: {train: a.csv, test: b.csv}   # optional explicit split -> file (relative to path)

Answers are stored in canonical form (label as listed, option letter, shortest number spelling, yes/no).

`hf:OWNER/NAME[:CONFIG]` loads a dataset from the Hugging Face Hub through `datasets.load_dataset` (the
`data` extra), or from the local `datasets` cache when the Hub cannot be reached; its splits are read from
the Arrow files `datasets` keeps in that cache.
"""

import json
from collections.abc import Iterable
from pathlib import Path
from string import Formatter

from elad.errors import DataError, EladError
from elad.tasks import answers
from elad.tasks.base import (INSTRUCTIONS, AnswerKind, Example, Task, canonical_split, data_root, format_choices,
                             reject_unknown)
from elad.tasks.rows import Row, read_rows

SUFFIXES = (".jsonl", ".json", ".csv", ".jsonl.gz", ".json.gz", ".csv.gz", ".parquet", ".arrow")
HUB = "hf:"
_YES = {"yes", "true", "1", "y"}
_NO = {"no", "false", "0", "n"}


class CustomTask(Task):
    """options: answer_kind, question | template, answer, choices, choice_separator, rationale, id, labels,
    files, task_name, instruction, skip_bad_rows, exemplars."""

    def __init__(self, path: str | Path | None = None, answer_kind: str | None = None, question: str | None = None,
                 template: str | None = None, answer: str = "answer", choices: str | None = None,
                 choice_separator: str = "|", rationale: str | None = None, id: str | None = None,
                 labels: list[str] | None = None, files: dict[str, str] | None = None, task_name: str = "custom",
                 instruction: str | None = None, skip_bad_rows: bool = False, exemplars: str = "train", **unknown):
        reject_unknown("custom", unknown)
        kinds = [kind.value for kind in AnswerKind]
        if answer_kind not in kinds:
            raise EladError(f"task.options.answer_kind: the custom task needs one of {', '.join(kinds)}")
        kind = AnswerKind(answer_kind)
        if (question is None) == (template is None):
            raise EladError("task.options: give the custom task either 'question' (a field) or 'template'")
        if kind == AnswerKind.OPTION and not choices:
            raise EladError("task.options.choices: an option task needs the field holding its choices")
        self.fields = {"question": question, "answer": answer, "choices": choices, "rationale": rationale, "id": id}
        self.template, self.choice_separator = template, choice_separator
        if str(path or "").startswith(HUB):
            self.split_files = hub_split_files(str(path)[len(HUB):])
            self.root = self.split_files[next(iter(self.split_files))][0].parent
        else:
            self.root = data_root(path, "custom")
            self.split_files = self._split_files(files)
        label_set = tuple(str(label) for label in labels) if labels else ()
        if kind == AnswerKind.YES_NO:
            label_set = ("yes", "no")
        super().__init__(name=task_name, answer_kind=kind, labels=label_set,
                         instruction=instruction or INSTRUCTIONS[kind], splits=tuple(self.split_files),
                         default_splits=_default_splits(tuple(self.split_files)), skip_bad_rows=skip_bad_rows,
                         exemplar_source=exemplars)
        if kind == AnswerKind.LABEL and not self.labels:
            self.labels = self._labels_seen()
        if kind == AnswerKind.LABEL and instruction is None and self.labels:
            # The student can only say a label it has been told about.
            listed = " or ".join(f"'So the answer is {label}.'" for label in self.labels)
            self.instruction = f"Explain your reasoning step by step, then finish with {listed}"

    def _split_files(self, files: dict | None) -> dict[str, list[Path]]:
        if files:
            return {canonical_split(split): [self.root / name] for split, name in files.items()}
        if self.root.is_file():
            return {"all": [self.root]}
        saved = saved_dataset_files(self.root)
        if saved:
            return saved
        found = {}
        for path in sorted(self.root.iterdir()):
            for suffix in SUFFIXES:
                if path.name.endswith(suffix):
                    found.setdefault(canonical_split(path.name[: -len(suffix)]), [path])
        if not found:
            raise EladError(f"task.path: {self.root} holds no {{split}}.jsonl, .json, .csv or .parquet files, and "
                            "is not a folder written by datasets' save_to_disk")
        order = {"train": 0, "valid": 1, "test": 2}
        return dict(sorted(found.items(), key=lambda item: (order.get(item[0], 3), item[0])))

    def _labels_seen(self) -> tuple[str, ...]:
        """Label tasks without `labels`: the answers found in every split, sorted (a stable answer space);
        spellings that differ only in case are one label ("Positive" and "positive": the first in sorted
        order), as answers are matched to labels without case."""
        seen = set()
        for split, paths in self.split_files.items():
            for row in read_rows(paths):
                if row.data is not None and str(row.data.get(self.fields["answer"]) or "").strip():
                    seen.add(str(row.data[self.fields["answer"]]).strip())
        kept: dict[str, str] = {}
        for label in sorted(seen):
            kept.setdefault(label.lower(), label)
        return tuple(kept.values())

    def files(self, split: str) -> list[Path]:
        if split not in self.split_files:
            raise self.unknown_split(split)
        return list(self.split_files[split])

    def rows(self, split: str) -> Iterable[Row]:
        return read_rows(self.files(split))

    def example(self, row: Row, split: str) -> Example:
        choices = self._choices(row) if self.answer_kind == AnswerKind.OPTION else ()
        question = self._question(row)
        if choices:
            question = format_choices(question, choices)
        rationale = self._text(row, self.fields["rationale"], required=False) if self.fields["rationale"] else None
        raw_id = self._text(row, self.fields["id"], required=True) if self.fields["id"] else f"{split}-{row.index}"
        return Example(id=raw_id, question=question, answer=self._answer(row, choices),
                       rationale=rationale or None, choices=choices)

    # --- fields --------------------------------------------------------------------------------

    def _text(self, row: Row, field: str, required: bool) -> str:
        value = row.data.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise DataError(row.path, row.line, field, "missing or empty")
            return ""
        if isinstance(value, (dict, list)):
            raise DataError(row.path, row.line, field, f"expected text, got {type(value).__name__}")
        return str(value).strip()

    def _question(self, row: Row) -> str:
        if self.template is None:
            return self._text(row, self.fields["question"], required=True)
        values = {}
        for _, field, _, _ in Formatter().parse(self.template):
            if field:
                values[field] = self._text(row, field, required=True)
        return self.template.replace("\\n", "\n").format(**values)

    def _choices(self, row: Row) -> tuple[str, ...]:
        field = self.fields["choices"]
        value = row.data.get(field)
        if isinstance(value, str):
            value = value.split(self.choice_separator)
        if not isinstance(value, list) or len(value) < 2 or len(value) > len(answers.LETTERS):
            raise DataError(row.path, row.line, field, f"expected 2 to {len(answers.LETTERS)} choices")
        texts = tuple(str(choice).strip() for choice in value)
        if not all(texts):
            raise DataError(row.path, row.line, field, "a choice is empty")
        return texts

    def _answer(self, row: Row, choices: tuple[str, ...]) -> str:
        field = self.fields["answer"]
        raw = self._text(row, field, required=True)
        kind = self.answer_kind
        if kind == AnswerKind.NUMBER:
            value = answers.parse_number(raw)
            if value is None:
                raise DataError(row.path, row.line, field, f"{raw!r} is not a number")
            return answers.format_number(value)
        if kind == AnswerKind.YES_NO:
            word = raw.lower()
            if word not in _YES | _NO:
                raise DataError(row.path, row.line, field, f"expected yes or no, got {raw!r}")
            return "yes" if word in _YES else "no"
        if kind == AnswerKind.OPTION:
            return self._option_answer(raw, choices, row, field)
        by_lower = {label.lower(): label for label in self.labels}
        if raw.lower() not in by_lower:
            raise DataError(row.path, row.line, field, f"{raw!r} is not one of the labels {', '.join(self.labels)}")
        return by_lower[raw.lower()]

    @staticmethod
    def _option_answer(raw: str, choices: tuple[str, ...], row: Row, field: str) -> str:
        """A letter ('B', '(b)') or the text of a choice, as the choice's letter."""
        letter = raw.strip("() .").upper()
        if len(letter) == 1 and letter in answers.LETTERS[: len(choices)]:
            return letter
        lowered = [choice.lower() for choice in choices]
        if raw.lower() in lowered:
            return answers.LETTERS[lowered.index(raw.lower())]
        raise DataError(row.path, row.line, field, f"{raw!r} is neither a choice's letter nor its text")


def _default_splits(splits: tuple[str, ...]) -> tuple[str, str]:
    pool = next((s for s in ("train", "valid", "all") if s in splits), splits[0] if splits else "all")
    test = next((s for s in ("test", "valid", "all") if s in splits and s != pool), pool)
    return pool, test


def saved_dataset_files(folder: Path) -> dict[str, list[Path]]:
    """The Arrow files of each split of a folder written by `save_to_disk`: a DatasetDict (a
    dataset_dict.json and a folder per split) or one Dataset (split "all"); {} for any other folder."""
    if (folder / "dataset_dict.json").is_file():
        splits = _json(folder / "dataset_dict.json").get("splits") or []
        return {canonical_split(split): _arrow_files(folder / split) for split in splits}
    if (folder / "state.json").is_file():
        return {"all": _arrow_files(folder)}
    return {}


def _arrow_files(folder: Path) -> list[Path]:
    state = _json(folder / "state.json")
    names = [entry["filename"] for entry in state.get("_data_files") or []]
    if not names:
        raise DataError(folder / "state.json", None, "_data_files", "lists no Arrow files")
    return [folder / name for name in names]


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(path, None, None, f"not readable as JSON ({error})") from None


def hub_split_files(spec: str) -> dict[str, list[Path]]:
    """The cached Arrow files of each split of a Hub dataset `OWNER/NAME[:CONFIG]` (or a local dataset
    folder that `datasets.load_dataset` reads), downloaded when the Hub is reachable."""
    try:
        import datasets
    except ImportError:
        raise EladError("task.path: hf: datasets need the `datasets` library: pip install 'elad[data]'") from None
    name, _, config = spec.partition(":")
    try:
        loaded = datasets.load_dataset(name, config or None)
    except Exception as error:  # noqa: BLE001 - datasets raises many kinds; all mean the same to the user
        raise EladError(f"task.path: could not load the dataset '{name}'"
                        f"{f' (config {config})' if config else ''} with datasets: {error}") from None
    found = {canonical_split(split): [Path(f["filename"]) for f in part.cache_files] for split, part in loaded.items()}
    if not found or not all(found.values()):
        raise EladError(f"task.path: the dataset '{name}' has no split kept as Arrow files in the datasets cache")
    return found
