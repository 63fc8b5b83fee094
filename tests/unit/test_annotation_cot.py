"""CoT prompting: few-shot exemplars, the gold check, unusable replies, N in flight."""

import threading

import pytest

from elad.annotation import ANNOTATORS, Annotation, CotAnnotator, Rejection, build_annotator
from elad.tasks import Example
from elad.tasks.esnli import EsnliTask
from elad.teachers import Budget, BudgetExhausted, Ledger
from tests.fakes.teachers import ScriptedTeacher, reply_error, words

EXAMPLE = Example(id="valid-1", question="Premise: A man sleeps.\nHypothesis: A man rests.", answer="entailment")
GOOD = "Sleeping is a way of resting.\nSo the answer is entailment."
WRONG = "Sleeping is unrelated to resting.\nSo the answer is neutral."


class TaskWithExemplars(EsnliTask):
    """Exemplars as the tasks give them: (example, target text) pairs."""

    def exemplars(self, k, seed=0):
        items = [
            Example(id=f"train-{i}", question=f"Premise: P{i}\nHypothesis: H{i}", answer="neutral", rationale=f"R{i}")
            for i in range(5)
        ]
        return [(e, self.target(e.rationale, e.answer)) for e in items[seed: seed + k]]


class TaskWithoutExemplars:
    """A task from before `exemplars` existed: everything else is e-SNLI's."""

    def __init__(self):
        self._task = EsnliTask()

    def __getattr__(self, name):
        if name == "exemplars":
            raise AttributeError(name)
        return getattr(self._task, name)


def _annotator(replies, task=None, **kwargs):
    teacher = ScriptedTeacher(replies)
    ledger = Ledger(Budget(), count_tokens=words)
    return CotAnnotator(task or EsnliTask(), teacher, ledger, 64, **kwargs), teacher, ledger


def test_zero_shot_annotation():
    annotator, teacher, _ = _annotator([GOOD])
    result = annotator.annotate(EXAMPLE)
    assert isinstance(result, Annotation)
    assert (result.rationale, result.answer) == ("Sleeping is a way of resting.", "entailment")
    assert result.target.endswith("So the answer is entailment.")
    assert result.details["few_shot"] == 0 and result.details["calls"] == 1
    assert [m["role"] for m in teacher.requests[0].messages] == ["system", "user"]


def test_few_shot_exemplars_come_as_earlier_turns():
    annotator, teacher, _ = _annotator([GOOD], task=TaskWithExemplars(), few_shot=2, seed=1)
    result = annotator.annotate(EXAMPLE)
    messages = teacher.requests[0].messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "P1" in messages[1]["content"] and messages[2]["content"] == "R1\nSo the answer is neutral."
    assert result.details["few_shot"] == 2


def test_few_shot_falls_back_to_zero_shot_when_the_task_has_no_exemplars():
    annotator, teacher, _ = _annotator([GOOD], task=TaskWithoutExemplars(), few_shot=3)
    assert annotator.annotate(EXAMPLE).details["few_shot"] == 0
    assert len(teacher.requests[0].messages) == 2


def test_examples_with_a_rationale_are_accepted_as_exemplars_too():
    class Plain(EsnliTask):
        def exemplars(self, k, seed=0):
            return [Example(id="t", question="Premise: P\nHypothesis: H", answer="neutral", rationale="R")]

    annotator, _, _ = _annotator([GOOD], task=Plain(), few_shot=1)
    assert annotator.exemplars[0][1:] == ("R\nSo the answer is neutral.", "t")


def test_an_exemplar_is_never_the_question_itself():
    annotator, teacher, _ = _annotator([GOOD], task=TaskWithExemplars(), few_shot=2)
    annotator.annotate(Example(id="train-0", question="Premise: P0\nHypothesis: H0", answer="neutral"))
    assert sum(m["role"] == "assistant" for m in teacher.requests[0].messages) == 1


def test_gold_check_off_keeps_a_wrong_answer():
    annotator, _, _ = _annotator([WRONG])
    assert annotator.annotate(EXAMPLE).answer == "neutral"


def test_gold_check_drop():
    annotator, teacher, _ = _annotator([WRONG], gold_check="drop")
    result = annotator.annotate(EXAMPLE)
    assert isinstance(result, Rejection) and "disagrees" in result.reason
    assert result.details["gold_disagreed"] == 1 and len(teacher.requests) == 1


