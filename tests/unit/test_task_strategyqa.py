"""StrategyQA: the official arrays (facts as rationale) and the BIG-bench task with Fine-tune-CoT splits."""

from functools import lru_cache

import pytest

from elad.errors import DataError, EladError
from elad.tasks import TASKS
from tests.conftest import SHARED_DATA

ROOT = SHARED_DATA / "strategyqa"
SPLITS = SHARED_DATA / "finetune-cot-splits" / "split" / "strategy_qa__default.json"
needs_data = pytest.mark.skipif(not (ROOT.exists() and SPLITS.exists()), reason="shared data not present")


@lru_cache(maxsize=None)
def load(path, split: str, split_file=None):
    task = TASKS.create("strategyqa", path=str(path), **({"split_file": str(split_file)} if split_file else {}))
    return task, task.load(split)


@needs_data
@pytest.mark.parametrize("path, split, split_file, count", [
    (ROOT, "train", None, 2061), (ROOT, "dev", None, 229), (ROOT / "bigbench", "all", None, 2290),
    (ROOT / "bigbench", "train", SPLITS, 1603), (ROOT / "bigbench", "test", SPLITS, 687)])
def test_record_counts_match_the_readme(path, split, split_file, count):
    assert len(load(path, split, split_file)[1]) == count


@needs_data
def test_answers_and_rationales():
    task, train = load(ROOT, "train")
    first = train[0]
    assert first.question == "Are more people today related to Genghis Khan than Julius Caesar?" and first.answer == "yes"
    assert first.rationale.startswith("Julius Caesar had three children. Genghis Khan had sixteen children.")
    assert task.candidates(first) == ("yes", "no") and first.meta["source_id"] == "2bc9c4f9c19c167187f2"
    _, bigbench = load(ROOT / "bigbench", "all")
    assert bigbench[0].answer == "yes" and bigbench[0].rationale.startswith("College commencement ceremonies")
    assert sum(e.answer == "no" for e in bigbench) == 1219  # target_scores: 1,219 No, 1,071 Yes
    for examples in (train, bigbench):
        assert all(task.parse_answer(task.target(e.rationale, e.answer)) == e.answer for e in examples)


@needs_data
def test_index_splits_cover_the_task_once():
    _, train = load(ROOT / "bigbench", "train", SPLITS)
    _, test = load(ROOT / "bigbench", "test", SPLITS)
    _, everything = load(ROOT / "bigbench", "all")
    assert sorted(e.question for e in train + test) == sorted(e.question for e in everything)
    assert train[0].id == "train-0"


def test_split_file_needs_the_bigbench_layout_and_valid_indices(tmp_path):
    (tmp_path / "train.json").write_text("[]")
    (tmp_path / "split.json").write_text('{"train": [0]}')
    with pytest.raises(EladError, match="split_file"):
        TASKS.create("strategyqa", path=str(tmp_path), split_file=str(tmp_path / "split.json"))
    bigbench = tmp_path / "bb"
    bigbench.mkdir()
    (bigbench / "task.json").write_text('{"examples": [{"input": "Q?", "target_scores": {"Yes": 1, "No": 0}}]}')
    (tmp_path / "split.json").write_text('{"train": [0, 5]}')
    task = TASKS.create("strategyqa", path=str(bigbench), split_file=str(tmp_path / "split.json"))
    with pytest.raises(DataError, match="row index 5 is past the end"):
        task.load("train")
