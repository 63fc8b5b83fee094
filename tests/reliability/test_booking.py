"""A paid reply is booked however the process dies (fast: no model, no server).

The response cache keeps each reply *unbooked* until the ledger's caller has recorded its call; a reply
an earlier process paid for but did not record is charged and recorded by the next process's ledger
before it sends anything. And a paid call is recorded when it ends, not when its item ends.
"""

import sqlite3
import threading
import time

from elad.annotation import CotAnnotator
from elad.store import ResponseCache
from elad.tasks import Example
from elad.tasks.esnli import EsnliTask
from elad.teachers import Budget, BudgetExhausted, CachedTeacher, Ledger, Price, Request
from tests.fakes.teachers import ScriptedTeacher, reply_error, words
from tests.reliability.conftest import FIGURES

REPLY = "A man sleeping is resting.\nSo the answer is entailment."
EXAMPLES = [Example(id=f"valid-{i}", question=f"Premise: A man {i} sleeps.\nHypothesis: A man {i} rests.",
                    answer="entailment") for i in range(4)]


def _request(i: int) -> Request:
    return Request(messages=({"role": "user", "content": f"question {i}"},), max_tokens=8, example_id=f"e{i}")


def _died_after_the_reply(cache_path, request) -> ScriptedTeacher:
    """A process that got a paid reply into the cache and died before its call was recorded."""
    inner = ScriptedTeacher(lambda r: "paid reply text")
    CachedTeacher(inner, ResponseCache(cache_path)).complete(request)
    return inner


def test_a_reply_paid_by_a_process_that_died_is_charged_and_recorded_first(tmp_path):
    cache = tmp_path / "teacher_cache.db"
    _died_after_the_reply(cache, _request(0))
    recorded = []
    inner = ScriptedTeacher(lambda r: "new reply")
    teacher = CachedTeacher(inner, ResponseCache(cache))
    ledger = Ledger(Budget(calls=2), Price(prompt=1e6), count_tokens=words,
                    on_call=lambda req, resp, d: recorded.append((req.example_id, resp.cache_hit, resp.meta, d)))
    ledger.call(teacher, _request(1))
    assert recorded[0] == ("e0", False, {"recovered": True}, 2.0)  # 2 prompt words at $1 a token
    assert recorded[1][:2] == ("e1", False) and ledger.spent.calls == 2
    # It is booked now: asked again it is a free hit, and a third process recovers nothing.
    again = ledger.call(teacher, _request(0))
    assert again.cache_hit and len(inner.requests) == 1
    third = Ledger(Budget(), count_tokens=words, on_call=lambda *a: recorded.append(a))
    third.call(CachedTeacher(ScriptedTeacher([]), ResponseCache(cache)), _request(0))
    assert third.spent.calls == 0
    FIGURES["faults_injected"] += 1
    FIGURES["recovered_replies"] += 1


def test_a_recovered_reply_counts_against_the_budget(tmp_path):
    cache = tmp_path / "teacher_cache.db"
    _died_after_the_reply(cache, _request(0))
    inner = ScriptedTeacher(lambda r: "new reply")
    ledger = Ledger(Budget(calls=2), count_tokens=words)
    teacher = CachedTeacher(inner, ResponseCache(cache))
    ledger.call(teacher, _request(1))
    try:
        ledger.call(teacher, _request(2))
        raise AssertionError("a third paid call passed a budget of 2")
    except BudgetExhausted:
        pass
    assert ledger.spent.calls == 2 and len(inner.requests) == 1


def test_a_reply_whose_record_failed_stays_unbooked(tmp_path):
    cache = tmp_path / "teacher_cache.db"

    def store_is_full(*_):
        raise sqlite3.OperationalError("database or disk is full")

    ledger = Ledger(Budget(), count_tokens=words, on_call=store_is_full)
    try:
        ledger.call(CachedTeacher(ScriptedTeacher(lambda r: "paid"), ResponseCache(cache)), _request(0))
    except sqlite3.OperationalError:
        pass
    recorded = []
    Ledger(Budget(), count_tokens=words, on_call=lambda *a: recorded.append(a)).call(
        CachedTeacher(ScriptedTeacher(lambda r: "x"), ResponseCache(cache)), _request(1))
    assert [r[0].example_id for r in recorded] == ["e0", "e1"]


def test_a_hit_on_a_reply_not_booked_yet_is_an_ordinary_free_hit(tmp_path):
    """Worker threads: the first ask's record waits for the flush; a second ask of the same prompt in the
    meantime is a free hit, and the reply is booked once."""
    teacher = CachedTeacher(ScriptedTeacher(lambda r: "one"), ResponseCache(tmp_path / "c.db"))
    recorded = []
    ledger = Ledger(Budget(), count_tokens=words, on_call=lambda req, resp, d: recorded.append(resp.cache_hit))
    with ledger.deferred():
        for _ in range(2):
            worker = threading.Thread(target=ledger.call, args=(teacher, _request(0)))
            worker.start()
            worker.join()
        assert recorded == []  # not flushed yet
    assert recorded == [False, True] and ledger.spent.calls == 1
    assert teacher.cache.unbooked() == []


def test_an_old_cache_without_bookings_is_read_as_booked(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, backend TEXT NOT NULL, model TEXT NOT NULL,"
               " request TEXT NOT NULL, completions TEXT NOT NULL, created_at REAL NOT NULL)")
    db.execute("INSERT INTO responses VALUES ('k', 'b', 'm', '{}', '[]', 0)")
    db.commit()
    db.close()
    assert ResponseCache(path).unbooked() == []


def test_a_paid_call_is_recorded_before_the_same_item_asks_again():
    """One in flight: the unusable first reply (paid) is in the store before the re-ask is sent."""
    events = []
    teacher = ScriptedTeacher([reply_error(usage=(5, 0)), REPLY])
    original = teacher.complete

    def complete(request, attempts=None):
        events.append("sent")
        return original(request, attempts)

    teacher.complete = complete
    ledger = Ledger(Budget(), count_tokens=words, on_call=lambda *a: events.append("recorded"))
    annotator = CotAnnotator(EsnliTask(), teacher, ledger, 32)
    results = list(annotator.annotate_many(EXAMPLES[:1], concurrency=1))
    assert events == ["sent", "recorded", "sent", "recorded"] and results[0][1].answer == "entailment"


def test_with_workers_a_paid_call_is_recorded_while_its_item_is_still_running():
    main = threading.get_ident()
    recorded, asked = [], []

    def reply(request):
        asked.append(time.time())
        if len(asked) == 1:
            return reply_error(usage=(5, 0))
        time.sleep(0.4)  # the re-ask takes long
        return REPLY

    teacher = ScriptedTeacher(reply)
    ledger = Ledger(Budget(), count_tokens=words,
                    on_call=lambda *a: recorded.append((time.time(), threading.get_ident())))
    annotator = CotAnnotator(EsnliTask(), teacher, ledger, 32)
    list(annotator.annotate_many(EXAMPLES[:1], concurrency=2))
    assert len(recorded) == 2 and {thread for _, thread in recorded} == {main}
    assert recorded[0][0] < asked[1] + 0.3  # recorded while the re-ask was still running
