"""A round's training in processes of its own: one fresh process (`training.own_process`), or several through
`accelerate launch`: data-parallel on several GPUs (or CPU processes, over gloo), or DeepSpeed / FSDP through
an accelerate config file (`training.accelerate_args`).

Only the training runs there; the loop (selection, teacher calls, the store) stays in its one process, so
nothing is asked of the teacher or written to the run twice. The parent writes a job file (the student and
training configs, the records, a starting adapter for warm starts), lets its own weights go, runs

    python -m elad.students.train_worker JOB                       (one process), or
    accelerate launch --num_processes N --multi_gpu [accelerate_args] -m elad.students.train_worker JOB

and loads the adapter the main process saved. Every process loads the same weights and trains them the
same way (train_worker.py); the Trainer under accelerate shards the batches and averages the gradients.
The main process writes its steps to a file that the parent reads for the round's progress bar. A process
that ends hands all its memory back, where a long-lived one's heap keeps what each training scattered in it.
This module is the parent's side only, so that training.py can call it without a cycle.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from elad.children import ending
from elad.config import TrainingConfig
from elad.errors import EladError
from elad.students.common import Progress, TrainRecord, TrainReport
from elad.students.memory import give_back_memory
from elad.students.weights import StudentWeights

# accelerate launch arguments that choose the distributed mode themselves
MODE_ARGS = ("--config_file", "--multi_gpu", "--cpu", "--use_deepspeed", "--use_fsdp", "--tpu")


def launch_command(settings: TrainingConfig, job: Path) -> list[str]:
    """One process: the worker itself. Several: `accelerate launch` in its multi-process mode (torchrun
    underneath: NCCL on GPUs; on a CPU the Trainer's use_cpu makes it gloo), unless the user's
    accelerate_args choose a mode (DeepSpeed, FSDP, a config file)."""
    worker = ["-m", "elad.students.train_worker", str(job)]
    if settings.processes == 1:
        return [sys.executable, *worker]
    chosen = any(arg.split("=")[0] in MODE_ARGS for arg in settings.accelerate_args)
    defaults = [] if chosen else ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no",
                                  "--dynamo_backend", "no"]
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(settings.processes),
            *defaults, *settings.accelerate_args, *worker]


def train_in_processes(weights: StudentWeights, records: list[TrainRecord], settings: TrainingConfig, seed: int,
                       warm_start: bool, log_dir: Path | None, run_name: str | None,
                       progress: Progress | None = None) -> TrainReport:
    """Train in `settings.processes` fresh processes (one or more); afterwards `weights` holds the trained
    weights. While they train, this process holds no model: the weights are reloaded from the result."""
    with tempfile.TemporaryDirectory(prefix="elad-launch-") as scratch:
        folder = Path(scratch)
        start = None
        if warm_start:  # the processes start from the weights held now
            start = folder / "start"
            weights.save(start)
        job = {
            "student": weights.config.model_dump(mode="json"), "training": settings.model_dump(mode="json"),
            "seed": seed, "start": str(start) if start else None, "records": [asdict(r) for r in records],
            "out": str(folder / "trained"), "report": str(folder / "report.json"),
            "progress": str(folder / "progress"), "log_dir": str(log_dir) if log_dir else None,
            "run_name": run_name, "parent": os.getpid(), "quiet": _quiet(),
        }
        (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
        weights.drop_model()  # two copies of the weights are never held; the training's memory is its own
        give_back_memory()
        child = subprocess.Popen(launch_command(settings, folder / "job.json"))
        try:
            returncode = _wait_reporting(child, folder / "progress", progress)
        finally:
            if child.poll() is None:  # interrupted here: the training does not go on without us
                child.terminate()
                child.wait()
        if returncode != 0 or not (folder / "report.json").exists():
            raise EladError(f"training in {_processes(settings)} failed ({ending(returncode)}); its output is "
                            "above; rerunning resumes from the training's last checkpoint")
        weights.load(folder / "trained")
        return TrainReport(**json.loads((folder / "report.json").read_text()))


def _quiet() -> dict:
    """How chatty transformers is here, for the processes to be as quiet (elad's CLI silences it)."""
    from transformers.utils import logging

    return {"verbosity": logging.get_verbosity(), "progress_bars": logging.is_progress_bar_enabled()}


def _processes(settings: TrainingConfig) -> str:
    if settings.processes == 1:
        return "a process of its own"
    return f"{settings.processes} processes (accelerate launch)"


def _wait_reporting(child: subprocess.Popen, steps_file: Path, progress: Progress | None) -> int:
    """Wait for the training to end, passing the steps its main process writes on to `progress`."""
    reported = None
    while True:
        returncode = child.poll()
        if progress is not None and steps_file.exists():
            last = steps_file.read_text(encoding="utf-8").split()  # "done total", replaced whole each step
            if len(last) == 2 and last != reported:
                reported = last
                progress(int(last[0]), int(last[1]))
        if returncode is not None:
            return returncode
        time.sleep(0.5)
