"""Fault injection: the whole loop (tiny student, `openai` backend) against the fake server answering
429 + Retry-After, 500, 503, replies slower than the timeout, dropped connections, truncated and
malformed JSON, empty choices and replies with no answer, by script and by a random schedule, with CoT
annotation and with CLEAR (a review call, then a fallback CoT call when the review is unusable). Every
run finishes, or stops with a clear TeacherError and finishes when rerun; every reply the provider
billed is in the store (or, for an item the budget stopped between its review and its fallback, in the
teacher cache), none is paid twice, no annotation is lost, the budget holds."""

import io
import json
import os
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from elad.config import ExperimentConfig
from elad.loop import Experiment
from elad.teachers import TeacherError
from tests.fakes.openai_server import FAULTS, FakeOpenAIServer
from tests.reliability.audit import audit, read_store
from tests.reliability.conftest import (
    FIGURES, LABELS, SECRET, faults_served, gold_label, loop_config, teacher_reply,
)
from tests.reliability.procs import write_config

pytestmark = pytest.mark.integration


def run_until_done(config: dict, run_dir, attempts: int = 6) -> list[str]:
    """Run, and rerun after each TeacherError (retries exhausted), until the run finishes; the errors."""
    errors = []
    for _ in range(attempts):
        FIGURES["loop_runs"] += 1
        try:
            Experiment(ExperimentConfig.model_validate(config), run_dir, Console(file=io.StringIO())).run()
            FIGURES["runs_survived"] += 1
            return errors
        except TeacherError as error:
            errors.append(str(error))
    raise AssertionError(f"the run did not finish in {attempts} attempts: {errors}")


def check(run_dir, server: FakeOpenAIServer, budget: dict | None = None) -> list[str]:
    """The suite's invariants on a finished run, counted in the figures; the items the budget left
    unfinished (their paid replies kept in the cache)."""
    found = audit(run_dir, server, budget)
    FIGURES["faults_injected"] += faults_served(server)
    FIGURES["paid_twice"] += found.paid_twice - found.accounted
    FIGURES["paid_again_after_a_lost_reply"] += found.accounted
    FIGURES["annotations_lost"] += len(found.lost) + len(found.unrecorded)
    FIGURES["budget_overruns"] += bool(found.overruns)
    assert found.problems() == {}
    # The ledger recorded every reply the provider billed, plus the malformed ones (a provider may bill them);
    # a billed reply that never arrived (slow, truncated) is covered by a `lost` row charged at its worst
    # case, and so is an attempt whose connection dropped (not billed: the charge is conservative).
    replied = found.paid_rows - found.lost_rows
    assert replied + found.covered == server.billed.calls + server.served.get("malformed", 0)
    assert found.lost_rows == found.covered + server.served.get("drop", 0)
    db = read_store(run_dir)
    assert all(r["state"] == "done" for r in db.execute("SELECT state FROM rounds"))
    for row in db.execute("SELECT example_id, answer, raw FROM annotations"):
        assert row["answer"] == gold_label(row["example_id"]), row["raw"]
    db.close()
    return found.deferred


def stop_reasons(run_dir) -> list[str | None]:
    db = read_store(run_dir)
    found = [r[0] for r in db.execute("SELECT stop_reason FROM rounds ORDER BY round")]
    db.close()
    return found


def test_every_fault_kind_in_one_run(rel_data, tiny_model_dir, tmp_path, server, fast_backoff):
    faults = ["429", "500", "503", "slow", "drop", "truncated", "malformed", "empty", "noanswer", "no_usage"]
    server.cue(*faults)  # 6 items to annotate: every cue is used up before they are done
    config = loop_config(rel_data, tiny_model_dir, server.base_url, teacher={"concurrency": 3})
    errors = run_until_done(config, tmp_path / "run")
    FIGURES["clear_stops"] += len(errors)
    assert set(faults) <= set(server.served)
    check(tmp_path / "run", server)
    db = read_store(tmp_path / "run")
    rejected = [r["reason"] for r in db.execute("SELECT reason FROM rejected")]
    handled = db.execute("SELECT COUNT(*) FROM annotations").fetchone()[0] + len(rejected)
    db.close()
    # The reply with no answer is rejected; so is an item whose ask and re-ask were both unusable
    # (malformed, empty), if the schedule gave both to one item.
    assert "the teacher's reply states no answer that can be parsed" in rejected and handled == 6
    assert all(r.startswith(("the teacher's reply states no answer", "no usable reply")) for r in rejected)


