"""e-SNLI: the Distilling Step-by-Step files, the official CSV columns, and the packaged sample."""

import csv
from functools import lru_cache

import pytest

from elad.errors import DataError
from elad.tasks import TASKS
from tests.conftest import SHARED_DATA

DSBS = SHARED_DATA / "dsbs-rationales" / "esnli"
needs_data = pytest.mark.skipif(not DSBS.exists(), reason="shared data not present")


@lru_cache(maxsize=None)
def load(split: str):
    task = TASKS.create("esnli", path=str(DSBS))
    return task, task.load(split)


@needs_data
@pytest.mark.parametrize("split, count", [("valid", 9842), ("test", 9824)])
def test_dsbs_record_counts_match_the_readme(split, count):
    task, examples = load(split)
    assert len(examples) == count and task.layout == "dsbs"
    assert all(task.parse_answer(task.target(e.rationale, e.answer)) == e.answer for e in examples)


def test_packaged_sample_needs_no_path():
    task = TASKS.create("esnli")
    assert len(task.load("valid")) == 1200 and len(task.load("dev")) == 1200 and len(task.load("test")) == 500


COLUMNS = ["pairID", "gold_label", "Sentence1", "Sentence2", "Explanation_1"]


def write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def test_official_csv_columns_with_train_split_over_two_files(tmp_path):
    write_csv(tmp_path / "esnli_train_1.csv", [["p1", "entailment", "A man sleeps.", "A man rests.", "Sleeping is rest."],
                                               ["p2", "neutral", "A dog runs.", "A dog is happy.", "Not all dogs."]])
    write_csv(tmp_path / "esnli_train_2.csv", [["p3", "contradiction", "A cat sits.", "A cat runs.", "Sits, not runs."]])
    write_csv(tmp_path / "esnli_dev.csv", [["d1", "neutral", "Kids play.", "Kids play chess.", "Maybe not chess."]])
    task = TASKS.create("esnli", path=str(tmp_path))
    train = task.load("train")
    assert task.layout == "csv"
    # Row ids run on across train_1 and train_2: the Hugging Face order the DSbS train rationales follow.
    assert [(e.id, e.answer, e.meta["source_id"]) for e in train] == [
        ("train-0", "entailment", "p1"), ("train-1", "neutral", "p2"), ("train-2", "contradiction", "p3")]
    assert train[0].question == "Premise: A man sleeps.\nHypothesis: A man rests." and train[2].rationale == "Sits, not runs."
    assert task.load("dev")[0].id == "valid-0" and task.available_splits() == ["train", "valid"]


def test_csv_with_an_empty_hypothesis_or_a_short_row(tmp_path):
    write_csv(tmp_path / "esnli_dev.csv", [["d1", "neutral", "Kids play.", "", "x"], ["d2", "neutral", "Only three"],
                                           ["d3", "entailment", "A b.", "A.", "e"], ["d3", "neutral", "A c.", "C.", "n"]])
    with pytest.raises(DataError, match=r"esnli_dev.csv, line 2: field 'Sentence2': missing or empty"):
        TASKS.create("esnli", path=str(tmp_path)).load("valid")
    task = TASKS.create("esnli", path=str(tmp_path), skip_bad_rows=True)
    assert [e.id for e in task.load("valid")] == ["valid-2"]
    assert task.skipped["valid"] == 3
    assert any("line 3: field 'Sentence2': row has too few cells" in p for p in task.problems["valid"])
    assert any("duplicate id 'd3'" in p for p in task.problems["valid"])
