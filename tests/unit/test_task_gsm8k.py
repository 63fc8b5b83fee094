"""GSM8K: record counts, gold-rationale cleaning, and answers read back from rationales and model solutions."""

import json
from functools import lru_cache

import pytest

from elad.tasks import TASKS
from elad.tasks.gsm8k import clean_solution
from tests.conftest import SHARED_DATA

ROOT = SHARED_DATA / "gsm8k"
needs_data = pytest.mark.skipif(not ROOT.exists(), reason="shared data not present")


@lru_cache(maxsize=None)
def load(split: str):
    task = TASKS.create("gsm8k", path=str(ROOT))
    return task, task.load(split)


@needs_data
@pytest.mark.parametrize("split, count", [("train", 7473), ("test", 1319), ("test_socratic", 1319)])
def test_record_counts_match_the_readme(split, count):
    assert len(load(split)[1]) == count


@needs_data
def test_rationales_lose_calculator_marks_and_the_final_line():
    task, train = load("train")
    first = train[0]
    assert first.answer == "72" and first.id == "train-0"
    assert first.rationale == ("Natalia sold 48/2 = 24 clips in May.\n"
                               "Natalia sold 48+24 = 72 clips altogether in April and May.")
    assert not any("<<" in e.rationale or ">>" in e.rationale or "####" in e.rationale for e in train)
    assert {e.answer for e in train} >= {"1080", "850000"}  # "#### 1,080" is the number 1080


@needs_data
@pytest.mark.parametrize("split, floor", [("train", 0.99), ("test", 0.99)])
def test_gold_rationale_gives_back_the_gold_answer(split, floor):
    """Measured: train 7,402/7,473 (99.05%), test 1,308/1,319 (99.17%) from the rationale alone, with no
    answer cue. The misses end on another quantity than the answer: a unit change ($0.25 -> 25 cents,
    0.5 hour -> 30 minutes), a comparison ("50 < 52"), rounding ("16.75 bags ... 17"), or a restated
    count ("... 135 meters in 5 minutes"). With the target's answer line, every row parses back."""
    task, examples = load(split)
    alone = sum(task.is_correct(task.parse_answer(e.rationale), e.answer) for e in examples) / len(examples)
    assert alone >= floor
    assert all(task.parse_answer(task.target(e.rationale, e.answer)) == e.answer for e in examples)


@needs_data
def test_openai_model_solutions_are_scored_as_openai_scored_them():
    """4 x 1,319 recorded GPT-3 solutions ("... A: 18"): our correctness equals their is_correct on all."""
    task, test = load("test")
    rows = [json.loads(line) for line in (ROOT / "example_model_solutions.jsonl").read_text().splitlines()]
    assert [r["question"] for r in rows] == [e.question for e in test]
    for key in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
        ours = [task.is_correct(task.parse_answer(r[key]["solution"]), e.answer) for r, e in zip(rows, test)]
        assert ours == [r[key]["is_correct"] for r in rows], key


def test_clean_solution():
    assert clean_solution("She has 2*3 = <<2*3=6>>6 pens.\n#### 6") == ("She has 2*3 = 6 pens.", "6")
    assert clean_solution("no final line") == ("no final line", None)


def write(folder, lines):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_skip_bad_rows_keeps_row_ids_and_counts_the_skipped(tmp_path):
    folder = write(tmp_path / "g", ['{"question": "q", "answer": "#### 2"}', "{broken",
                                    '{"question": "q3", "answer": "#### x"}', '{"question": "q4", "answer": "#### 4"}'])
    task = TASKS.create("gsm8k", path=str(folder), skip_bad_rows=True)
    examples = task.load("train")
    assert [e.id for e in examples] == ["train-0", "train-3"]  # ids stay aligned with the file's rows
    assert task.skipped["train"] == 2 and "line 2" in task.problems["train"][0]
