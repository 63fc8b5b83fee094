"""CLEAR: the teacher's step verdicts and continuation turn the student's explanation into a target."""

import json

import pytest

from elad.annotation import Annotation, ClearAnnotator, Rejection
from elad.annotation.clear import REVIEW_SCHEMA, ReviewError, parse_review
from elad.tasks import Example
from elad.tasks.esnli import EsnliTask
from elad.teachers import Budget, Ledger, ReplayTeacher
from tests.fakes.teachers import ScriptedTeacher, reply_error, words

EXAMPLE = Example(id="valid-1", question="Premise: A man sleeps on a couch.\nHypothesis: A man rests.",
                  answer="entailment")
STUDENT = "A man sleeps on a couch.\nA couch is furniture.\nSleeping is not resting.\nSo the answer is contradiction."
COT_REPLY = "Sleeping is a form of resting.\nSo the answer is entailment."


def _review(verdicts, continuation=""):
    return json.dumps({"verdicts": [{"step": i + 1, "correct": ok, "reason": ""} for i, ok in enumerate(verdicts)],
                       "continuation": continuation})


REVISED = _review([True, True, False], "Sleeping is a way of resting.\nSo the answer is entailment.")


def _clear(replies, json_schema=True, **kwargs):
    teacher = ScriptedTeacher(replies, supports_json_schema=json_schema)
    ledger = Ledger(Budget(), count_tokens=words)
    return ClearAnnotator(EsnliTask(), teacher, ledger, 128, **kwargs), teacher


# --- parsing -------------------------------------------------------------------------------------


def test_json_review_stops_at_the_first_wrong_step():
    review = parse_review(_review([True, False, True], "fix"), steps=4)
    assert review.first_wrong == 2 and len(review.verdicts) == 2 and review.continuation == "fix"


def test_json_inside_a_fence_or_prose_is_read():
    text = "Here is my review:\n```json\n" + _review([True, True], "") + "\n```"
    assert parse_review(text, steps=2).first_wrong is None


def test_text_format():
    text = "Step 1: correct\nStep 2: wrong - a couch does not matter\nContinuation: Sleeping is resting.\nSo the answer is entailment."
    review = parse_review(text, steps=3)
    assert review.first_wrong == 2 and review.verdicts[1]["reason"] == "a couch does not matter"
    assert review.continuation == "Sleeping is resting.\nSo the answer is entailment."


def test_text_format_all_correct():
    review = parse_review("Step 1: correct\n**Step 2:** correct\nContinuation: none", steps=2)
    assert review.first_wrong is None and review.continuation == ""


@pytest.mark.parametrize(
    "text, problem",
    [
        ("I think the student is mostly right.", "Step N"),
        ('{"verdicts": [{"step": 1, "correct": true}], "continuation": ""', "not valid JSON"),
        (_review([True]), "stop at step 1 of 3"),
        ('{"verdicts": [{"step": 2, "correct": false}], "continuation": "x"}', "in order"),
        (_review([True, True, True, True]), "only 3 steps"),
        ('{"verdicts": [{"step": 1, "correct": "yes"}], "continuation": ""}', "true or false"),
        ("Step 1: correct\nStep 2: wrong", "Continuation"),
    ],
)
def test_unreadable_reviews_say_why(text, problem):
    with pytest.raises(ReviewError, match=problem):
        parse_review(text, steps=3)


# --- annotating ------------------------------------------------------------------------------------


def test_a_wrong_step_keeps_the_correct_prefix_and_appends_the_continuation():
    annotator, teacher = _clear([REVISED])
    result = annotator.annotate(EXAMPLE, STUDENT)
    assert isinstance(result, Annotation) and result.annotator == "clear"
    assert result.answer == "entailment"
    assert result.rationale == "A man sleeps on a couch.\nA couch is furniture.\nSleeping is a way of resting."
    d = result.details
    assert (d["outcome"], d["first_wrong"], d["kept_steps"], d["unparsable"]) == ("revised", 3, 2, 0)
    assert [v["correct"] for v in d["verdicts"]] == [True, True, False]
    assert result.raw == REVISED
    request = teacher.requests[0]
    assert request.json_schema == REVIEW_SCHEMA
    assert "1. A man sleeps on a couch.\n2. A couch is furniture." in request.messages[-1]["content"]


def test_a_lead_in_is_judged_with_the_step_it_announces_and_kept_with_it():
    student = ("Let's compare the two sentences:\nA couch is furniture.\nSleeping is not resting.\n"
               "So the answer is contradiction.")
    annotator, teacher = _clear([_review([True, False], "Sleeping is a way of resting.\nSo the answer is entailment.")])
    result = annotator.annotate(EXAMPLE, student)
    shown = teacher.requests[0].messages[-1]["content"]
    assert "1. Let's compare the two sentences: A couch is furniture.\n2. Sleeping is not resting.\n3. So" in shown
    assert result.details["kept_steps"] == 1
    assert result.rationale == "Let's compare the two sentences: A couch is furniture.\nSleeping is a way of resting."


def test_a_fully_correct_explanation_is_kept_as_it_is():
    student = "Sleeping is resting.\nSo the answer is entailment."
    annotator, _ = _clear([_review([True, True])])
    result = annotator.annotate(EXAMPLE, student)
    assert result.details["outcome"] == "kept" and result.rationale == "Sleeping is resting."
    assert result.target == "Sleeping is resting.\nSo the answer is entailment."


