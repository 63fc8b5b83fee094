"""What every task shares: the record reader, options, splits, exemplars, accuracy and `data inspect`."""

import json

import pytest

from elad.errors import DataError, EladError
from elad.tasks import TASKS, Example
from elad.tasks.inspect import inspect_task, render_text
from elad.tasks.rows import read_rows
from tests.conftest import SHARED_DATA

WEI = SHARED_DATA / "finetune-cot-splits" / "few_shot_cot_prompts.json"


def test_every_task_of_the_issue_is_registered():
    assert set(TASKS.names()) >= {"gsm8k", "aqua", "anli", "esnli", "commonsenseqa", "strategyqa", "svamp", "custom"}


def test_json_array_records_know_their_lines_and_a_bad_element_is_a_bad_row(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[\n  {"x": 1},\n\n  {"x": 2,\n   "y": 3},\n  7\n]\n')
    rows = list(read_rows(path))
    assert [(r.line, r.index, r.data) for r in rows[:2]] == [(2, 0, {"x": 1}), (4, 1, {"x": 2, "y": 3})]
    assert rows[2].error is not None and "line 6" in str(rows[2].error)
    path.write_text('[{"x": 1}, {"x": ]')
    with pytest.raises(DataError, match="not valid JSON"):
        list(read_rows(path))


def test_broken_jsonl_lines_are_bad_rows_not_the_end_of_the_file(tmp_path):
    path = tmp_path / "a.json"  # JSON Lines despite the name, as AQuA and DSbS write it
    path.write_text('{"x": 1}\n{oops\n\n["list"]\n{"x": 4}\n')
    rows = list(read_rows(path))
    assert [r.line for r in rows] == [1, 2, 4, 5] and [r.index for r in rows] == [0, 1, 2, 3]
    assert "not valid JSON" in str(rows[1].error) and "expected a JSON object" in str(rows[2].error)


def test_a_folder_without_the_tasks_files_is_a_user_error(tmp_path):
    with pytest.raises(EladError, match="holds no StrategyQA files"):
        TASKS.create("strategyqa", path=str(tmp_path))


def test_exemplars_from_a_split_are_seeded_and_carry_their_target(tmp_path):
    rows = [{"question": f"What is {i} + {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"} for i in range(20)]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    task = TASKS.create("gsm8k", path=str(tmp_path))
    shots = task.exemplars(3, seed=7)
    assert shots == task.exemplars(3, seed=7) and shots != task.exemplars(3, seed=8)
    example, target = shots[0]
    assert target == task.target(example.rationale, example.answer) and target.endswith(f"So the answer is {example.answer}.")
    prompt = task.few_shot_prompt(Example("q", "What is 9 + 1?", "10"), shots)
    assert prompt.startswith(f"Q: {example.question}\nA: {target}") and prompt.endswith("Q: What is 9 + 1?\nA:")
    assert task.exemplars(0) == []
    with pytest.raises(EladError, match="21 exemplars asked"):
        task.exemplars(21)
    with pytest.raises(EladError, match="no exemplars"):
        TASKS.create("gsm8k", path=str(tmp_path), exemplars="test").exemplars(2)


@pytest.mark.skipif(not WEI.exists(), reason="shared data not present")
@pytest.mark.parametrize("name, count, answers", [
    ("gsm8k", 8, ["6", "5", "39", "8", "9", "29", "33", "8"]), ("svamp", 8, None), ("aqua", 4, ["A", "B", "E", "B"]),
    ("commonsenseqa", 7, ["E", "C", "B", "A", "B", "D", "C"]), ("strategyqa", 6, ["yes", "yes", "no", "yes", "no", "no"])])
def test_wei_exemplars(tmp_path, name, count, answers):
    layout = {"commonsenseqa": "train_rand_split.jsonl", "strategyqa": "train.json", "svamp": "SVAMP.json"}
    (tmp_path / layout.get(name, "x")).write_text("[]")
    task = TASKS.create(name, path=str(tmp_path), exemplars=str(WEI))
    shots = task.exemplars(count)
    assert len(shots) == count and all(target.endswith(f"So the answer is {e.answer}.") for e, target in shots)
    if answers:
        assert [e.answer for e, _ in shots] == answers
    if name in ("aqua", "commonsenseqa"):
        assert shots[1][0].choices[:2] in (("1/2", "3/2"), ("radio shack", "substation"))


def test_accuracy_leaves_out_unlabelled_examples():
    task = TASKS.create("esnli")
    examples = [Example("a", "q", "neutral"), Example("b", "q", "entailment"), Example("c", "q", "")]
    assert task.accuracy(["neutral", None, "neutral"], examples) == 0.5
    with pytest.raises(ValueError):
        task.accuracy(["neutral"], examples)


def test_inspect_shows_counts_balance_and_examples(tmp_path):
    rows = [{"question": f"Q{i}", "options": ["A)1", "B)2"], "rationale": f"r{i}", "correct": "AB"[i % 2]}
            for i in range(5)]
    (tmp_path / "dev.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n{bad\n")
    text = render_text(inspect_task("aqua", str(tmp_path), options={"skip_bad_rows": True}, examples=2))
    assert "valid" in text and "│ A      │ 3 (60.0%) │" in text and "skipped rows" in text and "line 6" in text
    assert text.count("gold target") == 2 and "So the answer is" in text
    with pytest.raises(EladError):
        inspect_task("nope")
    assert "not valid JSON" in render_text(inspect_task("aqua", str(tmp_path), splits=["valid"]))
