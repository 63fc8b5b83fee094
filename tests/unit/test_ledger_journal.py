"""The ledger's write-ahead journal in the run store, each attempt reserved, the learned prompt margin,
and calls that wait for room instead of being refused (no model, no server)."""

import json
import sqlite3
import threading

import pytest

from elad.store import ResponseCache, RunStore, StoreJournal
from elad.teachers import Budget, BudgetExhausted, CachedTeacher, Ledger, Price, Request, TeacherError
from elad.teachers.base import Completion, Response, TeacherBase
from tests.fakes.teachers import ScriptedTeacher, words


def _request(i=0, text="one two three four", max_tokens=10):
    return Request(messages=({"role": "user", "content": f"{text} {i}"},), max_tokens=max_tokens, example_id=f"e{i}")


def _journal(tmp_path) -> StoreJournal:
    RunStore(tmp_path / "run.db")
    return StoreJournal(tmp_path / "run.db")


def _calls(tmp_path) -> list[dict]:
    db = sqlite3.connect(tmp_path / "run.db")
    db.row_factory = sqlite3.Row
    return [dict(r) for r in db.execute("SELECT * FROM teacher_calls ORDER BY id")]


def _reservations(tmp_path) -> list[str]:
    db = sqlite3.connect(tmp_path / "run.db")
    return [r[0] for r in db.execute("SELECT state FROM reservations ORDER BY id")]


class Dies(BaseException):
    """The process dies with the request at the server."""


def test_a_reservation_is_durable_before_the_request_leaves(tmp_path):
    seen_at_send = []
    teacher = ScriptedTeacher(lambda r: seen_at_send.append(_reservations(tmp_path)) or "ok")
    Ledger(Budget(), count_tokens=words, journal=_journal(tmp_path)).call(teacher, _request())
    assert seen_at_send == [["open"]]
    assert _reservations(tmp_path) == ["paid"] and [c["status"] for c in _calls(tmp_path)] == ["paid"]


def test_a_request_in_flight_at_a_crash_counts_at_its_worst_case_on_resume(tmp_path):
    ledger = Ledger(Budget(tokens=60), Price(prompt=1e6), count_tokens=words, journal=_journal(tmp_path),
                    prompt_margin=1.0)
    with pytest.raises(Dies):
        ledger.call(ScriptedTeacher([Dies()]), _request())
    assert _reservations(tmp_path) == ["open"]
    # The next process: the open reservation (5 + 4 prompt tokens, 10 completion) is charged before anything.
    after = Ledger(Budget(tokens=60), Price(prompt=1e6), count_tokens=words, journal=StoreJournal(tmp_path / "run.db"))
    after.recover(ScriptedTeacher([]))
    assert (after.spent.calls, after.spent.tokens, after.spent.lost) == (1, 19, 1)
    (row,) = _calls(tmp_path)
    assert (row["status"], row["prompt_tokens"], row["completion_tokens"], row["dollars"]) == ("lost", 9, 10, 9.0)
    assert RunStore(tmp_path / "run.db").teacher_totals().calls == 1


def test_a_reply_the_cache_caught_before_the_crash_settles_its_reservation(tmp_path):
    cache = ResponseCache(tmp_path / "teacher_cache.db")
    teacher = CachedTeacher(ScriptedTeacher(lambda r: "the paid reply"), cache)
    journal = _journal(tmp_path)
    ledger = Ledger(Budget(), count_tokens=words, journal=journal)
    original, journal.settle = journal.settle, lambda *a: (_ for _ in ()).throw(Dies())
    with pytest.raises(Dies):
        ledger.call(teacher, _request())
    journal.settle = original
    inner = ScriptedTeacher([])
    again = Ledger(Budget(), count_tokens=words, journal=StoreJournal(tmp_path / "run.db"))
    again.recover(CachedTeacher(inner, ResponseCache(tmp_path / "teacher_cache.db")))
    (row,) = _calls(tmp_path)
    assert (row["status"], json.loads(row["completions"]), again.spent.lost) == ("paid", ["the paid reply"], 0)
    assert again.spent.tokens == 5 + 3 and inner.requests == [] and ResponseCache(cache.path).unbooked() == []