def test_backends_without_structured_output_get_the_text_format():
    text = "Step 1: correct\nStep 2: correct\nStep 3: wrong\nContinuation: Sleeping is resting.\nSo the answer is entailment."
    annotator, teacher = _clear([text], json_schema=False)
    result = annotator.annotate(EXAMPLE, STUDENT)
    assert result.details["format"] == "text" and result.details["outcome"] == "revised"
    assert teacher.requests[0].json_schema is None and "Step 1: correct" in teacher.requests[0].messages[-1]["content"]


def test_an_unparsable_review_is_asked_again_once_with_the_problem_shown():
    annotator, teacher = _clear(["no idea", REVISED])
    result = annotator.annotate(EXAMPLE, STUDENT)
    assert result.details["outcome"] == "revised" and result.details["unparsable"] == 1
    second = teacher.requests[1]
    assert second.sample == 1 and second.messages[-2]["content"] == "no idea"
    assert "cannot be read" in second.messages[-1]["content"]


@pytest.mark.parametrize("bare", ["So the answer is entailment.", "", "entailment", "Entailment.", "none", "N/A"])
def test_a_continuation_without_reasoning_is_asked_for_on_its_own_in_plain_text(bare):
    review = _review([True, True, False], bare)
    assert parse_review(review, steps=3).continuation in (bare, "")  # readable: the verdicts are what counts
    annotator, teacher = _clear([review, "Sleeping is a way of resting.\nSo the answer is entailment."])
    result = annotator.annotate(EXAMPLE, STUDENT)
    assert isinstance(result, Annotation) and result.answer == "entailment"
    assert result.rationale == "A man sleeps on a couch.\nA couch is furniture.\nSleeping is a way of resting."
    d = result.details
    assert (d["outcome"], d["continued"], d["unparsable"], d["calls"]) == ("revised", 1, 0, 2)
    asked = teacher.requests[1]
    assert asked.json_schema is None  # plain text, the kind of reply a small teacher writes well
    prompt = asked.messages[-1]["content"]
    assert "1. A man sleeps on a couch.\n2. A couch is furniture." in prompt  # the kept steps
    assert "wrong: Sleeping is not resting." in prompt and "3. Sleeping" not in prompt


def test_a_continuation_still_without_reasoning_falls_back_to_cot():
    annotator, teacher = _clear([_review([True, True, False], ""), "So the answer is entailment.", COT_REPLY])
    result = annotator.annotate(EXAMPLE, STUDENT)
    assert result.details["outcome"] == "cot_fallback" and "no reasoning" in result.details["fallback_reason"]
    assert result.rationale == "Sleeping is a form of resting." and len(teacher.requests) == 3


def test_a_wrong_first_step_is_continued_from_the_question_alone():
    annotator, teacher = _clear([_review([False], "So the answer is entailment."), COT_REPLY])
    result = annotator.annotate(EXAMPLE, STUDENT)
    assert result.details["kept_steps"] == 0 and result.rationale == "Sleeping is a form of resting."
    assert "checked and correct" not in teacher.requests[1].messages[-1]["content"]


def test_two_unparsable_reviews_fall_back_to_cot():
    annotator, teacher = _clear(["no idea", "still nothing", COT_REPLY])
    result = annotator.annotate(EXAMPLE, STUDENT)
    assert isinstance(result, Annotation) and result.annotator == "clear"
    d = result.details
    assert (d["outcome"], d["unparsable"], d["calls"]) == ("cot_fallback", 2, 3)
    assert d["review_raw"] == "still nothing" and result.raw == COT_REPLY
    assert result.rationale == "Sleeping is a form of resting."


def test_an_unusable_reply_counts_as_unparsable():
    annotator, _ = _clear([reply_error(), reply_error(), REVISED])
    result = annotator.annotate(EXAMPLE, STUDENT)
    assert result.details["unparsable"] == 1 and result.details["bad_replies"] == 2
    assert result.details["outcome"] == "revised"


def test_a_refused_review_is_not_asked_again_but_falls_back_to_cot():
    from elad.teachers import TeacherRefused

    annotator, teacher = _clear([TeacherRefused("HTTP 400"), COT_REPLY])
    result = annotator.annotate(EXAMPLE, STUDENT)
    assert result.details["outcome"] == "cot_fallback" and len(teacher.requests) == 2


def test_no_student_explanation_falls_back_to_cot():
    annotator, _ = _clear([COT_REPLY])
    result = annotator.annotate(EXAMPLE, None)
    assert result.details["outcome"] == "cot_fallback" and "no student explanation" in result.details["fallback_reason"]


def test_a_replay_teacher_cannot_review_so_cot_is_used_at_once():
    replay = ReplayTeacher({EXAMPLE.id: COT_REPLY}, "palm", count_tokens=words)
    annotator = ClearAnnotator(EsnliTask(), replay, Ledger(Budget(), count_tokens=words), 128)
    result = annotator.annotate(EXAMPLE, STUDENT)
    assert result.details["outcome"] == "cot_fallback" and result.details["calls"] == 1


def test_gold_check_drop_rejects_a_review_that_ends_on_a_wrong_answer():
    wrong = _review([True, True, False], "Sleeping is unrelated.\nSo the answer is neutral.")
    annotator, _ = _clear([wrong], gold_check="drop")
    result = annotator.annotate(EXAMPLE, STUDENT)
    assert isinstance(result, Rejection) and result.details["gold_disagreed"] == 1


def test_gold_check_reask_falls_back_to_cot():
    wrong = _review([True, True, False], "Sleeping is unrelated.\nSo the answer is neutral.")
    annotator, _ = _clear([wrong, COT_REPLY], gold_check="reask")
    result = annotator.annotate(EXAMPLE, STUDENT)
    assert isinstance(result, Annotation) and result.answer == "entailment"
    assert result.details["outcome"] == "cot_fallback" and result.details["gold_disagreed"] == 1
