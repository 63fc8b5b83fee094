"""bench/clear_lead_ins.py: the student's lead-in steps are joined to the step they announce before review."""

import json

from elad.tasks import Example
from elad.tasks.esnli import EsnliTask
from elad.teachers import Budget, Ledger
from tests.conftest import load_bench
from tests.fakes.teachers import ScriptedTeacher, words

EXAMPLE = Example(id="valid-1", question="Premise: A man sleeps on a couch.\nHypothesis: A man rests.",
                  answer="entailment")


def test_a_lead_in_is_found_in_the_stored_steps():
    bench = load_bench("clear_lead_ins")
    assert bench.has_lead_in(["To solve this, follow these steps:", "5 - 2 = 3.", "So the answer is 3."])
    assert not bench.has_lead_in(["5 - 2 = 3.", "So the answer is 3."])


def test_the_teacher_judges_the_merged_steps():
    bench = load_bench("clear_lead_ins")
    review = json.dumps({"verdicts": [{"step": 1, "correct": True, "reason": ""},
                                      {"step": 2, "correct": True, "reason": ""}], "continuation": ""})
    teacher = ScriptedTeacher([review], supports_json_schema=True)
    annotator = bench.LeadInsMerged(EsnliTask(), teacher, Ledger(Budget(), count_tokens=words), 128)
    stored = ["Let's compare the two:", "Sleeping is resting.", "So the answer is entailment."]
    result = annotator.annotate(EXAMPLE, "\n".join(stored))
    shown = teacher.requests[0].messages[-1]["content"]
    assert "1. Let's compare the two: Sleeping is resting.\n2. So the answer is entailment." in shown
    assert result.details["outcome"] == "kept" and result.answer == "entailment"


def test_the_check_shows_the_teacher_the_steps_as_stored():
    bench = load_bench("clear_lead_ins")
    review = json.dumps({"verdicts": [{"step": i, "correct": True, "reason": ""} for i in (1, 2, 3)],
                         "continuation": ""})
    teacher = ScriptedTeacher([review], supports_json_schema=True)
    annotator = bench.StoredSteps(EsnliTask(), teacher, Ledger(Budget(), count_tokens=words), 128)
    annotator.annotate(EXAMPLE, "Let's compare the two:\nSleeping is resting.\nSo the answer is entailment.")
    assert "1. Let's compare the two:\n2. Sleeping is resting.\n3. So" in teacher.requests[0].messages[-1]["content"]
