"""Whole loops with today's teachers, killed mid-call and run again: a batch teacher killed while it waits
for its batch (the rerun picks the batch up from the run's log instead of paying for its requests twice),
and a reasoning model killed inside a call. The audit finds every billed reply recorded and the budget held."""

import signal

import pytest

from tests.reliability.audit import audit
from tests.reliability.conftest import FIGURES, loop_config
from tests.reliability.procs import Launcher, write_config

pytestmark = pytest.mark.integration

BUDGET = {"calls": 6}  # 2 rounds of 3: exactly what the run needs, no room to pay for a batch twice


def test_killed_while_a_batch_runs_then_resumed(rel_data, tiny_model_dir, tmp_path, server):
    server.batch_polls = 2
    config = loop_config(rel_data, tiny_model_dir, server.base_url,
                         teacher={"batch": True, "batch_poll_seconds": 0.05}, loop={"budget": BUDGET})
    launcher = Launcher(write_config(tmp_path / "config.yaml", config), tmp_path / "run")
    killed = launcher.run(kill_in="elad.teachers.batch:BatchTeacher._wait:1:0.02")  # in round 1's batch
    assert killed.rc == -signal.SIGKILL and len(server.batches) == 1 and server.billed.calls == 0

    finished = launcher.run_to_completion()
    assert finished.rc == 0, finished.err[-4000:]
    found = audit(tmp_path / "run", server, BUDGET)
    FIGURES["batch_kill_problems"] += len(found.problems())
    assert found.problems() == {} and found.open_reservations == 0 and found.lost_rows == 0
    assert len(server.batches) == 2  # round 1's batch, picked up after the kill; round 2's
    assert server.billed.calls == found.paid_rows == 6


def test_killed_while_a_reasoning_model_answers_then_resumed(rel_data, tiny_model_dir, tmp_path, server):
    """The same through a reasoning model (it refuses max_tokens and temperature 0, and thinks before it
    answers): killed inside its second call, then run to the end."""
    server.reasoning_model = True
    budget = {"calls": 12}  # the 6 the run needs, the refused attempts cost nothing, and room for a lost call
    config = loop_config(rel_data, tiny_model_dir, server.base_url, teacher={"concurrency": 1, "timeout": 5},
                         loop={"budget": budget})
    launcher = Launcher(write_config(tmp_path / "config.yaml", config), tmp_path / "run")
    killed = launcher.run(kill_in="elad.teachers.openai_compat:OpenAITeacher.complete:2:0.05")
    assert killed.rc == -signal.SIGKILL

    finished = launcher.run_to_completion()
    assert finished.rc == 0, finished.err[-4000:]
    found = audit(tmp_path / "run", server, budget)
    FIGURES["reasoning_kill_problems"] += len(found.problems())
    assert found.problems() == {} and found.open_reservations == 0
    assert all("max_completion_tokens" in seen.body and "temperature" not in seen.body
               for seen in server.billed_replies())
    assert len({seen.text for seen in server.billed_replies()}) >= 1 and server.billed.calls <= budget["calls"]
