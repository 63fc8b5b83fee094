"""The custom task: the user's JSONL / JSON / CSV, configured by field names and an answer kind."""

import json

import pytest

from elad.errors import DataError, EladError
from elad.tasks import TASKS


def jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_number_task_from_a_folder_of_split_files(tmp_path):
    jsonl(tmp_path / "train.jsonl", [{"q": "2+2?", "a": "4", "why": "2+2 is 4."}, {"q": "Half of 3?", "a": "1.50"}])
    jsonl(tmp_path / "dev.jsonl", [{"q": "1,000+1?", "a": "$1,001"}])
    task = TASKS.create("custom", path=str(tmp_path), answer_kind="number", question="q", answer="a", rationale="why")
    train = task.load("train")
    assert [(e.id, e.answer, e.rationale) for e in train] == [("train-0", "4", "2+2 is 4."), ("train-1", "1.5", None)]
    assert task.load("valid")[0].answer == "1001" and task.splits == ("train", "valid")
    assert task.default_splits == ("train", "valid")
    assert task.is_correct(task.parse_answer("So the answer is 1.50 dollars."), "1.5")


def test_option_task_from_csv_with_choices_in_one_cell_and_answers_as_text_or_letter(tmp_path):
    (tmp_path / "test.csv").write_text("uid,question,options,gold\n"
                                       "a1,Where are books?,bank|library|river,library\n"
                                       "a2,Where is water?,bank|library|river,(c)\n")
    task = TASKS.create("custom", path=str(tmp_path), answer_kind="option", question="question", choices="options",
                        answer="gold", id="uid")
    first, second = task.load("test")
    assert (first.id, first.answer, first.choices) == ("a1", "B", ("bank", "library", "river"))
    assert first.question == "Where are books?\nAnswer choices: (A) bank (B) library (C) river"
    assert second.answer == "C" and task.candidates(second) == ("A", "B", "C")


def test_label_task_with_a_template_and_labels_read_from_the_data(tmp_path):
    path = jsonl(tmp_path / "nli.jsonl", [{"p": "A man sleeps.", "h": "A man rests.", "y": "Entailment"},
                                          {"p": "A dog.", "h": "A cat.", "y": "contradiction"}])
    task = TASKS.create("custom", path=str(path), answer_kind="label", template="Premise: {p}\nHypothesis: {h}",
                        answer="y", labels=["entailment", "neutral", "contradiction"], task_name="my-nli")
    examples = task.load("all")
    assert examples[0].question == "Premise: A man sleeps.\nHypothesis: A man rests." and examples[0].answer == "entailment"
    assert task.name == "my-nli" and task.parse_answer("It is not possible to tell.") == "neutral"
    seen = TASKS.create("custom", path=str(path), answer_kind="label", template="{p} / {h}", answer="y")
    assert seen.labels == ("Entailment", "contradiction")


def test_empty_and_duplicate_ids_are_reported(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", [{"id": "x", "q": "a", "a": 1}, {"id": " ", "q": "b", "a": 2},
                                        {"id": "x", "q": "c", "a": 3}])
    options = dict(answer_kind="number", question="q", answer="a", id="id")
    with pytest.raises(DataError, match=r"line 2: field 'id': missing or empty"):
        TASKS.create("custom", path=str(path), **options).load("all")
    task = TASKS.create("custom", path=str(path), skip_bad_rows=True, **options)
    assert [e.id for e in task.load("all")] == ["x"]
    assert task.problems["all"][1].endswith("field 'id': duplicate id 'x' (first on line 1)")


@pytest.mark.parametrize("options, message", [
    ({"question": "q"}, "answer_kind"),
    ({"answer_kind": "number"}, "either 'question'"),
    ({"answer_kind": "option", "question": "q"}, "choices"),
    ({"answer_kind": "number", "question": "q", "qestion_typo": 1}, "unknown option"),
])
def test_configuration_mistakes_are_user_errors(tmp_path, options, message):
    jsonl(tmp_path / "all.jsonl", [{"q": "a", "answer": 1}])
    with pytest.raises(EladError, match=message):
        TASKS.create("custom", path=str(tmp_path), **options)


def test_labels_that_differ_only_in_case_are_one_label(tmp_path):
    path = jsonl(tmp_path / "reviews.jsonl", [{"t": "Great.", "y": "Positive"}, {"t": "Fine.", "y": "positive"},
                                              {"t": "Bad.", "y": "negative"}])
    task = TASKS.create("custom", path=str(path), answer_kind="label", question="t", answer="y")
    assert task.labels == ("Positive", "negative")
    golds = [e.answer for e in task.load("all")]
    assert golds == ["Positive", "Positive", "negative"]
    assert task.is_correct(task.parse_answer("So the answer is positive."), golds[1])


def test_a_byte_order_mark_is_read_past_in_jsonl_and_csv(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps({"q": "2+2?", "a": "4"}).encode() + b"\n")
    task = TASKS.create("custom", path=str(tmp_path / "a.jsonl"), answer_kind="number", question="q", answer="a")
    assert [e.answer for e in task.load("all")] == ["4"]
    (tmp_path / "b.csv").write_bytes(b"\xef\xbb\xbfquestion,answer\n2+3?,5\n")
    task = TASKS.create("custom", path=str(tmp_path / "b.csv"), answer_kind="number", question="question",
                        answer="answer")
    assert [(e.question, e.answer) for e in task.load("all")] == [("2+3?", "5")]
