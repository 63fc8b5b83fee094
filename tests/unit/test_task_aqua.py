"""AQuA-RAT: record counts, options, and the letter read back from the human rationales."""

from functools import lru_cache

import pytest

from elad.errors import DataError
from elad.tasks import TASKS
from tests.conftest import SHARED_DATA

ROOT = SHARED_DATA / "aqua"
needs_data = pytest.mark.skipif(not ROOT.exists(), reason="shared data not present")


@lru_cache(maxsize=None)
def load(split: str):
    task = TASKS.create("aqua", path=str(ROOT))
    return task, task.load(split)


@needs_data
@pytest.mark.parametrize("split, count", [("valid", 254), ("dev", 254), ("test", 254)])
def test_record_counts_match_the_readme(split, count):
    assert len(load(split)[1]) == count


@needs_data
def test_options_become_choices_and_the_question_lists_them():
    task, dev = load("valid")
    first = dev[0]
    assert first.choices == ("32400", "6000", "600", "60000", "10") and first.answer == "A"
    assert first.question.endswith("Answer choices: (A) 32400 (B) 6000 (C) 600 (D) 60000 (E) 10")
    assert task.candidates(first) == ("A", "B", "C", "D", "E")
    assert task.available_splits() == ["valid", "test"]  # train.json is not in the shared copy


@needs_data
@pytest.mark.parametrize("split, floor", [("valid", 0.98), ("test", 0.98)])
def test_gold_rationale_gives_back_the_gold_letter(split, floor):
    """Measured: dev 251/254 (98.8%), test 250/254 (98.4%) from the rationale alone ("Answer: Option B",
    "correct option is B", "Answer D", a last line "A"). The misses state no letter: three end on a value
    only, one on "ANSWER: 3", one on "Answer=25/12*5" (a cue that is a variable), one on ">>B", one on a
    sentence without an answer. With the target's answer line every row parses back."""
    task, examples = load(split)
    alone = sum(task.parse_answer(e.rationale, e) == e.answer for e in examples) / len(examples)
    assert alone >= floor
    assert all(task.parse_answer(task.target(e.rationale, e.answer), e) == e.answer for e in examples)


def test_options_out_of_order_name_the_field(tmp_path):
    (tmp_path / "test.json").write_text('{"question": "q", "options": ["A)1", "C)2"], "rationale": "r", '
                                        '"correct": "A"}\n')
    with pytest.raises(DataError, match=r"line 1: field 'options': option 2 should start with 'B\)'"):
        TASKS.create("aqua", path=str(tmp_path)).load("test")
