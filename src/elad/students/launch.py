"""A round's training in several processes through `accelerate launch`: data-parallel on several GPUs (or
CPU processes, over gloo), or DeepSpeed / FSDP through an accelerate config file (`training.accelerate_args`).

Only the training is launched; the loop (selection, teacher calls, the store) stays in its one process, so
nothing is asked of the teacher or written to the run twice. The parent writes a job file (the student and
training configs, the records, a starting adapter for warm starts), runs

    accelerate launch --num_processes N --multi_gpu [accelerate_args] -m elad.students.launch JOB

and loads the adapter the main process saved. Every process builds the same student and calls the same
`Student.train`; the Trainer under accelerate shards the batches and averages the gradients.
"""

import json
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from elad.config import StudentConfig, TrainingConfig
from elad.errors import EladError


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
            *defaults, *settings.accelerate_args, "-m", "elad.students.launch", str(job)]


def train_in_processes(student, records, settings: TrainingConfig, seed: int, warm_start: bool,
                       log_dir: Path | None, run_name: str | None):
    """Train `student` in `settings.processes` processes; afterwards it holds the trained weights."""
    from elad.students.student import TrainReport

    with tempfile.TemporaryDirectory(prefix="elad-launch-") as scratch:
        folder = Path(scratch)
        start = None
        if warm_start:  # the processes start from the weights the student holds now
            start = folder / "start"
            student.save_adapter(start)
        job = {
            "student": student.config.model_dump(mode="json"), "training": settings.model_dump(mode="json"),
            "seed": seed, "start": str(start) if start else None, "records": [asdict(r) for r in records],
            "out": str(folder / "trained"), "report": str(folder / "report.json"),
            "log_dir": str(log_dir) if log_dir else None, "run_name": run_name,
        }
        (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
        finished = subprocess.run(launch_command(settings, folder / "job.json"), check=False)
        if finished.returncode != 0 or not (folder / "report.json").exists():
            raise EladError(f"training in {settings.processes} processes (accelerate launch) failed with exit status "
                            f"{finished.returncode}; its output is above")
        student.load_adapter(folder / "trained")
        return TrainReport(**json.loads((folder / "report.json").read_text()))


def run_job(job_path: Path) -> None:
    """One launched process: the same student and training as every other; the main process saves."""
    from accelerate import PartialState

    from elad.students.student import Student, TrainRecord

    job = json.loads(Path(job_path).read_text())
    state = PartialState(cpu=not torch.cuda.is_available())  # on a CPU: gloo across the processes
    student = Student(StudentConfig.model_validate(job["student"]))
    if job["start"]:
        student.load_adapter(Path(job["start"]))
    settings = TrainingConfig.model_validate({**job["training"], "processes": 1})
    records = [TrainRecord(**r) for r in job["records"]]
    report = student.train(records, settings, job["seed"], warm_start=bool(job["start"]),
                           log_dir=Path(job["log_dir"]) if job["log_dir"] else None, run_name=job["run_name"])
    if state.is_main_process:
        student.save_adapter(Path(job["out"]))
        Path(job["report"]).write_text(json.dumps(asdict(report)), encoding="utf-8")
    state.wait_for_everyone()


if __name__ == "__main__":
    run_job(Path(sys.argv[1]))