def test_exhausted_retries_stop_with_a_clear_message_and_a_rerun_finishes(
    rel_data, tiny_model_dir, tmp_path, server, fast_backoff, monkeypatch
):
    from elad.cli import app

    monkeypatch.setenv("ELAD_TEST_KEY", SECRET)
    server.retry_after_5xx = "0.05"
    server.cue(*["503"] * 9)  # 3 in flight x (1 + 2 retries)
    config = loop_config(rel_data, tiny_model_dir, server.base_url,
                         teacher={"concurrency": 3, "api_key_env": "ELAD_TEST_KEY"})
    path = write_config(tmp_path / "config.yaml", config)
    runner = CliRunner()
    stopped = runner.invoke(app, ["run", str(path), "-o", str(tmp_path / "run")])
    assert stopped.exit_code == 2, stopped.output
    message = " ".join(stopped.output.split())
    assert "failed after retries: HTTP 503" in message and server.base_url in message
    assert "Traceback" not in stopped.output and SECRET not in stopped.output
    db = read_store(tmp_path / "run")
    chosen = [r[0] for r in db.execute("SELECT example_id FROM selections WHERE round = 1 AND chosen = 1")]
    assert len(chosen) == 3 and db.execute("SELECT COUNT(*) FROM teacher_calls").fetchone()[0] == 0
    db.close()

    resumed = runner.invoke(app, ["run", str(path), "-o", str(tmp_path / "run")])
    assert resumed.exit_code == 0, resumed.output
    FIGURES["loop_runs"] += 2
    FIGURES["runs_survived"] += 1
    FIGURES["clear_stops"] += 1
    check(tmp_path / "run", server)
    db = read_store(tmp_path / "run")
    assert [r[0] for r in db.execute("SELECT example_id FROM selections WHERE round = 1 AND chosen = 1")] == chosen
    assert db.execute("SELECT COUNT(*) FROM annotations").fetchone()[0] == 6
    db.close()


EXAMPLES = int(os.environ.get("ELAD_RELIABILITY_EXAMPLES", "12"))


@settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    schedule=st.lists(st.sampled_from((*FAULTS, "ok", "ok")), min_size=1, max_size=16),
    concurrency=st.integers(1, 3),
    budget=st.sampled_from([None, {"tokens": 700}, {"calls": 3}, {"dollars": 0.0004}]),
)
def test_random_fault_schedules(rel_data, tiny_model_dir, tmp_path_factory, fast_backoff, schedule, concurrency,
                                budget):
    run_dir = tmp_path_factory.mktemp("schedule") / "run"
    with FakeOpenAIServer(answer=teacher_reply, retry_after="0.05", slow_seconds=0.6) as server:
        server.cue(*schedule)
        config = loop_config(rel_data, tiny_model_dir, server.base_url,
                             teacher={"concurrency": concurrency, "max_tokens": 64},
                             loop={"rounds": 1, "per_round": 4, "budget": budget or {}})
        errors = run_until_done(config, run_dir)
        FIGURES["clear_stops"] += len(errors)
        FIGURES["random_schedules"] += 1
        assert all("failed after retries" in e and SECRET not in e for e in errors)
        check(run_dir, server, budget)


# --- CLEAR under faults --------------------------------------------------------------------------------
# The teacher reviews the student's own steps. Even pool rows: step 1 is wrong and the teacher continues
# from it (outcome `revised`); odd rows: every step is "correct", so the student's own answer is kept
# unless it is missing or not gold, when CLEAR falls back to CoT prompting (gold_check: reask). A fault
# can hit the review, its re-ask or the fallback; whatever it hits, the annotation is the teacher's gold
# label and every usable reply paid for is kept in the annotation's details.

def clear_teacher_reply(messages: list[dict], body: dict) -> str:
    review = next((str(m.get("content")) for m in messages if "A student's explanation" in str(m.get("content"))),
                  None)
    if review is None:
        return teacher_reply(messages, body)
    index = int(re.search(r"Someone (\d+) moves", review).group(1))
    steps = len(re.findall(r"^\d+\. ", review.split("numbered steps:", 1)[1], flags=re.M))
    continuation = f"Person walking means someone moves. So the answer is {LABELS[index % 3]}."
    if index % 2 == 0:
        verdicts = [{"step": 1, "correct": False, "reason": "it does not follow from the premise"}]
    else:
        verdicts = [{"step": i, "correct": True, "reason": "fine"} for i in range(1, steps + 1)]
        continuation = ""
    if "response_format" in body:
        return json.dumps({"verdicts": verdicts, "continuation": continuation})
    lines = [f"Step {v['step']}: {'correct' if v['correct'] else 'wrong'}" for v in verdicts]
    return "\n".join(lines + [f"Continuation: {continuation or 'none'}"])


