"""The batch teacher against the fake server's files + batches endpoints (loopback only): one batch per
gathering of requests, replies booked one by one, failed lines not charged, and a batch that a stopped
process left behind picked up by the next one instead of being charged at its worst case."""

import threading
import time

import pytest

from elad.store import ResponseCache, RunStore, StoreJournal
from elad.teachers import (
    BatchTeacher, Budget, CachedTeacher, Ledger, OpenAITeacher, Price, Request, TeacherError, complete_many,
)
from elad.teachers.batch import BatchInterrupted
from tests.fakes.openai_server import DEFAULT_REPLY, FakeOpenAIServer
from tests.fakes.teachers import words

pytestmark = pytest.mark.integration

PRICE = Price(prompt=1e6, completion=2e6)  # $1 a prompt token, $2 a completion token: easy sums


def _requests(count: int) -> list[Request]:
    return [Request(messages=({"role": "user", "content": f"Does man {i} rest?"},), max_tokens=32,
                    example_id=f"e{i}") for i in range(count)]


def _teacher(server, folder, **kwargs) -> CachedTeacher:
    cache = ResponseCache(folder / "teacher_cache.db")
    plain = OpenAITeacher("fake-teacher", count_tokens=words, base_url=server.base_url, api_key="k", timeout=5)
    settings = {"poll_seconds": 0.02, "window": 0.2, **kwargs}
    return CachedTeacher(BatchTeacher(plain, log=cache, **settings), cache)


def _ledger(folder, budget=Budget()) -> Ledger:
    RunStore(folder / "run.db")
    return Ledger(budget, PRICE, count_tokens=words, journal=StoreJournal(folder / "run.db"))


def _ask_all(teacher, ledger, requests):
    return {r.example_id: response for r, response in complete_many(teacher, ledger, requests, concurrency=64)}


