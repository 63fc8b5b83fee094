"""The ledger under concurrency and faults: reservations, charges, deferred notifications."""

import threading

import pytest

from elad.teachers import Budget, BudgetExhausted, Ledger, Price, Request, TeacherError, TeacherReplyError
from elad.teachers.concurrent import complete_many
from tests.fakes.teachers import ScriptedTeacher, reply_error, unreachable, words


def _request(i=0, max_tokens=10, text="one two three"):
    return Request(messages=({"role": "user", "content": text},), max_tokens=max_tokens, example_id=str(i))


def test_worst_case_counts_the_prompt_the_template_overhead_a_margin_and_every_completion():
    ledger = Ledger(Budget(), Price(prompt=1e6, completion=1e6), count_tokens=words, message_overhead=4)
    request = Request(messages=({"role": "system", "content": "a b"}, {"role": "user", "content": "c"}), max_tokens=5, n=2)
    # (2 + 4) + (1 + 4) = 11 prompt tokens by our count, times the 1.25 margin: 14; and 2 x 5 completion.
    assert ledger.worst_case(request) == (14 + 10, pytest.approx(24.0))
    exact = Ledger(Budget(), Price(prompt=1e6, completion=1e6), count_tokens=words, prompt_margin=1.0)
    assert exact.worst_case(request) == (11 + 10, pytest.approx(21.0))


@pytest.mark.parametrize("budget", [Budget(tokens=100), Budget(calls=5), Budget(dollars=100 * 1e-6)])
def test_many_in_flight_never_overspend(budget):
    # Each call's worst case is 3 + 4 + 10 = 17 tokens; it really spends 3 + 5 = 8.
    teacher = ScriptedTeacher(lambda r: "five words of reply text", delay=0.02)
    ledger = Ledger(budget, Price(prompt=1.0, completion=1.0), count_tokens=words)
    refused, lock = [], threading.Lock()

    def worker(i):
        try:
            ledger.call(teacher, _request(i))
        except BudgetExhausted:
            with lock:
                refused.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spent = ledger.spent
    assert spent.calls + len(refused) == 32 and spent.calls >= 1
    assert budget.tokens is None or spent.tokens <= budget.tokens
    assert budget.calls is None or spent.calls <= budget.calls
    assert budget.dollars is None or spent.dollars <= budget.dollars + 1e-12
    assert ledger.reserved.calls == 0 and ledger.reserved.tokens == 0
    assert spent.calls == len(teacher.requests)


def test_a_refused_call_is_never_sent():
    teacher = ScriptedTeacher(lambda r: "x")
    ledger = Ledger(Budget(tokens=10), count_tokens=words)
    with pytest.raises(BudgetExhausted):
        ledger.call(teacher, _request(max_tokens=8))  # 3 + 4 + 8 = 15 > 10
    assert teacher.requests == [] and ledger.spent.calls == 0


def test_an_unreachable_teacher_is_not_charged_and_frees_its_reservation():
    teacher = ScriptedTeacher([unreachable()])
    seen = []
    ledger = Ledger(Budget(calls=1), count_tokens=words, on_call=lambda *a: seen.append(a))
    with pytest.raises(TeacherError):
        ledger.call(teacher, _request())
    assert (ledger.spent.calls, ledger.spent.tokens, ledger.spent.failed) == (0, 0, 1)
    assert ledger.reserved.calls == 0 and seen == []
    assert ledger.affordable(_request())


def test_an_unusable_reply_is_charged_with_its_usage_and_recorded():
    teacher = ScriptedTeacher([reply_error(usage=(7, 2), raw="{bro")])
    seen = []
    ledger = Ledger(Budget(), Price(prompt=1e6), count_tokens=words, on_call=lambda *a: seen.append(a))
    with pytest.raises(TeacherReplyError):
        ledger.call(teacher, _request())
    assert (ledger.spent.calls, ledger.spent.prompt_tokens, ledger.spent.completion_tokens) == (1, 7, 2)
    (request, response, dollars), = seen
    assert response.completions[0].finish_reason == "error" and response.meta["error"] == "not JSON"
    assert dollars == pytest.approx(7.0) and ledger.reserved.calls == 0


def test_an_unusable_reply_without_usage_is_charged_its_worst_case():
    """The provider may have billed a whole reply that came back garbled: the reservation's worst case."""
    ledger = Ledger(Budget(), count_tokens=words)
    with pytest.raises(TeacherReplyError):
        ledger.call(ScriptedTeacher([reply_error(usage=None)]), _request())
    # 3 words + 4 for the template, times the 1.25 margin: 9; max_tokens 10.
    assert (ledger.spent.calls, ledger.spent.prompt_tokens, ledger.spent.completion_tokens) == (1, 9, 10)


def test_deferred_notifications_run_in_the_flushing_thread():
    calls = []
    ledger = Ledger(Budget(), count_tokens=words, on_call=lambda req, resp, d: calls.append(threading.get_ident()))
    teacher = ScriptedTeacher(lambda r: "ok", delay=0.01)
    results = list(complete_many(teacher, ledger, [_request(i) for i in range(12)], concurrency=4))
    assert len(results) == 12 and len(calls) == 12
    assert set(calls) == {threading.get_ident()}
    assert teacher.peak > 1


def test_complete_many_stops_at_the_budget_and_keeps_what_finished():
    ledger = Ledger(Budget(calls=5), count_tokens=words)
    teacher = ScriptedTeacher(lambda r: "ok", delay=0.01)
    done = []
    with pytest.raises(BudgetExhausted):
        for request, response in complete_many(teacher, ledger, [_request(i) for i in range(20)], concurrency=4):
            done.append(request.example_id)
    assert len(done) == 5 == ledger.spent.calls == len(teacher.requests)


def test_ledger_restored_from_totals_keeps_counting():
    from elad.teachers import Spent

    ledger = Ledger(Budget(calls=3), spent=Spent(calls=2))
    ledger.call(ScriptedTeacher(lambda r: "ok"), _request())
    with pytest.raises(BudgetExhausted):
        ledger.call(ScriptedTeacher(lambda r: "ok"), _request())
    assert ledger.remaining().calls == 0
