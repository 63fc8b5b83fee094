"""`elad run --dry-run`: the teacher cost of a run before it runs, and a real run within it."""

import pytest
import yaml
from typer.testing import CliRunner

from elad.cli import app
from elad.loop import Experiment
from elad.loop.plan import plan_run
from elad.store import RunStore
from elad.students.models import open_tokenizer
from tests.integration.test_loop import make_config

pytestmark = pytest.mark.integration


def _counter(model_dir):
    tokenizer = open_tokenizer(str(model_dir))
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_a_real_run_stays_within_the_planned_worst_case(esnli_dir, tiny_model_dir, tmp_path):
    config = make_config(esnli_dir, tiny_model_dir, rounds=2, per_round=4)
    plan = plan_run(config, _counter(tiny_model_dir))
    assert [r.items for r in plan.rounds] == [4, 4] and plan.pool == 12
    assert all(r.expected_tokens <= r.worst_tokens for r in plan.rounds)

    run_dir = tmp_path / "run"
    Experiment(config, run_dir).run()
    store = RunStore(run_dir / "run.db")
    spent_before = 0
    for r in plan.rounds:
        totals = store.teacher_totals(up_to_round=r.round)
        tokens = totals.prompt_tokens + totals.completion_tokens
        assert totals.calls <= sum(p.calls for p in plan.rounds if p.round <= r.round)
        assert tokens - spent_before <= r.worst_tokens  # each round within its worst case
        spent_before = tokens
    # the expected cost is near what was spent (the replayed rationales are the data's)
    assert 0.5 * spent_before <= sum(r.expected_tokens for r in plan.rounds) <= 2 * spent_before


def test_the_budget_cut_is_named(esnli_dir, tiny_model_dir):
    config = make_config(esnli_dir, tiny_model_dir, rounds=3, per_round=4)
    count = _counter(tiny_model_dir)
    worst_round = plan_run(config, count).rounds[0].worst_tokens
    tight = make_config(esnli_dir, tiny_model_dir, rounds=3, per_round=4, budget={"tokens": worst_round + 10})
    plan = plan_run(tight, count)
    round_, items = plan.budget_cut["worst"]
    assert round_ == 2 and 4 <= items < 8  # round 1 fits at its worst case, round 2 does not
    assert plan.budget_cut["expected"] is None or plan.budget_cut["expected"][1] >= items
    assert plan_run(config, count).budget_cut == {"worst": None, "expected": None}


def test_dry_run_from_the_command_line_writes_nothing(esnli_dir, tiny_model_dir, tmp_path, monkeypatch):
    from elad import cli

    monkeypatch.setattr(cli.console, "width", 160)
    monkeypatch.chdir(tmp_path)
    config = make_config(esnli_dir, tiny_model_dir, rounds=2, per_round=4, budget={"calls": 5})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    result = CliRunner().invoke(app, ["run", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "teacher cost per round" in result.output and "worst case" in result.output
    assert "stops the run in round 2 after 5 items" in result.output
    assert not (tmp_path / "runs").exists()  # no run directory
