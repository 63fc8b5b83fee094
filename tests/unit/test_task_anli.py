"""ANLI R1-R3 in the official layout and the Distilling Step-by-Step task files."""

from functools import lru_cache

import pytest

from elad.errors import EladError
from elad.tasks import TASKS
from tests.conftest import SHARED_DATA

OFFICIAL, DSBS = SHARED_DATA / "anli", SHARED_DATA / "dsbs-rationales" / "anli1"
needs_data = pytest.mark.skipif(not (OFFICIAL.exists() and DSBS.exists()), reason="shared data not present")


@lru_cache(maxsize=None)
def load(path, split: str, round=1):
    task = TASKS.create("anli", path=str(path), round=round)
    return task, task.load(split)


@needs_data
@pytest.mark.parametrize("round, split, count", [
    (1, "valid", 1000), (1, "test", 1000), (2, "dev", 1000), (2, "test", 1000), (3, "valid", 1200), (3, "test", 1200),
    ("all", "test", 3200)])
def test_official_record_counts_match_the_readme(round, split, count):
    task, examples = load(OFFICIAL, split, round)
    assert len(examples) == count and task.layout == "official"


@needs_data
@pytest.mark.parametrize("split", ["valid", "test"])
def test_dsbs_files_are_r1_row_for_row(split):
    """The README's check: DSbS anli1 valid/test are R1 dev/test uid for uid, in order; so are our ids."""
    task, dsbs = load(DSBS, split)
    _, official = load(OFFICIAL, split, 1)
    assert task.layout == "dsbs" and len(dsbs) == 1000
    assert [(e.id, e.meta["source_id"], e.answer, e.question) for e in dsbs] == \
        [(e.id, e.meta["source_id"], e.answer, e.question) for e in official]


@needs_data
def test_labels_reasons_and_balance():
    task, dev = load(OFFICIAL, "valid", 1)
    assert dev[0].answer == "contradiction" and dev[0].question.startswith("Premise: Linguistics is")
    assert dev[0].rationale.startswith("Linguistics involves an analysis")
    assert {e.answer for e in dev} == set(task.labels)
    assert all(task.parse_answer(task.target(e.rationale, e.answer)) == e.answer for e in dev if e.rationale)


def test_a_round_folder_works_as_path(tmp_path):
    (tmp_path / "dev.jsonl").write_text('{"uid": "u1", "context": "p", "hypothesis": "h", "label": "n"}\n')
    assert TASKS.create("anli", path=str(tmp_path)).load("dev")[0].answer == "neutral"


def test_bad_round_and_duplicate_uid(tmp_path):
    with pytest.raises(EladError, match="round"):
        TASKS.create("anli", path=str(tmp_path), round=4)
    row = '{"uid": "u1", "context": "p", "hypothesis": "h", "label": "e"}\n'
    (tmp_path / "test.jsonl").write_text(row + row)
    with pytest.raises(EladError, match=r"line 2: field 'uid': duplicate id 'u1' \(first on line 1\)"):
        TASKS.create("anli", path=str(tmp_path)).load("test")
    task = TASKS.create("anli", path=str(tmp_path), skip_bad_rows=True)
    assert len(task.load("test")) == 1 and task.skipped["test"] == 1
