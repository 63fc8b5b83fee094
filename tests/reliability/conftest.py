"""Shared pieces of the reliability suite: a small e-SNLI folder, whole-loop configs pointed at the fake
OpenAI-compatible server, a teacher that answers each question with its gold label, short client
backoffs, and the suite's figures (faults injected, runs survived, annotations lost, paid twice, budget
overruns), written to JSON and printed at the end of the session.

Figures: `reliability_figures.json` in pytest's temporary base folder, and in the file that the
environment variable `ELAD_RELIABILITY_FIGURES` names, when it is set.
"""

import json
import os
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import write_esnli
from tests.fakes.openai_server import FakeOpenAIServer
from tests.reliability.audit import audit, store_digest
from tests.reliability.procs import Launcher, write_config

LABELS = ("entailment", "neutral", "contradiction")
POOL_ROWS = [(f"A person number {i} walks.", f"Someone {i} moves.", i % 3) for i in range(10)]
TEST_ROWS = [(f"A dog number {i} runs.", f"An animal {i} is outside.", i % 3) for i in range(2)]
SECRET = "sk-test-SECRET-7f3a9c-never-written-anywhere"

# The suite's figures; tests add to them, the session writes and prints them.
FIGURES: Counter = Counter()


def teacher_reply(messages: list[dict], body: dict) -> str:
    """A well-behaved teacher: the gold label of pool row i (i % 3), read from 'Someone i moves'."""
    question = str(messages[-1].get("content", "")) if messages else ""
    found = re.search(r"Someone (\d+) moves", question)
    label = LABELS[int(found.group(1)) % 3] if found else "neutral"
    return f"Person walking means someone moves.\nSo the answer is {label}."


def gold_label(example_id: str) -> str:
    return LABELS[int(example_id.split("-")[1]) % 3]


@pytest.fixture(scope="session")
def rel_data(tmp_path_factory) -> Path:
    return write_esnli(tmp_path_factory.mktemp("rel-esnli"), {"valid": POOL_ROWS, "test": TEST_ROWS}, {})


@pytest.fixture(scope="session")
def wordy_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny student with a generation config that never repeats a token: left to itself its greedy
    explanation is blank lines, which gives CLEAR nothing to review; this one writes words."""
    import shutil

    folder = tmp_path_factory.mktemp("wordy") / "model"
    shutil.copytree(tiny_model_dir, folder)
    generation = json.loads((folder / "generation_config.json").read_text())
    (folder / "generation_config.json").write_text(json.dumps({**generation, "no_repeat_ngram_size": 1}))
    return folder


def loop_config(data_dir: Path, model_dir: Path, base_url: str, **sections) -> dict:
    """A whole-loop config (as a dict): the tiny student, the `openai` backend at `base_url`, CoT
    annotation, 2 rounds of 3; `sections` replace keys inside a section, e.g. loop={"rounds": 1}."""
    config = {
        "name": "reliability",
        "seed": 7,
        "task": {"name": "esnli", "path": str(data_dir), "pool_split": "valid", "test_split": "test",
                 "pool_size": None, "test_size": None},
        "student": {"model": str(model_dir), "dtype": "float32", "max_new_tokens": 4, "new_tokens_cap": 4, "generation_batch_size": 16,
                    "lora": {"r": 2, "alpha": 4}},
        "training": {"epochs": 1, "batch_size": 4, "max_length": 128},
        "selection": {"strategy": "random"},
        "teacher": {"backend": "openai", "model": "fake-teacher", "base_url": base_url, "timeout": 0.4,
                    "max_retries": 2, "concurrency": 2, "price_prompt": 1.0, "price_completion": 2.0},
        "annotation": {"method": "cot"},
        "loop": {"rounds": 2, "per_round": 3, "evaluate_initial": False},
    }
    for section, values in sections.items():
        if isinstance(values, dict) and isinstance(config.get(section), dict):
            config[section] = {**config[section], **values}
        else:
            config[section] = values
    return config


@pytest.fixture
def fast_backoff(monkeypatch):
    """The teacher's backoff (0.5 s doubling) shortened to 20 ms doubling, in this process only; a
    server's Retry-After is still waited for exactly."""
    from elad.teachers import openai_compat

    monkeypatch.setattr(openai_compat, "INITIAL_BACKOFF", 0.02)


@pytest.fixture
def server():
    fake = FakeOpenAIServer(answer=teacher_reply, retry_after="0.05", slow_seconds=0.8).start()
    yield fake
    fake.stop()


def faults_served(server: FakeOpenAIServer) -> int:
    return sum(count for cue, count in server.served.items() if cue != "ok")


@pytest.fixture(scope="session", autouse=True)
def reliability_figures(tmp_path_factory):
    started = time.time()
    yield FIGURES
    if not FIGURES:
        return
    FIGURES["suite_seconds"] = round(time.time() - started)
    text = json.dumps(dict(sorted(FIGURES.items())), indent=2)
    (tmp_path_factory.getbasetemp() / "reliability_figures.json").write_text(text)
    if os.environ.get("ELAD_RELIABILITY_FIGURES"):
        Path(os.environ["ELAD_RELIABILITY_FIGURES"]).write_text(text)


KEY_ENV = "ELAD_TEST_KEY"
# The uninterrupted run needs 6 calls; the crashed one pays for an unusable reply too, and each request in
# flight at a kill is charged at its worst case (the provider may bill it) before it is asked again.
BUDGET = {"calls": 12}


def crash_config(rel_data, tiny_model_dir, server) -> dict:
    # egss_inter: the student samples explanations of the pool each round (a stage worth killing).
    # One request in flight: a kill at the k-th request lands after the earlier ones were handled.
    # Training of 3 epochs in batches of 1, with a checkpoint after every step: a kill while training
    # leaves checkpoints to resume from.
    return loop_config(rel_data, tiny_model_dir, server.base_url,
                       selection={"strategy": "egss_inter", "samples": 2},
                       training={"epochs": 3, "batch_size": 1, "checkpoint_minutes": 1e-9},
                       teacher={"concurrency": 1, "api_key_env": KEY_ENV, "timeout": 5},
                       loop={"budget": BUDGET})


@pytest.fixture(scope="session")
def reference(rel_data, tiny_model_dir, tmp_path_factory):
    """An uninterrupted run. The secrets tests search it too: the key is in the environment and the
    `openai` client's debug log is on."""
    folder = tmp_path_factory.mktemp("reference")
    with FakeOpenAIServer(answer=teacher_reply) as server:
        config = write_config(folder / "config.yaml", crash_config(rel_data, tiny_model_dir, server))
        launcher = Launcher(config, folder / "run", env={KEY_ENV: SECRET, "OPENAI_LOG": "debug"})
        launch = launcher.run()
        assert launch.rc == 0, launch.out + launch.err
        found = audit(folder / "run", server, budget=BUDGET)
        headers = [s.headers.get("authorization") for s in server.seen]
    FIGURES["loop_runs"] += 1
    FIGURES["runs_survived"] += 1
    return {"dir": folder / "run", "digest": store_digest(folder / "run"), "audit": found,
            "launches": launcher.launches, "headers": headers}


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("reliability figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}={value}")
