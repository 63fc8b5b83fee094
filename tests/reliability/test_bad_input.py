"""Bad input: `elad run` exits with status 2 and one paragraph naming the problem (file, line, key or
field), never a traceback unless `--debug` asks for one. Input refused before any work (a damaged or empty
run store, an unreadable config, a bad --set, an empty dataset, a missing API key) gets one line and leaves
every file as it was: no run directory, no store, no -wal or -shm beside a store."""

import hashlib
import json
import random
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from elad.cli import app
from elad.store import RunStore
from tests.conftest import write_esnli
from tests.reliability.conftest import FIGURES, POOL_ROWS, TEST_ROWS, loop_config
from tests.reliability.procs import REPO

pytestmark = pytest.mark.integration  # a tiny model is built and loaded
runner = CliRunner()


@pytest.fixture
def base(rel_data, tiny_model_dir):
    """A valid config (random selection, one round) to break one piece at a time; the teacher's URL is
    never reached in these tests."""
    return loop_config(rel_data, tiny_model_dir, "http://127.0.0.1:9/v1", loop={"rounds": 1, "per_round": 2})


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _one_paragraph_error(output: str, *expected: str) -> None:
    """The output ends with one paragraph starting 'error:' (after the run's header line, if it got that
    far), and has no traceback."""
    assert "Traceback" not in output and "File \"" not in output, output
    assert "\nerror:" in "\n" + output, output
    text = output[("\n" + output).rindex("\nerror:"):].strip()
    assert "\n\n" not in text and len(text.splitlines()) <= 12, text  # one paragraph
    flat = " ".join(text.split())
    for part in expected:
        assert part in flat, f"{part!r} not in {flat!r}"
    FIGURES["bad_inputs_rejected"] += 1


def _run(tmp_path, config: dict | str, *extra: str, run_dir: str = "run"):
    path = tmp_path / "config.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return runner.invoke(app, ["run", str(path), "-o", str(tmp_path / run_dir), *extra])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name: x\nloop: {rounds: 2\n", ["config.yaml, line 3: not valid YAML"]),
        ("name: x\nloop:\n  roundz: 3\n", ["loop.roundz (line 3): unknown key"]),
        ("name: x\nloop:\n  rounds: three\n", ["loop.rounds (line 3):", "valid integer"]),
        ("loop:\n  budget:\n    calls: 0\n", ["loop.budget.calls (line 3):", "greater than 0"]),
        ("loop:\n  budget: {dollars: -5}\n", ["loop.budget.dollars (line 2):", "greater than 0"]),
        ("loop:\n  round_budget: {tokens: -1}\n", ["loop.round_budget.tokens", "greater than 0"]),
        ("teacher: {backend: openia}\n", ["teacher.backend", "unknown teacher backend 'openia'"]),
        ("- just\n- a list\n", ["expected a mapping of settings"]),
        ("student: {dtype: float16}\n", ["student.dtype", "'auto', 'bfloat16' or 'float32'"]),
    ],
    ids=["malformed-yaml", "unknown-key", "wrong-type", "zero-budget", "negative-budget", "negative-round-budget",
         "unknown-backend", "not-a-mapping", "unknown-dtype"],
)
def test_a_bad_config_is_named(tmp_path, text, expected):
    result = _run(tmp_path, text)
    assert result.exit_code == 2
    _one_paragraph_error(result.output, *expected)


def test_a_bad_override(tmp_path, base):
    result = _run(tmp_path, base, "--set", "loop.budget.calls=-3")
    assert result.exit_code == 2
    _one_paragraph_error(result.output, "loop.budget.calls", "greater than 0")
    result = _run(tmp_path, base, "--set", "loop.rounds")
    assert result.exit_code == 2
    _one_paragraph_error(result.output, "--set 'loop.rounds': expected KEY=VALUE")


def test_a_missing_config_file(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "nowhere.yaml")])
    assert result.exit_code == 2
    _one_paragraph_error(result.output, "nowhere.yaml: config file not found")


def test_a_missing_dataset_folder_and_file(tmp_path, base):
    base["task"]["path"] = str(tmp_path / "no-such-folder")
    result = _run(tmp_path, base)
    assert result.exit_code == 2
    _one_paragraph_error(result.output, "task.path:", "no-such-folder does not exist")

    folder = write_esnli(tmp_path / "only-valid", {"valid": POOL_ROWS}, {})
    base["task"]["path"] = str(folder)
    result = _run(tmp_path, base, run_dir="run2")
    assert result.exit_code == 2
    _one_paragraph_error(result.output, "esnli_test.json: file not found")


