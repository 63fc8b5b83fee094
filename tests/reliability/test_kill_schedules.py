"""The budget holds against what the provider bills, through random SIGKILLs (fast: no model).

Each schedule annotates eight questions through the fake provider (half of them a reasoning model) with
random faults (timeouts it bills
all the same, dropped connections, 5xx, unusable and usage-less replies), 1-3 requests in flight and a
budget too small for all of them, in a child process forked from the test and SIGKILLed at random
moments, often with requests at the server, then restarted until it finishes. After each schedule, with
no slack: the provider's bill is within the budget, every billed reply is recorded with its text or
charged at its worst case by a `lost` row, none is recorded twice, no reservation stays open, and every
paid answer is annotated.

The schedules come from a seed printed with any failure; KILL_SEED=<seed> replays it; KILL_SCHEDULES sets
how many run (100 by default).
"""

import os
import random
import signal
import time

import openai  # noqa: F401 - imported once here, so that each forked child starts at once
import pytest

from elad.annotation import Annotation, CotAnnotator
from elad.store import ResponseCache, RunStore, StoreJournal
from elad.tasks import Example
from elad.tasks.esnli import EsnliTask
from elad.teachers import Budget, BudgetExhausted, CachedTeacher, Ledger, OpenAITeacher, TeacherError
from tests.fakes.openai_server import FakeOpenAIServer, count_words, random_schedule
from tests.reliability.audit import audit
from tests.reliability.conftest import FIGURES

pytestmark = pytest.mark.integration

SCHEDULES = int(os.environ.get("KILL_SCHEDULES") or 100)
QUESTIONS = 8
MAX_TOKENS = 24


def undercounting(text: str) -> int:
    """A tokenizer that counts 15% fewer tokens than the provider (whose tokens are words)."""
    return max(1, count_words(text) * 85 // 100)


def _annotate(run_dir, base_url: str, budget: dict, concurrency: int) -> None:
    """The child: annotate what is not annotated yet, as the loop does; exit 0 when done or refused."""
    code = 0
    try:
        store = RunStore(run_dir / "run.db")
        journal = StoreJournal(store.path)
        teacher = CachedTeacher(OpenAITeacher("fake-teacher", undercounting, base_url=base_url, timeout=0.15,
                                              max_retries=2, concurrency=concurrency),
                                ResponseCache(run_dir / "teacher_cache.db"))
        ledger = Ledger(Budget(**budget), count_tokens=undercounting, message_overhead=0, journal=journal)
        ledger.recover(teacher)
        annotator = CotAnnotator(EsnliTask(), teacher, ledger, MAX_TOKENS)
        handled = store.handled()
        todo = [Example(id=f"valid-{i}", question=f"Premise: A person number {i} walks.\nHypothesis: Someone {i} "
                        "moves.", answer="entailment") for i in range(QUESTIONS) if f"valid-{i}" not in handled]
        try:
            for example, result in annotator.annotate_many(todo, concurrency=concurrency):
                if isinstance(result, Annotation):
                    store.add_annotation(1, example.id, result)
                else:
                    store.add_rejected(1, example.id, result.reason, result.raw)
        except BudgetExhausted:
            pass
        except TeacherError:  # retries ran out: the run stops, and is started again (as a user would)
            code = 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 3
    os._exit(code)


def _launch(run_dir, server, budget, concurrency, kill_after: float | None) -> int:
    pid = os.fork()
    if pid == 0:
        _annotate(run_dir, server.base_url, budget, concurrency)
    deadline = time.time() + (kill_after if kill_after is not None else 60)
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_random_kills_never_let_the_provider_bill_past_the_budget(tmp_path, fast_backoff):
    seed = int(os.environ.get("KILL_SEED") or random.SystemRandom().randrange(10**6))
    rng = random.Random(seed)
    figures = {"kills": 0, "lost_rows": 0, "covered": 0, "launches": 0, "billed": 0}
    for schedule in range(SCHEDULES):
        budget = rng.choice([{"tokens": rng.randrange(200, 500)}, {"calls": rng.randrange(3, 8)}])
        concurrency = rng.randint(1, 3)
        run_dir = tmp_path / f"s{schedule}"
        run_dir.mkdir()
        # half the schedules against a reasoning model: it refuses max_tokens and temperature (each new
        # process learns that again) and bills hidden reasoning within max_completion_tokens
        server = FakeOpenAIServer(delay=rng.uniform(0.005, 0.05), retry_after="0.01", slow_seconds=0.2,
                                  schedule=random_schedule(rng.randrange(10**6), rng.uniform(0.0, 0.4)),
                                  reasoning_model=rng.random() < 0.5).start()
        try:
            launches = []
            for _ in range(8):
                kill_after = rng.uniform(0.0, 0.25) if rng.random() < 0.85 else None
                launches.append(_launch(run_dir, server, budget, concurrency, kill_after))
                if launches[-1] in (0, 3):
                    break
            while launches[-1] not in (0, 3) and len(launches) < 20:  # killed, or stopped by failing retries
                launches.append(_launch(run_dir, server, budget, concurrency, None))
            context = f"seed {seed}, schedule {schedule}, budget {budget}, concurrency {concurrency}, exits {launches}"
            assert launches[-1] == 0, context
            found = audit(run_dir, server, budget=budget)
        finally:
            server.stop()
        assert found.problems() == {}, f"{context}: {found.problems()}"
        assert found.open_reservations == 0 and found.deferred == [], context
        figures["kills"] += launches.count(-signal.SIGKILL)
        figures["launches"] += len(launches)
        figures["lost_rows"] += found.lost_rows
        figures["covered"] += found.covered
        figures["billed"] += found.billed
    FIGURES["kill_schedules"] += SCHEDULES
    FIGURES["kills"] += figures["kills"]
    FIGURES["loop_runs"] += figures["launches"]
    FIGURES["lost_replies_charged_at_worst_case"] += figures["lost_rows"]
    FIGURES["billed_replies_covered_by_a_lost_row"] += figures["covered"]
    FIGURES["budget_overruns"] += 0  # any overrun failed the test above
    # The schedules must have killed requests in flight, or they tested nothing of the write-ahead.
    assert figures["kills"] >= SCHEDULES and figures["lost_rows"] > 0, (seed, figures)
