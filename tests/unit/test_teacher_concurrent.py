"""A bounded pool of requests in flight."""

import threading
import time

import pytest

from elad.teachers import in_flight


def test_at_most_n_run_at_once_and_all_finish():
    lock, state = threading.Lock(), {"active": 0, "peak": 0}

    def work(x):
        with lock:
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
        time.sleep(0.01)
        with lock:
            state["active"] -= 1
        return x * x

    results = dict(in_flight(work, range(20), concurrency=4))
    assert results == {x: x * x for x in range(20)}
    assert 1 < state["peak"] <= 4


def test_one_in_flight_runs_in_order_in_this_thread():
    threads = []
    out = list(in_flight(lambda x: threads.append(threading.get_ident()) or x, range(5), concurrency=1))
    assert out == [(x, x) for x in range(5)] and set(threads) == {threading.get_ident()}


def test_a_failure_stops_new_work_lets_running_work_finish_then_raises():
    started = []

    def work(x):
        started.append(x)
        time.sleep(0.02)
        if x == 2:
            raise RuntimeError("boom")
        return x

    done = []
    with pytest.raises(RuntimeError, match="boom"):
        for x, _ in in_flight(work, range(100), concurrency=4):
            done.append(x)
    assert len(started) < 100
    assert set(done) == set(started) - {2}


def test_stopping_early_starts_nothing_new():
    started = []

    def work(x):
        started.append(x)
        time.sleep(0.01)
        return x

    for x, _ in in_flight(work, range(100), concurrency=3):
        break
    time.sleep(0.05)
    assert len(started) <= 6