class Uncounted(TeacherBase):
    """A server that reports no usage: elad counts the reply (one token each way), its bill may be more."""

    backend, model = "uncounted", "m"

    def complete(self, request, attempts=None):
        return Response([Completion("reply", 1, 1, counted=True)], self.backend, self.model, meta={"usage": "counted"})


def test_a_counted_reply_caught_before_the_crash_is_charged_its_worst_case_as_it_was_live(tmp_path):
    live = Ledger(Budget(), count_tokens=words, journal=_journal(tmp_path / "live"))
    worst_tokens, _ = live.worst_case(_request())
    assert live.call(Uncounted(), _request()) and live.spent.tokens == worst_tokens
    cache = ResponseCache(tmp_path / "teacher_cache.db")
    journal = _journal(tmp_path)
    ledger = Ledger(Budget(), count_tokens=words, journal=journal)
    journal.settle = lambda *a: (_ for _ in ()).throw(Dies())
    with pytest.raises(Dies):
        ledger.call(CachedTeacher(Uncounted(), cache), _request())
    again = Ledger(Budget(), count_tokens=words, journal=StoreJournal(tmp_path / "run.db"))
    again.recover(CachedTeacher(Uncounted(), ResponseCache(tmp_path / "teacher_cache.db")))  # the same teacher
    assert again.spent.tokens == worst_tokens and again.spent.calls == 1  # not the 1 + 1 it counted
    assert again.spent.lost == 0


def test_a_reply_recorded_but_not_booked_is_not_charged_again(tmp_path):
    cache = ResponseCache(tmp_path / "teacher_cache.db")
    teacher = CachedTeacher(ScriptedTeacher(lambda r: "the paid reply"), cache)
    teacher.booked = lambda request: (_ for _ in ()).throw(Dies())
    with pytest.raises(Dies):
        Ledger(Budget(), count_tokens=words, journal=_journal(tmp_path)).call(teacher, _request())
    assert len(cache.unbooked()) == 1
    again = Ledger(Budget(), count_tokens=words, journal=StoreJournal(tmp_path / "run.db"))
    again.recover(CachedTeacher(ScriptedTeacher([]), ResponseCache(tmp_path / "teacher_cache.db")))
    assert len(_calls(tmp_path)) == 1 and again.spent.calls == 1 and ResponseCache(cache.path).unbooked() == []


class Retrying(TeacherBase):
    """A teacher that fails `failures` attempts (`maybe_billed` each), announcing each retry, then answers."""

    backend, model = "retrying", "m"

    def __init__(self, failures: int, maybe_billed: bool):
        self.failures, self.maybe_billed, self.sent = failures, maybe_billed, 0

    def complete(self, request, attempts=None):
        for _ in range(self.failures):
            self.sent += 1
            attempts.retry(self.maybe_billed)
        self.sent += 1
        return Response([Completion("ok", 5, 1)], self.backend, self.model, meta={"usage": "reported"})


def test_every_retry_is_reserved_and_one_that_may_be_billed_is_charged(tmp_path):
    ledger = Ledger(Budget(), count_tokens=words, journal=_journal(tmp_path), prompt_margin=1.0)
    ledger.call(Retrying(failures=2, maybe_billed=True), _request())
    assert _reservations(tmp_path) == ["lost", "lost", "paid"]
    assert (ledger.spent.calls, ledger.spent.lost, ledger.spent.tokens) == (3, 2, 2 * (9 + 10) + 6)
    ledger.call(Retrying(failures=1, maybe_billed=False), _request(1))
    assert _reservations(tmp_path)[3:] == ["void", "paid"] and ledger.spent.calls == 4


def test_a_retry_the_budget_cannot_hold_is_never_sent(tmp_path):
    teacher = Retrying(failures=5, maybe_billed=True)
    ledger = Ledger(Budget(calls=2), count_tokens=words, journal=_journal(tmp_path))
    with pytest.raises(BudgetExhausted):
        ledger.call(teacher, _request())
    assert teacher.sent == 2 and ledger.spent.calls == 2 and ledger.reserved.calls == 0