@pytest.mark.parametrize("field", ["premise", "hypothesis", "label"])
def test_a_dataset_row_without_its_question_or_answer(tmp_path, base, field):
    folder = write_esnli(tmp_path / "esnli", {"valid": POOL_ROWS, "test": TEST_ROWS}, {})
    lines = (folder / "esnli_valid.json").read_text().splitlines()
    row = json.loads(lines[3])
    del row[field]
    lines[3] = json.dumps(row)
    (folder / "esnli_valid.json").write_text("\n".join(lines) + "\n")
    base["task"]["path"] = str(folder)
    result = _run(tmp_path, base)
    assert result.exit_code == 2
    _one_paragraph_error(result.output, "esnli_valid.json, line 4: field", f"'{field}': missing or empty")


def test_a_custom_dataset_row_without_its_answer_and_a_line_that_is_not_json(tmp_path, base):
    data = tmp_path / "mine"
    data.mkdir()
    (data / "train.jsonl").write_text('{"q": "Is ice cold?", "a": "yes"}\n{"q": "Is fire cold?"}\n')
    (data / "test.jsonl").write_text('{"q": "Is snow white?", "a": "yes"}\n')
    base["task"] = {"name": "custom", "path": str(data), "pool_split": "train", "test_split": "test",
                    "options": {"answer_kind": "yes_no", "question": "q", "answer": "a"}}
    result = _run(tmp_path, base)
    assert result.exit_code == 2
    _one_paragraph_error(result.output, "train.jsonl, line 2: field 'a'")
    (data / "train.jsonl").write_text('{"q": "Is ice cold?", "a": "yes"}\n{"q": "Is fire\n')
    result = _run(tmp_path, base)
    assert result.exit_code == 2
    _one_paragraph_error(result.output, "train.jsonl, line 2: not valid JSON")


@pytest.mark.parametrize("model", ["/no/such/model-dir", "./no-such-model", "missing.gguf"])
def test_a_model_path_that_does_not_exist(tmp_path, base, model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never the network, whatever the spec looks like
    monkeypatch.chdir(tmp_path)
    base["student"]["model"] = model
    result = _run(tmp_path, base)
    assert result.exit_code == 2
    _one_paragraph_error(result.output, model.lstrip("./") if model.endswith(".gguf") else model)


def test_a_gpu_only_option_on_a_cpu_machine(tmp_path, base, monkeypatch):
    """student.generation: vllm needs a CUDA GPU (and the vllm extra): refused before any work, however
    this machine is set up."""
    import torch

    from tests.integration.test_student_vllm import FAKE_VLLM

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.syspath_prepend(str(FAKE_VLLM))  # vllm importable: the missing GPU is what is named
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    base["student"]["generation"] = "vllm"
    result = _run(tmp_path, base)
    sys.modules.pop("vllm", None)
    assert result.exit_code == 2
    _one_paragraph_error(result.output, "student.generation: vllm needs a CUDA GPU", "'transformers'")


def test_a_missing_api_key_variable_is_named(tmp_path, base, monkeypatch):
    monkeypatch.delenv("ELAD_NO_SUCH_KEY", raising=False)
    base["teacher"]["api_key_env"] = "ELAD_NO_SUCH_KEY"
    result = _run(tmp_path, base)
    assert result.exit_code == 2
    _one_paragraph_error(result.output, "teacher.api_key_env: the environment variable 'ELAD_NO_SUCH_KEY' is not set")


def test_clear_annotation_with_a_replay_teacher_is_refused_before_any_work(tmp_path, base):
    """A replay teacher cannot review steps: every CLEAR item would quietly be a CoT annotation."""
    base["teacher"] = {"backend": "replay"}
    base["annotation"] = {**base.get("annotation", {}), "method": "clear"}
    result = _run(tmp_path, base)
    assert result.exit_code == 2 and not (tmp_path / "run").exists()
    _one_paragraph_error(result.output, "annotation.method: clear needs a teacher that reviews",
                         "teacher.backend: replay", "annotation.method: cot")


def test_an_unreachable_teacher_stops_the_run_clearly(tmp_path, base, fast_backoff):
    base["teacher"].update(base_url=f"http://127.0.0.1:{_closed_port()}/v1", max_retries=1)
    result = _run(tmp_path, base)
    assert result.exit_code == 2
    _one_paragraph_error(result.output, "teacher 'fake-teacher' at http://127.0.0.1:", "failed after retries",
                         "APIConnectionError")


def test_a_run_directory_of_another_config(tmp_path, base, fast_backoff):
    """A run that started a round (here: selected, then found the teacher unreachable) keeps its config."""
    base["teacher"]["max_retries"] = 0
    first = _run(tmp_path, base)
    assert first.exit_code == 2 and "failed after retries" in first.output
    result = _run(tmp_path, {**base, "seed": 99})
    assert result.exit_code == 2
    _one_paragraph_error(result.output, "holds a run of a different config")


def test_debug_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["--debug", "run", str(tmp_path / "nowhere.yaml")])
    assert result.exit_code != 2 and "config file not found" in str(result.exception)


