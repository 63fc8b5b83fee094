"""A run directory: where each of a run's files lives, and the lock that makes it one process's.

    run.db                 the run store (RunStore; the ledger's journal too)
    config.yaml            the resolved config the run was started with
    teacher_cache.db       the teacher's response cache
    rounds/<r>/adapter     the LoRA adapter (or weights) trained in round r
    rounds/<r>/trainer     the trainer's logs of round r (experiment trackers)
    trackers/              the round metrics' tracker logs (tensorboard)
    report/                metrics.csv, the plot

Every other module asks a RunDir for these paths instead of spelling them out.
"""

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from elad.errors import EladError
from elad.store.db import RunStore


@dataclass(frozen=True)
class RunLabels:
    """What a run was, as reports name it; None where its config.yaml does not say."""

    name: str | None = None
    task: str | None = None
    strategy: str | None = None
    annotator: str | None = None
    seed: int = 0
    # what else makes runs comparable: (section.key, value) for each of SETTING_KEYS the config gives
    setting: tuple[tuple[str, str], ...] = ()


# Runs that differ in any of these are different experiments, not seeds or arms of one: reports keep them
# apart. Each changes what the student learns or how its accuracy is measured; the data's path is not here
# (the same files sit at other paths on other machines), nor what a strategy or annotator is (the arms).
SETTING_KEYS = (
    "task.pool_split", "task.test_split", "task.pool_size", "task.test_size", "task.validation_size",
    "task.options", "task.instruction_first",
    "student.model", "student.dtype", "student.lora", "student.max_new_tokens", "student.fit_new_tokens",
    "student.new_tokens_cap",
    "teacher.backend", "teacher.model", "teacher.source", "teacher.temperature",
    "annotation.few_shot", "annotation.gold_check",
    "training.objective", "training.alpha", "training.inference", "training.learning_rate", "training.epochs",
    "training.batch_size", "training.max_length", "training.warm_start",
    "loop.per_round", "loop.initial_random", "loop.evaluate_initial", "loop.evaluate_by",
)


@functools.cache
def _defaults() -> dict:
    from elad.config import ExperimentConfig  # here: the run directory's paths need no config

    return ExperimentConfig().model_dump()


class RunDir:
    STORE, CONFIG, CACHE, ROUNDS, REPORT = "run.db", "config.yaml", "teacher_cache.db", "rounds", "report"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # --- paths -------------------------------------------------------------------------------------

    @property
    def store_path(self) -> Path:
        return self.path / self.STORE

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def cache_path(self) -> Path:
        return self.path / self.CACHE

    @property
    def report_dir(self) -> Path:
        return self.path / self.REPORT

    def adapter(self, round_: int) -> Path:
        return self.path / self.ROUNDS / str(round_) / "adapter"

    @property
    def tracker_logs(self) -> Path:
        return self.path / "trackers"

    def trainer_logs(self, round_: int) -> Path:
        return self.path / self.ROUNDS / str(round_) / "trainer"

    def trained_rounds(self) -> list[int]:
        """The rounds whose adapter was saved, in order."""
        rounds = self.path / self.ROUNDS
        if not rounds.is_dir():
            return []
        return sorted(int(p.parent.name) for p in rounds.glob("*/adapter") if p.parent.name.isdigit())

    # --- the run -----------------------------------------------------------------------------------

    def has_run(self) -> bool:
        return self.store_path.exists()

    def open_store(self, readonly: bool = False) -> RunStore:
        """The run store; read-only for commands that only look (they change no byte of it)."""
        if readonly and not self.has_run():
            raise EladError(f"{self.path}: no run here (no run store at {self.store_path})")
        return RunStore(self.store_path, readonly=readonly)

    def labels(self) -> RunLabels:
        """The run's name, task, strategy, annotator and seed from its config.yaml, read without validating
        the whole config, so that runs written by an older elad (other keys) still compare."""
        if not self.config_path.exists():
            return RunLabels()
        try:
            config = yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise EladError(f"{self.config_path}: not a readable config ({error})") from error
        if not isinstance(config, dict):
            raise EladError(f"{self.config_path}: not a config (a mapping of sections expected)")

        def section(name: str, key: str) -> str | None:
            value = (config.get(name) or {}).get(key) if isinstance(config.get(name), dict) else None
            return str(value) if value is not None else None

        def setting_value(name: str, key: str) -> str | None:
            # a key the file leaves out (an older elad wrote it) has its default: equal settings stay together
            if isinstance(config.get(name), dict) and key in config[name]:
                value = config[name][key]
            else:
                value = _defaults().get(name, {}).get(key)
            if isinstance(value, (dict, list)):  # in one spelling whatever order the file wrote its keys in
                return json.dumps(value, sort_keys=True)
            return str(value) if value is not None else None

        name = config.get("name")
        setting = tuple((key, value) for key in SETTING_KEYS if (value := setting_value(*key.split("."))) is not None)
        selection = config.get("selection") if isinstance(config.get("selection"), dict) else {}
        return RunLabels(name=str(name) if name else None, task=section("task", "name"),
                         strategy=strategy_label(selection) if selection.get("strategy") else None,
                         annotator=section("annotation", "method"),
                         seed=int(config.get("seed") or 0), setting=setting)

    def lock(self) -> "RunDirLock":
        return RunDirLock(self.path)


class RunDirLock:
    """An exclusive lock on the run directory itself (no lock file: taking it writes nothing), held until
    `close()`; the kernel drops it on any exit, SIGKILL included. Two processes on one run would buy the
    same annotations twice."""

    def __init__(self, path: Path):
        import fcntl

        self.fd: int | None = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise EladError(
                f"{path} is in use by another elad process; wait for it or use another run directory"
            ) from None

    @property
    def closed(self) -> bool:
        return self.fd is None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __del__(self):
        self.close()


def strategy_label(selection) -> str:
    """How reports name a run's selection: its strategy, and the acquisition that draws its batch when that
    is not the top scores (`egss+softrank`, `egss+power:2` with a beta other than 1), as `elad grid` takes it.
    `selection`: a SelectionConfig or its YAML mapping."""
    data = selection if isinstance(selection, dict) else selection.model_dump()
    options = data.get("options") or {}
    acquisition = str(options.get("acquisition", "top"))
    if acquisition == "top":
        return str(data["strategy"])
    beta = float(options.get("beta", 1.0))
    return f"{data['strategy']}+{acquisition}" + (f":{beta:g}" if beta != 1.0 else "")

