"""Secrets: the API key is read from the environment only, and no file of a run (store, WAL, cache,
report, adapters, config), no printed line, no log record holds it, even when the server echoes it back
in an error message."""

import logging
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.reliability.conftest import FIGURES, SECRET, loop_config

pytestmark = pytest.mark.integration

# The key and a distinctive piece of it (a key cut short or masked in the middle is a leak too).
NEEDLES = (SECRET, SECRET[8:30])


def leaks(paths: list[Path], texts: dict[str, str]) -> list[str]:
    found = [str(p) for p in paths if any(n.encode() in p.read_bytes() for n in NEEDLES)]
    found += [name for name, text in texts.items() if any(n in text for n in NEEDLES)]
    FIGURES["secret_scanned_files"] += len(paths)
    FIGURES["secret_scanned_outputs"] += len(texts)
    FIGURES["secret_leaks"] += len(found)
    return found


def every_file(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_a_finished_run_and_its_debug_output_hold_no_key(reference):
    assert f"Bearer {SECRET}" in reference["headers"]  # the key was used
    files = every_file(reference["dir"])
    names = {p.name for p in files}
    assert {"run.db", "teacher_cache.db", "config.yaml", "metrics.csv", "adapter_config.json"} <= names
    assert "ELAD_TEST_KEY" in (reference["dir"] / "config.yaml").read_text()  # the variable's name, not its value
    outputs = {f"launch {i} {part}": getattr(launch, part)
               for i, launch in enumerate(reference["launches"]) for part in ("out", "err")}
    assert "DEBUG" in "".join(outputs.values()) or "HTTP Request" in "".join(outputs.values())  # the debug log ran
    assert leaks(files, outputs) == []


def test_a_server_that_echoes_the_key_gets_it_stored_or_printed_nowhere(
    rel_data, tiny_model_dir, tmp_path, server, fast_backoff, monkeypatch, caplog
):
    from elad.cli import app

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ELAD_TEST_KEY", SECRET)
    # One in flight: the first item's request is refused with the key in the message (the item is
    # rejected and its reason stored); the next request's 401 repeats the key and stops the run.
    server.cue("echo_key_400", "echo_key")
    config = loop_config(rel_data, tiny_model_dir, server.base_url,
                         teacher={"concurrency": 1, "api_key_env": "ELAD_TEST_KEY"})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    runner = CliRunner()
    stopped = runner.invoke(app, ["run", str(path), "-o", str(tmp_path / "run")])
    assert stopped.exit_code == 2 and "HTTP 401" in stopped.output
    finished = runner.invoke(app, ["run", str(path), "-o", str(tmp_path / "run")])
    assert finished.exit_code == 0, finished.output
    debug = runner.invoke(app, ["--debug", "status", str(tmp_path / "run")])
    FIGURES["faults_injected"] += 2
    FIGURES["loop_runs"] += 2
    FIGURES["runs_survived"] += 1
    FIGURES["clear_stops"] += 1
    assert sum(s.headers.get("authorization") == f"Bearer {SECRET}" for s in server.seen) >= 2
    outputs = {"stopped run": stopped.output, "resumed run": finished.output, "status": debug.output,
               "log": caplog.text, "error": repr(stopped.exception)}
    assert leaks(every_file(tmp_path / "run"), outputs) == []