def clear_config(rel_data, tiny_model_dir, base_url: str, **sections) -> dict:
    return loop_config(rel_data, tiny_model_dir, base_url, annotation={"method": "clear", "gold_check": "reask"},
                       student={**loop_config(rel_data, tiny_model_dir, base_url)["student"], "max_new_tokens": 12, "new_tokens_cap": 12},
                       **sections)


def outcomes(run_dir) -> Counter:
    db = read_store(run_dir)
    found = Counter(json.loads(r["details"]).get("outcome") for r in db.execute("SELECT details FROM annotations"))
    db.close()
    return found


def test_clear_with_every_fault_kind(rel_data, wordy_model_dir, tmp_path, fast_backoff):
    faults = ["429", "500", "503", "slow", "drop", "truncated", "malformed", "empty", "noanswer", "no_usage"]
    with FakeOpenAIServer(answer=clear_teacher_reply, retry_after="0.05", slow_seconds=0.8) as server:
        server.cue(*faults)
        config = clear_config(rel_data, wordy_model_dir, server.base_url, teacher={"concurrency": 3})
        FIGURES["clear_stops"] += len(run_until_done(config, tmp_path / "run"))
        assert set(faults) <= set(server.served)
        check(tmp_path / "run", server)
        reviews = sum(any("A student's explanation" in str(m.get("content")) for m in s.body["messages"])
                      for s in server.seen)
    assert reviews >= 6  # every item was reviewed (or its review was tried) before any fallback
    found = outcomes(tmp_path / "run")
    assert found["revised"] >= 1 and found["cot_fallback"] >= 1, found


@settings(max_examples=max(2, EXAMPLES // 3), deadline=None, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(schedule=st.lists(st.sampled_from((*FAULTS, "ok", "ok")), min_size=1, max_size=16),
       budget=st.sampled_from([None, {"tokens": 900}, {"calls": 5}]))
@example(schedule=["429"], budget={"calls": 5})  # a budget that runs out between a review and its fallback
def test_clear_random_fault_schedules(rel_data, wordy_model_dir, tmp_path_factory, fast_backoff, schedule,
                                      budget):
    run_dir = tmp_path_factory.mktemp("clear-schedule") / "run"
    with FakeOpenAIServer(answer=clear_teacher_reply, retry_after="0.05", slow_seconds=0.6) as server:
        server.cue(*schedule)
        config = clear_config(rel_data, wordy_model_dir, server.base_url, teacher={"concurrency": 2},
                              loop={"rounds": 1, "per_round": 4, "budget": budget or {}})
        errors = run_until_done(config, run_dir)
        FIGURES["clear_stops"] += len(errors)
        FIGURES["random_schedules"] += 1
        FIGURES["clear_runs"] += 1
        assert all("failed after retries" in e and SECRET not in e for e in errors)
        deferred = check(run_dir, server, budget)
        # The budget may run out inside an item (its review paid, its CoT fallback not): the run stops on
        # the budget, the item stays unannotated, and its paid review is in the cache (checked by audit).
        FIGURES["clear_deferred_items"] += len(deferred)
        assert not deferred or stop_reasons(run_dir)[-1] == "the teacher budget is spent"


def test_a_budget_for_one_clear_review_at_a_time_sends_them_one_at_a_time(rel_data, wordy_model_dir, tmp_path):
    """Two CLEAR reviews' worst cases do not fit in 900 tokens together. The second waits for the first to
    settle instead of being refused while it is in flight (which annotated 1 of 4 items, spent 198 of 900
    tokens and ended "all rounds done"): the budget buys what it can, and a run it stops says so."""
    with FakeOpenAIServer(answer=clear_teacher_reply) as server:
        config = clear_config(rel_data, wordy_model_dir, server.base_url, teacher={"concurrency": 2},
                              loop={"rounds": 1, "per_round": 4, "budget": {"tokens": 900}})
        run_until_done(config, tmp_path / "run")
        check(tmp_path / "run", server, {"tokens": 900})
    db = read_store(tmp_path / "run")
    annotated = db.execute("SELECT COUNT(*) FROM annotations").fetchone()[0]
    spent = db.execute("SELECT SUM(prompt_tokens + completion_tokens) FROM teacher_calls").fetchone()[0]
    db.close()
    FIGURES["clear_runs"] += 1
    assert annotated >= 2 and spent <= 900, (annotated, spent)
    assert annotated == 4 or stop_reasons(tmp_path / "run")[-1] == "the teacher budget is spent", annotated
