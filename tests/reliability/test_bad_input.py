"""Bad input: `elad run` exits with status 2 and one paragraph naming the problem (file, line, key or
field), never a traceback unless `--debug` asks for one."""

import json
import socket
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from elad.cli import app
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
