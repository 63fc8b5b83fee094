"""One process of a training launched apart (see launch.py): `python -m elad.students.train_worker JOB`, or
`accelerate launch ... -m elad.students.train_worker JOB` for several.

Each process loads the student's weights as the parent configured them, trains them in-process like every
other (the Trainer shards the batches between them), and the main process saves the result for the parent
and writes its steps for the parent's progress bar. A process whose parent has gone stops.
"""

import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from elad.children import stop_without
from elad.config import StudentConfig, TrainingConfig
from elad.students.common import TrainRecord
from elad.students.prompting import PromptFormat
from elad.students.training import train_here
from elad.students.weights import StudentWeights, open_pretrained


def run_job(job_path: Path) -> None:
    """One launched process: the same weights and training as every other; the main process saves."""
    from accelerate import PartialState

    job = json.loads(Path(job_path).read_text())
    if job.get("parent"):
        stop_without(job["parent"])
    if job.get("quiet"):
        _as_quiet_as(job["quiet"])
    state = PartialState(cpu=not torch.cuda.is_available())  # on a CPU: gloo across the processes
    config = StudentConfig.model_validate(job["student"])
    pretrained = open_pretrained(config)
    weights = StudentWeights(config, pretrained)
    if job["start"]:
        weights.load(Path(job["start"]))
    settings = TrainingConfig.model_validate({**job["training"], "processes": 1})
    records = [TrainRecord(**r) for r in job["records"]]
    progress = _steps_writer(Path(job["progress"])) if job.get("progress") and state.is_main_process else None
    # train_here, not train: the parent checked the checkpoints' key and deletes them when all have finished
    report = train_here(weights, PromptFormat(pretrained.tokenizer, pretrained.is_seq2seq), records, settings,
                        job["seed"], warm_start=bool(job["start"]), progress=progress,
                        log_dir=Path(job["log_dir"]) if job["log_dir"] else None, run_name=job["run_name"])
    if state.is_main_process:
        weights.save(Path(job["out"]))
        Path(job["report"]).write_text(json.dumps(asdict(report)), encoding="utf-8")
    state.wait_for_everyone()


def _as_quiet_as(parent: dict) -> None:
    from transformers.utils import logging

    logging.set_verbosity(parent["verbosity"])
    if not parent["progress_bars"]:
        logging.disable_progress_bar()


def _steps_writer(path: Path):
    """Progress for the parent: "done total", the file replaced whole so that it never reads half a line."""
    def write(done: int, total: int) -> None:
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text(f"{done} {total}\n", encoding="utf-8")
        scratch.replace(path)
    return write


if __name__ == "__main__":
    run_job(Path(sys.argv[1]))