def _ask_in_threads(teacher, ledger, requests) -> tuple[dict, dict]:
    """Each request by the ledger in a thread of its own: (replies, errors) by example id. A thread still
    waiting after 30 s fails the test."""
    results, errors = {}, {}

    def ask(request):
        try:
            results[request.example_id] = ledger.call(teacher, request)
        except TeacherError as error:
            errors[request.example_id] = error

    threads = [threading.Thread(target=ask, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a caller is still waiting for its reply"
    return results, errors


def test_requests_in_flight_together_go_as_one_batch_and_each_reply_is_booked(tmp_path):
    with FakeOpenAIServer(batch_polls=2) as server:
        teacher, ledger = _teacher(server, tmp_path), _ledger(tmp_path)
        replies = _ask_all(teacher, ledger, _requests(6))
        assert len(server.batches) == 1 and server.batch_retrieves == 3  # in progress twice, then completed
        assert {r.completions[0].text for r in replies.values()} == {DEFAULT_REPLY}
        assert all(r.meta["batch"] == "batch_1" for r in replies.values())
        billed = server.billed
        assert (ledger.spent.calls, ledger.spent.prompt_tokens, ledger.spent.completion_tokens) == (
            6, billed.prompt_tokens, billed.completion_tokens)
        assert ledger.spent.dollars == pytest.approx(billed.prompt_tokens + 2 * billed.completion_tokens)
        lines = server.files["file-1"][1].decode().splitlines()
        assert len(lines) == 6 and '"max_tokens": 32' in lines[0] and '"url": "/v1/chat/completions"' in lines[0]
        # Asked again: from the cache, no second batch, nothing charged.
        _ask_all(teacher, ledger, _requests(6))
        assert len(server.batches) == 1 and ledger.spent.calls == 6


def test_a_failed_line_is_an_error_for_its_request_only_and_costs_nothing(tmp_path):
    with FakeOpenAIServer() as server:
        server.cue("ok", "400", "ok")
        teacher, ledger = _teacher(server, tmp_path), _ledger(tmp_path)
        results, errors = _ask_in_threads(teacher, ledger, _requests(3))
        assert len(server.batches) == 1
        assert len(results) == 2 and len(errors) == 1
        assert "HTTP 400" in str(next(iter(errors.values())))
        assert ledger.spent.calls == 2 and ledger.spent.failed == 1 and server.billed.calls == 2
        assert ledger.reserved.calls == 0


def test_a_broken_reply_line_fails_its_request_only_and_no_caller_is_left_waiting(tmp_path):
    with FakeOpenAIServer() as server:
        server.cue("bad_body", "ok", "garbage_line")
        teacher, ledger = _teacher(server, tmp_path), _ledger(tmp_path)
        results, errors = _ask_in_threads(teacher, ledger, _requests(3))  # fails if a caller is left waiting
        assert len(server.batches) == 1 and len(results) == 1 and len(errors) == 2
        messages = [str(e) for e in errors.values()]
        assert sorted("not a chat completion" in m or "without a reply" in m for m in messages) == [True, True]
        # the broken body was billed by the server: charged as a call; the missing line was not
        assert ledger.spent.calls == server.billed.calls == 2 and ledger.reserved.calls == 0


def test_an_expired_batch_fails_the_requests_it_did_not_answer(tmp_path):
    with FakeOpenAIServer(batch_expire_after=2) as server:
        teacher, ledger = _teacher(server, tmp_path), _ledger(tmp_path)
        with pytest.raises(TeacherError, match="ended expired without a reply"):
            _ask_all(teacher, ledger, _requests(4))
        assert ledger.spent.calls == server.billed.calls == 2 and ledger.reserved.calls == 0


def test_the_budget_holds_what_goes_into_a_batch(tmp_path):
    with FakeOpenAIServer() as server:
        teacher = _teacher(server, tmp_path)
        # Each request's worst case: (4 words + 4 template tokens) * 1.25 -> 10 prompt + 32 completion = 42.
        ledger = _ledger(tmp_path, Budget(tokens=100))
        answered = []
        with pytest.raises(Exception, match="cannot pay"):
            for request, _ in complete_many(teacher, ledger, _requests(5), concurrency=64):
                answered.append(request)
        billed = server.billed
        assert billed.prompt_tokens + billed.completion_tokens <= 100
        assert len(server.files["file-1"][1].decode().splitlines()) == 2  # only what fitted was sent


def test_a_batch_left_by_a_stopped_process_is_picked_up_by_the_next(tmp_path):
    server = FakeOpenAIServer(batch_polls=10**6).start()  # stays in progress until the test lets it end
    try:
        teacher, ledger = _teacher(server, tmp_path), _ledger(tmp_path)
        failure: list[BaseException] = []

        def first_process():
            try:
                _ask_all(teacher, ledger, _requests(3))
            except BaseException as error:  # noqa: BLE001 - what the stopped process saw
                failure.append(error)

        worker = threading.Thread(target=first_process)
        worker.start()
        deadline = time.time() + 20
        while not server.batches and time.time() < deadline:
            time.sleep(0.02)
        teacher.stop_waiting()  # Ctrl-C: the wait is given up, the requests stay reserved
        worker.join(timeout=20)
        assert isinstance(failure[0], BatchInterrupted)
        assert server.billed.calls == 0 and ledger.spent.calls == 0
        assert ResponseCache(tmp_path / "teacher_cache.db").open_batches()[0][0] == "batch_1"

        server.batches["batch_1"]["polls_left"] = 0  # the provider finishes the batch meanwhile
        again, ledger_again = _teacher(server, tmp_path), _ledger(tmp_path)
        ledger_again.recover(again)  # polls the logged batch: the replies, at what they cost
        billed = server.billed
        assert (ledger_again.spent.calls, ledger_again.spent.lost) == (3, 0)
        assert ledger_again.spent.tokens == billed.prompt_tokens + billed.completion_tokens
        replies = _ask_all(again, ledger_again, _requests(3))  # the rerun asks: answered from the cache
        assert len(replies) == 3 and len(server.batches) == 1 and ledger_again.spent.calls == 3
        assert ResponseCache(tmp_path / "teacher_cache.db").open_batches() == []
    finally:
        server.stop()


def test_batches_are_half_price_and_need_the_cache():
    from elad.config import TeacherConfig
    from elad.teachers import price_for

    config = TeacherConfig(backend="openai", model="m", base_url="http://127.0.0.1:1/v1", batch=True,
                           price_prompt=2.0, price_completion=8.0)
    assert price_for(config) == Price(1.0, 4.0, None) and config.in_flight() == 1000
    with pytest.raises(ValueError, match="needs cache: true"):
        TeacherConfig(backend="openai", model="m", batch=True, cache=False)
    with pytest.raises(ValueError, match="needs backend 'openai'"):
        TeacherConfig(backend="replay", batch=True)
