import re

import pytest
from typer.testing import CliRunner

from elad.cli import app

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["run"], ["demo"], ["status"], ["why"], ["export"], ["grid"], ["report"], ["data", "inspect"]])
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_bad_config_exits_2_naming_the_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("name: x\nloop:\n  roundz: 3\n")
    result = runner.invoke(app, ["run", str(config)])
    assert result.exit_code == 2
    assert "loop.roundz (line 3): unknown key" in result.output


def test_run_then_status(esnli_dir, tiny_model_dir, tmp_path, monkeypatch):
    from elad import cli

    monkeypatch.setattr(cli.console, "width", 200)  # a wide terminal: table cells stay on one line
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"name: tiny\ntask: {{path: '{esnli_dir}', pool_size: null, test_size: null}}\n"
        f"student: {{model: '{tiny_model_dir}', max_new_tokens: 4, new_tokens_cap: 4, lora: {{r: 2, alpha: 4}}}}\n"
        "training: {epochs: 1}\nloop: {rounds: 1, per_round: 3}\n"
    )
    result = runner.invoke(app, ["run", str(config), "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "round 1: annotations 3" in result.output
    status = runner.invoke(app, ["status", str(tmp_path / "run")])
    assert status.exit_code == 0 and "all rounds done" in status.output
    # Where the round's time went: select (its explain, force and score parts beside it: random selection
    # has none) / annotate / train / evaluate, each timed (round 0: evaluate only).
    assert "seconds per stage" in status.output and "· explain" in status.output and "· force" in status.output
    assert re.search(r"│ +0 │ +- │ +- │ +- │ +- │ +- │ +- │ +\d+ │", status.output)
    assert re.search(r"│ +1 │ +\d+ │ +- │ +- │ +- │ +\d+ │ +\d+ │ +\d+ │", status.output)
    # A job log (not a terminal) says what each stage is doing.
    assert "round 1 · annotate: started (3)" in result.output and "round 1 · annotate: done 3/3" in result.output


def test_status_of_a_missing_run(tmp_path):
    result = runner.invoke(app, ["status", str(tmp_path)])
    assert result.exit_code == 2 and "no run here" in result.output


@pytest.mark.parametrize("command", ["run", "grid"])
def test_ctrl_c_says_how_to_resume_without_a_traceback(tmp_path, monkeypatch, command):
    from elad.loop import grid, runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.Experiment, "run", interrupted)
    monkeypatch.setattr(grid, "run_grid", interrupted)
    config = tmp_path / "c.yaml"
    config.write_text("name: x\n")
    result = CliRunner().invoke(app, [command, str(config), "-o", str(tmp_path / "out")])
    assert result.exit_code == 130
    assert "Rerun the same command to resume" in result.output and "Traceback" not in result.output


def test_why_with_no_items_to_show_says_so(tmp_path):
    result = runner.invoke(app, ["why", str(tmp_path), "--top", "-3"])
    assert result.exit_code != 0 and "--top: how many chosen items to show, 1 or more, not -3" in result.output
    assert "Traceback" not in result.output
