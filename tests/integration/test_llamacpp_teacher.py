"""A real teacher: llama.cpp's OpenAI-compatible server on loopback, serving Qwen2.5-Coder-0.5B-Instruct
from its PyPI-packaged GGUF. CoT and CLEAR annotate real e-SNLI questions through the `openai` backend,
and a whole loop round runs against it."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from elad.annotation import Annotation, build_annotator
from elad.config import AnnotationConfig, TeacherConfig
from elad.tasks import TASKS
from elad.teachers import Budget, Ledger, TeacherContext, build_teacher

pytestmark = pytest.mark.integration
pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    from elad.students.models import gguf_file

    model = gguf_file("qwen2.5-coder-0.5b")
    port = _free_port()
    log = open(tmp_path_factory.mktemp("llama") / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.llamacpp", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
         "--n_threads", "2", "--n_ctx", "2048", "--model_alias", "qwen-0.5b"],
        stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2],  # where `tests` imports
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base_url}/models", timeout=2).read()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"llama.cpp server exited with {process.returncode}; see {log.name}")
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("llama.cpp server did not come up in 120 s")
    yield base_url
    process.terminate()
    process.wait(timeout=30)
    log.close()


def _teacher(base_url, tokenizer_count):
    config = TeacherConfig(backend="openai", model="qwen-0.5b", base_url=base_url, max_tokens=128, timeout=120,
                           cache=False, max_retries=1)
    context = TeacherContext(count_tokens=tokenizer_count, dataset="esnli", split="valid", data_root=None)
    return config, build_teacher(config, context)


def _count(text: str) -> int:
    return len(text.split())


def test_cot_and_clear_annotate_real_questions(llama_server):
    task = TASKS.create("esnli")
    examples = task.load("valid")[:2]
    config, teacher = _teacher(llama_server, _count)
    calls = []
    ledger = Ledger(Budget(calls=20), count_tokens=_count, on_call=lambda req, resp, dollars: calls.append(resp))

    cot = build_annotator(AnnotationConfig(method="cot"), config, task, teacher, ledger)
    cot_results = [cot.annotate(e) for e in examples]
    assert len(calls) == 2 and all(c.prompt_tokens > 50 and c.completion_tokens > 0 for c in calls)  # server usage
    assert any(isinstance(r, Annotation) for r in cot_results)
    for result in cot_results:
        if isinstance(result, Annotation):
            assert result.answer in task.labels and result.target.endswith(f"So the answer is {result.answer}.")

    clear = build_annotator(AnnotationConfig(method="clear"), config, task, teacher, ledger)
    student_explanation = "The premise talks about people.\nPeople are animals.\nSo the answer is contradiction."
    result = clear.annotate(examples[0], student_explanation)
    details = result.details
    assert details["method"] == "clear" and details["student_steps"][0] == "The premise talks about people."
    print("CLEAR details:", json.dumps(details, indent=1)[:2000])
    assert details["outcome"] in ("kept", "revised", "dropped", "cot_fallback")
    if details["outcome"] == "revised":  # the student's correct prefix, then the teacher's continuation
        kept = details["kept_steps"]
        assert result.rationale.startswith("\n".join(details["student_steps"][:kept]))
        assert result.answer in task.labels
    if details["outcome"] == "cot_fallback":
        assert details["fallback_reason"]
    # Every reply was recorded; an attempt that timed out on a loaded machine is charged (lost) but has none.
    assert ledger.spent.calls - ledger.spent.lost == len(calls) <= 20


def test_a_loop_round_with_clear_against_the_server(llama_server, esnli_dir, tiny_model_dir, tmp_path):
    from elad.loop import Experiment
    from elad.store import RunStore
    from tests.integration.test_loop import make_config

    data = make_config(esnli_dir, tiny_model_dir, rounds=1, per_round=2).model_dump()
    data["teacher"].update(backend="openai", model="qwen-0.5b", base_url=llama_server, max_tokens=160, timeout=120)
    data["annotation"]["method"] = "clear"
    config = type(make_config(esnli_dir, tiny_model_dir)).model_validate(data)
    Experiment(config, tmp_path / "run").run()
    store = RunStore(tmp_path / "run" / "run.db")
    calls = store.db.execute("SELECT * FROM teacher_calls").fetchall()
    assert len(calls) >= 2 and all(c["backend"] == "openai" for c in calls)
    assert len(store.handled()) == 2  # both chosen items were annotated or rejected, and recorded
    assert len(store.explanations_by_id(1, "pool")) == 2  # CLEAR read the student's explanations
