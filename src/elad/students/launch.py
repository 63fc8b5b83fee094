"""A round's training in several processes through `accelerate launch`: data-parallel on several GPUs (or
CPU processes, over gloo), or DeepSpeed / FSDP through an accelerate config file (`training.accelerate_args`).

Only the training is launched; the loop (selection, teacher calls, the store) stays in its one process, so
nothing is asked of the teacher or written to the run twice. The parent writes a job file (the student and
training configs, the records, a starting adapter for warm starts), runs

    accelerate launch --num_processes N --multi_gpu [accelerate_args] -m elad.students.train_worker JOB

and loads the adapter the main process saved. Every process loads the same weights and trains them the
same way (train_worker.py); the Trainer under accelerate shards the batches and averages the gradients.
This module is the parent's side only, so that training.py can call it without a cycle.
"""

import json
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from elad.config import TrainingConfig
from elad.errors import EladError
from elad.students.common import TrainRecord, TrainReport
from elad.students.weights import StudentWeights

# accelerate launch arguments that choose the distributed mode themselves
MODE_ARGS = ("--config_file", "--multi_gpu", "--cpu", "--use_deepspeed", "--use_fsdp", "--tpu")


def launch_command(settings: TrainingConfig, job: Path) -> list[str]:
    """`accelerate launch` in its multi-process mode (torchrun underneath: NCCL on GPUs; on a CPU the
    Trainer's use_cpu makes it gloo), unless the user's accelerate_args choose a mode (DeepSpeed, FSDP, a
    config file)."""
    chosen = any(arg.split("=")[0] in MODE_ARGS for arg in settings.accelerate_args)
    defaults = [] if chosen else ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no",
                                  "--dynamo_backend", "no"]
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(settings.processes),
            *defaults, *settings.accelerate_args, "-m", "elad.students.train_worker", str(job)]


def train_in_processes(weights: StudentWeights, records: list[TrainRecord], settings: TrainingConfig, seed: int,
                       warm_start: bool, log_dir: Path | None, run_name: str | None) -> TrainReport:
    """Train in `settings.processes` processes; afterwards `weights` holds the trained weights."""
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
            "log_dir": str(log_dir) if log_dir else None, "run_name": run_name,
        }
        (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
        finished = subprocess.run(launch_command(settings, folder / "job.json"), check=False)
        if finished.returncode != 0 or not (folder / "report.json").exists():
            raise EladError(f"training in {settings.processes} processes (accelerate launch) failed with exit status "
                            f"{finished.returncode}; its output is above")
        weights.load(folder / "trained")
        return TrainReport(**json.loads((folder / "report.json").read_text()))