def test_gold_check_reask_asks_again_with_a_new_sample_at_a_higher_temperature():
    annotator, teacher, _ = _annotator([WRONG, GOOD], gold_check="reask")
    result = annotator.annotate(EXAMPLE)
    assert isinstance(result, Annotation) and result.answer == "entailment"
    assert result.details["asks"] == 2 and result.details["gold_disagreed"] == 1
    first, second = teacher.requests
    assert (first.sample, second.sample) == (0, 1) and second.temperature > first.temperature


def test_gold_check_reask_gives_up_after_one_reask():
    annotator, teacher, _ = _annotator([WRONG, WRONG], gold_check="reask")
    result = annotator.annotate(EXAMPLE)
    assert isinstance(result, Rejection) and "re-ask" in result.reason and result.details["gold_disagreed"] == 2


def test_an_unusable_reply_is_asked_once_more():
    annotator, _, ledger = _annotator([reply_error(), GOOD])
    result = annotator.annotate(EXAMPLE)
    assert isinstance(result, Annotation) and result.details["bad_replies"] == 1 and result.details["calls"] == 2
    assert ledger.spent.calls == 2  # the unusable reply was paid for too


def test_two_unusable_replies_reject_the_item():
    annotator, _, _ = _annotator([reply_error(), reply_error()])
    result = annotator.annotate(EXAMPLE)
    assert isinstance(result, Rejection) and result.details["bad_replies"] == 2


def test_a_refused_request_is_rejected_at_once_and_not_charged():
    from elad.teachers import TeacherRefused

    annotator, teacher, ledger = _annotator([TeacherRefused("HTTP 400: too long")])
    result = annotator.annotate(EXAMPLE)
    assert isinstance(result, Rejection) and "too long" in result.reason
    assert len(teacher.requests) == 1 and ledger.spent.calls == 0 and result.details["refused"] == 1


def test_an_unreachable_teacher_is_raised_not_rejected():
    from elad.teachers import TeacherError

    annotator, _, _ = _annotator([TeacherError("connection refused")])
    with pytest.raises(TeacherError):
        annotator.annotate(EXAMPLE)


def test_annotate_many_keeps_n_in_flight_and_records_in_the_calling_thread():
    teacher = ScriptedTeacher(lambda r: GOOD, delay=0.02)
    threads = []
    ledger = Ledger(Budget(), count_tokens=words, on_call=lambda *a: threads.append(threading.get_ident()))
    annotator = CotAnnotator(EsnliTask(), teacher, ledger, 64)
    examples = [Example(id=f"e{i}", question=EXAMPLE.question, answer="entailment") for i in range(16)]
    results = list(annotator.annotate_many(examples, concurrency=8))
    assert sorted(e.id for e, _ in results) == sorted(e.id for e in examples)
    assert all(isinstance(r, Annotation) for _, r in results)
    assert teacher.peak > 1 and set(threads) == {threading.get_ident()} and len(threads) == 16


def test_annotate_many_stops_at_the_budget():
    teacher = ScriptedTeacher(lambda r: GOOD, delay=0.01)
    annotator = CotAnnotator(EsnliTask(), teacher, Ledger(Budget(calls=5), count_tokens=words), 64)
    examples = [Example(id=f"e{i}", question=EXAMPLE.question, answer="entailment") for i in range(16)]
    done = []
    with pytest.raises(BudgetExhausted):
        for example, result in annotator.annotate_many(examples, concurrency=4):
            done.append(example.id)
    assert len(done) == 5


def test_build_annotator_reads_the_config():
    from elad.config import parse_config

    config = parse_config(
        "teacher: {max_tokens: 99, temperature: 0.2}\nannotation: {method: clear, few_shot: 2, gold_check: reask}"
    )
    annotator = build_annotator(config.annotation, config.teacher, TaskWithExemplars(), ScriptedTeacher([]),
                                Ledger(Budget()), seed=0)
    assert annotator.name == "clear" and annotator.max_tokens == 99 and annotator.temperature == 0.2
    assert annotator.gold_check == "reask" and len(annotator.exemplars) == 2
    assert "clear" in ANNOTATORS and "cot" in ANNOTATORS