def test_a_reply_without_usage_is_charged_at_its_worst_case(tmp_path):
    def counted(request, attempts=None):
        return Response([Completion("a b", 4, 2)], "t", "m", meta={"usage": "counted"})

    teacher = ScriptedTeacher([])
    teacher.complete = counted
    ledger = Ledger(Budget(), count_tokens=words, journal=_journal(tmp_path), prompt_margin=1.0)
    ledger.call(teacher, _request())
    (row,) = _calls(tmp_path)
    assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == ("unreported", 9, 10)


def test_the_prompt_margin_is_learned_from_the_providers_usage(tmp_path):
    """The caller's tokenizer counts 40 prompt tokens where the provider bills 77: before any usage the
    worst case takes 1.25 x 40; after it, 1.1 x 77/40 of every estimate, so the next call cannot pass a
    budget by undercounting, and a later process starts from what this one learned."""
    request = _request(text=" ".join(["w"] * 35))  # 36 words + 4 for the template = 40
    billed = lambda r, attempts=None: Response([Completion("ok", 77, 1)], "t", "m", meta={"usage": "reported"})
    teacher = ScriptedTeacher([])
    teacher.complete = billed
    ledger = Ledger(Budget(), count_tokens=words, journal=_journal(tmp_path))
    assert ledger.worst_case(request)[0] == 50 + 10
    ledger.call(teacher, request)
    assert ledger.worst_case(request)[0] == 85 + 10  # ceil(40 x 1.1 x 77/40)
    later = Ledger(Budget(), count_tokens=words, journal=StoreJournal(tmp_path / "run.db"))
    assert later.worst_case(request)[0] == 85 + 10


def test_calls_wait_for_room_instead_of_being_refused():
    """Two in flight and a budget for about three calls: the third waits for the first two to settle
    (they spend less than their worst case) instead of being refused while they are in flight."""
    teacher = ScriptedTeacher(lambda r: "ok", delay=0.05)
    ledger = Ledger(Budget(tokens=3 * 19 + 2), count_tokens=words, prompt_margin=1.0)  # worst case 19, spend 6
    done, refused = [], []

    def work(i):
        try:
            ledger.call(teacher, _request(i))
            done.append(i)
        except BudgetExhausted:
            refused.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(done + refused) == list(range(6)) and len(done) >= 5 and ledger.spent.tokens <= 59


def test_the_round_limit_refuses_without_saying_the_budget_is_spent():
    ledger = Ledger(Budget(calls=10), count_tokens=words, limit=Budget(calls=1))
    ledger.call(ScriptedTeacher(lambda r: "ok"), _request())
    with pytest.raises(BudgetExhausted) as refused:
        ledger.call(ScriptedTeacher(lambda r: "ok"), _request(1))
    assert refused.value.total is False and not ledger.exhausted(10)
    ledger.limit = None
    ledger.call(ScriptedTeacher(lambda r: "ok"), _request(1))
    spent = Ledger(Budget(calls=2), count_tokens=words)
    spent.call(ScriptedTeacher(lambda r: "ok"), _request())
    spent.call(ScriptedTeacher(lambda r: "ok"), _request(1))
    with pytest.raises(BudgetExhausted) as refused:
        spent.call(ScriptedTeacher(lambda r: "ok"), _request(2))
    assert refused.value.total is True and spent.exhausted(10)


def test_an_unreachable_teacher_after_retries_is_released_unless_it_may_have_billed(tmp_path):
    ledger = Ledger(Budget(), count_tokens=words, journal=_journal(tmp_path))
    with pytest.raises(TeacherError):
        ledger.call(ScriptedTeacher([TeacherError("HTTP 503")]), _request())
    timed_out = TeacherError("timed out")
    timed_out.maybe_billed = True
    with pytest.raises(TeacherError):
        ledger.call(ScriptedTeacher([timed_out]), _request(1))
    assert _reservations(tmp_path) == ["void", "lost"] and (ledger.spent.failed, ledger.spent.lost) == (1, 1)
