"""CommonsenseQA: the official files and the Distilling Step-by-Step (CoS-E) files."""

from functools import lru_cache

import pytest

from elad.tasks import TASKS
from tests.conftest import SHARED_DATA

OFFICIAL, DSBS = SHARED_DATA / "commonsenseqa", SHARED_DATA / "dsbs-rationales" / "cqa"
needs_data = pytest.mark.skipif(not (OFFICIAL.exists() and DSBS.exists()), reason="shared data not present")


@lru_cache(maxsize=None)
def load(path, split: str):
    task = TASKS.create("commonsenseqa", path=str(path))
    return task, task.load(split)


@needs_data
@pytest.mark.parametrize("path, split, count", [
    (OFFICIAL, "train", 9741), (OFFICIAL, "valid", 1221), (OFFICIAL, "test", 1140), (DSBS, "train", 9741),
    (DSBS, "test", 1221)])
def test_record_counts_match_the_readme(path, split, count):
    assert len(load(path, split)[1]) == count


@needs_data
def test_official_test_split_has_no_answers_and_scores_nothing():
    task, test = load(OFFICIAL, "test")
    assert {e.answer for e in test} == {""}
    assert not task.is_correct("A", test[0].answer) and task.accuracy(["A"] * len(test), test) == 0.0


@needs_data
def test_dsbs_test_is_the_official_dev_split_in_another_order():
    """Same questions and gold answers, keyed by the dataset's own id; DSbS adds CoS-E explanations.
    DSbS gives the answer as text, so where a question lists the same text twice ("indestructible" as A
    and D, "mortal" as A and E: 2 of 1,221) its letter is the first one, the official key the other."""
    task, dsbs = load(DSBS, "test")
    _, dev = load(OFFICIAL, "valid")
    def gold_text(e):
        return e.choices, e.choices["ABCDE".index(e.answer)]
    assert {e.meta["source_id"]: gold_text(e) for e in dsbs} == {e.meta["source_id"]: gold_text(e) for e in dev}
    by_id = {e.meta["source_id"]: e.answer for e in dev}
    assert sum(by_id[e.meta["source_id"]] != e.answer for e in dsbs) == 2
    assert dsbs[0].id == "test-0" and dsbs[0].answer == "C" and dsbs[0].rationale.startswith("Wooden area")
    assert [e.id for e in dsbs[:3]] == ["test-0", "test-1", "test-2"]
    assert all(task.parse_answer(task.target(e.rationale, e.answer), e) == e.answer for e in dsbs)