def test_the_real_command_line_exits_2_on_stderr_or_stdout_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("loop:\n  budget: {calls: 0}\n")
    for args in (["run", str(tmp_path / "nowhere.yaml")], ["run", str(bad)]):
        done = subprocess.run([sys.executable, "-m", "tests.reliability.launch", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        _one_paragraph_error(done.stdout + done.stderr, "error:")


def test_a_corrected_config_can_reuse_the_directory_of_a_run_that_never_started(tmp_path, base):
    good_path = base["task"]["path"]
    base["task"]["path"] = str(tmp_path / "typo")
    assert _run(tmp_path, base).exit_code == 2
    base["task"]["path"] = good_path
    base["student"]["model"] = "/still/wrong"  # fails later, but not because of the directory
    result = _run(tmp_path, base)
    assert "different config" not in result.output


# --- refused before anything is written: one line, every file as it was ------------------------------------

def _one_line_error(output: str, *expected: str) -> None:
    """The whole output is one line, 'error: ...', naming what is expected; no traceback."""
    _one_paragraph_error(output, *expected)
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), output


def _files(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder`, with a hash of each file's bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
            for p in sorted(folder.rglob("*"))}


def _stored_run(folder: Path) -> Path:
    """A finished run directory (config.yaml: the default config, which needs no model to check; run.db:
    rounds 0-2 with selections, explanations, annotations and metrics) spanning many database pages."""
    from tests.unit.test_report_compare import make_run

    run_dir = make_run(folder, "random", "cot", 0, [0.3, 0.4, 0.5], [0, 500, 1000], question="A man plays. " * 400)
    assert (run_dir / "run.db").stat().st_size > 16 * 4096
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml", "run.db"]  # closed: no -wal, no -shm
    return run_dir


def _damage(database: Path, how: str) -> None:
    data = database.read_bytes()
    if how == "random-bytes":
        database.write_bytes(random.Random(7).randbytes(len(data)))
    else:  # a valid store cut to half its size, as a full disk or an interrupted copy leaves it
        database.write_bytes(data[: len(data) // 2])


READ_ONLY = {
    "status": lambda run, tmp: ["status", str(run)],
    "why": lambda run, tmp: ["why", str(run), "--round", "1"],
    "report": lambda run, tmp: ["report", str(run), "--out", str(tmp / "report")],
    "export": lambda run, tmp: ["export", str(run), "--round", "0", "--out", str(tmp / "exported")],
}
COMMANDS = {**READ_ONLY, "run": lambda run, tmp: ["run", str(run / "config.yaml"), "-o", str(run)]}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("how", ["random-bytes", "truncated"])
def test_a_damaged_run_store_is_named_and_left_as_it_was(tmp_path, how, command):
    """status, why, report, export, and `elad run` resuming on the directory: one line naming run.db."""
    run_dir = _stored_run(tmp_path)
    _damage(run_dir / "run.db", how)
    before = _files(tmp_path)
    result = runner.invoke(app, COMMANDS[command](run_dir, tmp_path))
    assert result.exit_code == 2, result.output
    _one_line_error(result.output, f"{run_dir / 'run.db'}: not a readable elad run store")
    assert _files(tmp_path) == before


@pytest.mark.parametrize("command", list(READ_ONLY))
@pytest.mark.parametrize("state", ["empty", "missing"])
def test_an_empty_or_missing_run_store_is_no_run_and_stays_so(tmp_path, command, state):
    run_dir = _stored_run(tmp_path)
    if state == "empty":
        (run_dir / "run.db").write_bytes(b"")
    else:
        (run_dir / "run.db").unlink()
    before = _files(tmp_path)
    result = runner.invoke(app, READ_ONLY[command](run_dir, tmp_path))
    assert result.exit_code == 2, result.output
    expected = ("no run here" if command in ("report", "export") else "no run store at") if state == "missing" else (
        f"no run store at {run_dir / 'run.db'}")
    _one_line_error(result.output, expected)
    assert _files(tmp_path) == before


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_looking_at_a_run_changes_no_byte_of_its_store(tmp_path, journal):
    """status, why and report open the store read-only: a WAL store gets no -wal or -shm beside it, and
    one in rollback-journal mode (say, a copy made with the sqlite3 shell) is not switched to WAL."""
    run_dir = _stored_run(tmp_path)
    if journal == "delete":
        db = sqlite3.connect(run_dir / "run.db")
        assert db.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
        db.close()
    before = _files(run_dir)
    for command in ("status", "why", "report"):
        result = runner.invoke(app, READ_ONLY[command](run_dir, tmp_path))
        assert result.exit_code == 0, result.output
        assert _files(run_dir) == before, command
    assert "50.0%" in runner.invoke(app, ["status", str(run_dir)]).output  # round 2 read back


def test_looking_at_a_live_run_reads_what_its_writer_committed(tmp_path):
    """A run in progress keeps its latest rounds in the WAL: a read-only look sees them, and leaves the
    store's file alone."""
    run_dir = _stored_run(tmp_path)
    writer = RunStore(run_dir / "run.db")
    try:
        writer.start_round(3)  # committed to the WAL only
        writer.set_metrics(3, "test", {"accuracy": 0.875})
        assert (run_dir / "run.db-wal").exists()
        database = hashlib.sha256((run_dir / "run.db").read_bytes()).hexdigest()
        result = runner.invoke(app, ["status", str(run_dir)])
        assert result.exit_code == 0, result.output
        assert "running" in result.output and "87.5%" in result.output  # round 3, from the WAL
        assert hashlib.sha256((run_dir / "run.db").read_bytes()).hexdigest() == database
        assert writer.rounds()[-1]["round"] == 3
    finally:
        writer.close()


KILLED_MID_WRITE = """
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA cache_size=1")  # changed pages go to the file before the commit, the originals to the journal
db.execute("BEGIN")
db.execute(sys.argv[2])
os._exit(9)  # killed: no commit, no rollback, a hot journal left beside the file
"""


def _killed_mid_write(database: Path, statement: str) -> None:
    subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(database), statement], check=False)
    assert database.with_name(database.name + "-journal").stat().st_size > 0


def test_a_store_whose_writer_was_killed_mid_transaction_reads_back_what_was_committed(tmp_path):
    """A read-only connection refuses a file with a hot rollback journal (SQLITE_READONLY_ROLLBACK): the
    unfinished transaction is undone first, and status shows the committed rounds."""
    run_dir = _stored_run(tmp_path)
    db = sqlite3.connect(run_dir / "run.db")
    assert db.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"  # as a copy made with the shell
    db.close()
    _killed_mid_write(run_dir / "run.db", "UPDATE examples SET question = 'half written' || question")
    result = runner.invoke(app, ["status", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "50.0%" in result.output
    assert not (run_dir / "run.db-journal").exists()
    questions = sqlite3.connect(run_dir / "run.db").execute("SELECT question FROM examples").fetchall()
    assert questions and not any(q.startswith("half written") for (q,) in questions)


def test_a_store_killed_while_it_was_created_opens_for_the_next_run(tmp_path):
    database = tmp_path / "run.db"
    sqlite3.connect(database).execute("CREATE TABLE filler (x)").connection.commit()
    _killed_mid_write(database, "INSERT INTO filler SELECT zeroblob(4000) FROM (WITH RECURSIVE n(i) AS "
                                "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) SELECT i FROM n)")
    store = RunStore(database)
    store.start_round(1)
    assert [row["round"] for row in store.rounds()] == [1]
    store.close()


@pytest.mark.parametrize("case", ["not-utf8", "a-directory"])
def test_a_config_that_is_not_utf8_text_or_is_a_directory_is_named(tmp_path, case):
    if case == "not-utf8":
        path = tmp_path / "config.yaml"
        path.write_bytes("name: café\nloop: {rounds: 1}\n".encode("latin-1"))
        expected = f"{path}, line 1: not UTF-8 text"
    else:
        path = tmp_path / "configs"
        path.mkdir()
        expected = f"{path}: is a directory, not a config file"
    before = _files(tmp_path)
    result = runner.invoke(app, ["run", str(path), "-o", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    _one_line_error(result.output, expected)
    assert _files(tmp_path) == before


@pytest.mark.parametrize(
    "loop, override, expected",
    [
        ({"rounds": 1}, "task.name.x=1", "--set 'task.name.x': task.name holds a string ('esnli')"),
        ({"rounds": 1}, "loop.budget.calls.x=3", "--set 'loop.budget.calls.x': loop.budget.calls holds null"),
        ({"budget": {"calls": None}}, "loop.budget.calls.x=3", "loop.budget.calls holds null"),
        ({"rounds": 2}, "loop.rounds.max=3", "--set 'loop.rounds.max': loop.rounds holds a number (2)"),
    ],
    ids=["into-a-string", "into-a-null-default", "into-a-null-in-the-file", "into-a-number"],
)
def test_a_set_into_a_value_that_is_not_a_section_is_named(tmp_path, loop, override, expected):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"name": "x", "loop": loop}))
    before = _files(tmp_path)
    result = runner.invoke(app, ["run", str(config), "-o", str(tmp_path / "run"), "--set", override])
    assert result.exit_code == 2, result.output
    _one_line_error(result.output, expected)
    assert _files(tmp_path) == before


def test_a_set_into_a_section_the_file_nulls_fills_it():
    from elad.config import parse_config

    assert parse_config("student: {lora: null}\n").student.lora is None
    assert parse_config("student: {lora: null}\n", overrides={"student.lora.r": 8}).student.lora.r == 8
    assert parse_config("task: {options: {}}\n", overrides={"task.options.a.b": 1}).task.options == {"a": {"b": 1}}


def _esnli(tmp_path, valid, test):
    return write_esnli(tmp_path / "data", {"valid": valid, "test": test}, {})


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no-such-path", ["task.path:", "no-such-folder does not exist"]),
        ("empty-pool", ["esnli_valid.json: the pool split 'valid' has no questions"]),
        ("empty-test", ["esnli_test.json: the test split 'test' has no questions"]),
        ("pool-is-the-test", ["the pool split 'test' has no questions once the test questions are held out"]),
    ],
)
def test_a_dataset_that_is_missing_or_empty_is_refused_before_the_run_directory(tmp_path, base, case, expected):
    """Refused before the run directory, its store or the student exist: no stub directory to trip the
    corrected config (a finished empty run would have kept it as another config's run)."""
    if case == "no-such-path":
        base["task"]["path"] = str(tmp_path / "no-such-folder")
    elif case == "empty-pool":
        base["task"]["path"] = str(_esnli(tmp_path, [], TEST_ROWS))
    elif case == "empty-test":
        base["task"]["path"] = str(_esnli(tmp_path, POOL_ROWS, []))
    else:
        base["task"].update(path=str(_esnli(tmp_path, POOL_ROWS, TEST_ROWS)), pool_split="test", test_size=5)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(base))
    before = _files(tmp_path)
    result = runner.invoke(app, ["run", str(config), "-o", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    _one_line_error(result.output, *expected)
    assert _files(tmp_path) == before


@pytest.fixture
def no_student(monkeypatch):
    """Loading the student fails the test: what it checks must be refused before."""
    from elad.students.student import Student

    def loaded(self, *args, **kwargs):
        raise AssertionError("the student was loaded")

    monkeypatch.setattr(Student, "__init__", loaded)


@pytest.mark.parametrize("command", ["run", "grid"])
def test_a_missing_api_key_is_named_before_the_student_loads(tmp_path, base, monkeypatch, no_student, command):
    monkeypatch.delenv("ELAD_NO_SUCH_KEY", raising=False)
    base["teacher"]["api_key_env"] = "ELAD_NO_SUCH_KEY"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(base))
    before = _files(tmp_path)
    arguments = {"run": ["run", str(config), "-o", str(tmp_path / "run")],
                 "grid": ["grid", str(config), "--strategies", "random", "--seeds", "1", "-o", str(tmp_path / "grid")]}
    result = runner.invoke(app, arguments[command])
    assert result.exit_code == 2, (result.output, result.exception)
    _one_line_error(result.output, "teacher.api_key_env: the environment variable 'ELAD_NO_SUCH_KEY' is not set")
    assert _files(tmp_path) == before
