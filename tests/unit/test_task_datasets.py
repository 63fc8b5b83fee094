"""Data in through the formats `datasets` users keep: Parquet files, folders written by save_to_disk, and
`hf:` datasets (read here from a local folder, which `datasets.load_dataset` treats like a Hub repo); and
splits without gold answers, marked by `elad data inspect` and refused as a test split."""

import json

import pytest

from elad.config import ExperimentConfig
from elad.errors import DataError, EladError
from elad.loop.build import load_questions
from elad.tasks import TASKS
from elad.tasks.inspect import inspect_task, render_text

datasets = pytest.importorskip("datasets")

ROWS = {
    "train": [{"q": f"What is {i} plus {i}?", "a": str(2 * i), "why": f"{i} and {i} make {2 * i}."} for i in range(6)],
    "test": [{"q": f"What is {i} times 3?", "a": str(3 * i), "why": None} for i in range(4)],
}
OPTIONS = {"answer_kind": "number", "question": "q", "answer": "a", "rationale": "why"}


def _expected(split):
    return [(f"{split}-{i}", row["a"], row["why"]) for i, row in enumerate(ROWS[split])]


def _loaded(task, split):
    return [(e.id, e.answer, e.rationale) for e in task.load(split)]


def _dataset_dict():
    return datasets.DatasetDict({split: datasets.Dataset.from_list(rows) for split, rows in ROWS.items()})


def test_a_folder_of_parquet_split_files(tmp_path):
    for split, part in _dataset_dict().items():
        part.to_parquet(str(tmp_path / f"{split}.parquet"))
    task = TASKS.create("custom", path=str(tmp_path), **OPTIONS)
    assert task.splits == ("train", "test") and task.default_splits == ("train", "test")
    assert _loaded(task, "train") == _expected("train") and _loaded(task, "test") == _expected("test")


def test_one_parquet_file_is_the_split_all(tmp_path):
    _dataset_dict()["train"].to_parquet(str(tmp_path / "mine.parquet"))
    task = TASKS.create("custom", path=str(tmp_path / "mine.parquet"), **OPTIONS)
    assert _loaded(task, "all") == [(f"all-{i}", a, why) for i, (_, a, why) in enumerate(_expected("train"))]


def test_a_folder_written_by_save_to_disk(tmp_path):
    _dataset_dict().save_to_disk(str(tmp_path / "saved"))
    task = TASKS.create("custom", path=str(tmp_path / "saved"), **OPTIONS)
    assert set(task.splits) == {"train", "test"} and _loaded(task, "train") == _expected("train")
    datasets.Dataset.from_list(ROWS["test"]).save_to_disk(str(tmp_path / "one"))
    assert _loaded(TASKS.create("custom", path=str(tmp_path / "one"), **OPTIONS), "all")[0] == ("all-0", "0", None)


def test_a_bad_row_in_parquet_is_named_by_file_row_and_field(tmp_path):
    rows = [{"q": "One?", "a": "1"}, {"q": "Two?", "a": "two"}]
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "train.parquet"))
    task = TASKS.create("custom", path=str(tmp_path), answer_kind="number", question="q", answer="a")
    with pytest.raises(DataError, match=r"train\.parquet, row 2: field 'a': 'two' is not a number"):
        task.load("train")


def test_an_hf_dataset_is_read_from_the_datasets_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "owner-dataset"  # laid out like a Hub dataset repo: data/{split}.parquet
    (repo / "data").mkdir(parents=True)
    for split, part in _dataset_dict().items():
        part.to_parquet(str(repo / "data" / f"{split}.parquet"))
    task = TASKS.create("custom", path=f"hf:{repo}", **OPTIONS)
    assert _loaded(task, "test") == _expected("test")
    assert all(path.suffix == ".arrow" for path in task.files("train"))
    with pytest.raises(EladError, match="could not load the dataset"):
        TASKS.create("custom", path=f"hf:{tmp_path / 'nothing-here'}", **OPTIONS)


def test_a_split_without_gold_answers_is_marked_and_refused_as_the_test_split(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps({"q": "A?", "o": ["x", "y"], "a": "x"}) + "\n")
    (tmp_path / "test.jsonl").write_text(json.dumps({"q": "B?", "o": ["x", "y"], "a": ""}) + "\n")
    options = {"answer_kind": "option", "question": "q", "choices": "o", "answer": "a"}
    with pytest.raises(DataError, match="missing or empty"):  # the custom task needs every answer
        TASKS.create("custom", path=str(tmp_path), **options).load("test")
    official = TASKS.create("commonsenseqa", path=str(_official_csqa(tmp_path / "csqa")))
    text = render_text(inspect_task("commonsenseqa", path=str(official.root)))
    assert "no gold answers: prediction only" in text
    config = ExperimentConfig.model_validate({"task": {"name": "commonsenseqa", "path": str(official.root),
                                                       "pool_split": "train", "test_split": "test"}})
    with pytest.raises(EladError, match="1 of 1 questions of split 'test' have no gold answer"):
        load_questions(config, official)


def _official_csqa(folder):
    folder.mkdir()
    question = {"stem": "Where are books kept?", "choices": [{"label": label, "text": text} for label, text in
                                                           zip("ABCDE", ["bank", "library", "river", "sky", "sea"])]}
    for name, key in (("train_rand_split.jsonl", "B"), ("dev_rand_split.jsonl", "B"),
                      ("test_rand_split_no_answers.jsonl", None)):
        row = {"id": name, "question": question, **({"answerKey": key} if key else {})}
        (folder / name).write_text(json.dumps(row) + "\n")
    return folder
