"""Checkpoints of a round's training, so that a run stopped mid-training continues from where it was.

Every `training.checkpoint_minutes` the Trainer saves the adapter (or the weights), the optimizer and
scheduler, the RNG states and its step into the round's trainer folder, keeping only the latest. A
restarted run that trains the same round on the same set resumes from it; the data order comes from the
seed and the epoch (see training.SeededLengthSampler), so the resumed training sees the batches the
uninterrupted one would have. A key file ties the checkpoints to what they were trained on: a different
training set, configuration, seed or student starts from scratch. After the training finishes they are
deleted (the round's adapter is saved by the loop).
"""

import hashlib
import json
import logging
import shutil
import time
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from transformers import TrainerCallback

from elad.students.common import TrainRecord

log = logging.getLogger(__name__)

KEY_FILE = "resume-key.txt"
PREFIX = "checkpoint-"
COMPLETE = "trainer_state.json"  # the Trainer writes it after weights, optimizer and RNG states


def training_key(student: dict, records: Sequence[TrainRecord], settings: dict, seed: int, warm_start: bool) -> str:
    """A digest of everything that decides the training's steps (the process count too: it sets the steps
    per epoch); trackers and the checkpoint interval aside, which change what is written, not what is
    trained."""
    steps = {k: v for k, v in settings.items() if k not in ("report_to", "checkpoint_minutes")}
    content = json.dumps([student, [asdict(r) for r in records], steps, seed, warm_start], sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()


def claim(folder: Path, key: str) -> None:
    """Make `folder` hold checkpoints of the training `key` only: those of another are deleted."""
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / KEY_FILE
    if key_file.exists() and key_file.read_text().strip() == key:
        return
    drop(folder)
    key_file.write_text(key + "\n")


def prune(folder: Path) -> None:
    """Delete, newest first, the checkpoints a training cannot resume from, up to the first it can: one
    without its trainer state (a kill during a save) or whose files do not read back (a crash of the
    machine may leave files that were never flushed), so that the training resumes from an older one, or
    starts again, instead of failing. Run once before a training starts (`train` does, not each of its
    processes, which would read every file again and delete what another is reading)."""
    for candidate in sorted(_checkpoints(folder), key=_step, reverse=True):
        if (candidate / COMPLETE).exists():
            damaged = _unreadable(candidate)
            if damaged is None:
                return
            log.warning("training checkpoint %s does not read back (%s): not resumed from", candidate, damaged)
        shutil.rmtree(candidate, ignore_errors=True)


def last_complete(folder: Path) -> Path | None:
    """The newest checkpoint written to its end (after `prune`, one that reads back), or None."""
    complete = [candidate for candidate in _checkpoints(folder) if (candidate / COMPLETE).exists()]
    return max(complete, key=_step, default=None)


# What reading a damaged file raises (ValueError covers bad JSON and bad UTF-8). Other errors (memory,
# permissions, too many open files) say nothing about the checkpoint, so they do not get it deleted.
DAMAGED = (ValueError, EOFError, zipfile.BadZipFile, zlib.error, SafetensorError)


def _unreadable(checkpoint: Path) -> str | None:
    """What in `checkpoint` does not read back, or None: the trainer state must parse, every torch file
    (a zip archive) must pass its checksums, every safetensors file's header must parse and its size match
    it (safetensors keeps no checksum of the data)."""
    for path in sorted(checkpoint.rglob("*")):
        try:
            if path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix in (".pt", ".pth", ".bin"):
                with zipfile.ZipFile(path) as archive:
                    if archive.testzip() is not None:
                        return f"{path.name}: a checksum fails"
            elif path.suffix == ".safetensors":
                with safe_open(str(path), framework="pt"):  # opening reads and checks the header
                    pass
        except DAMAGED as error:
            return f"{path.name}: {type(error).__name__}"
    return None


def drop(folder: Path) -> None:
    """Delete the checkpoints and their key (the tracker logs beside them stay)."""
    for checkpoint in _checkpoints(folder):
        shutil.rmtree(checkpoint, ignore_errors=True)  # ignore_errors: several processes may finish at once
    (folder / KEY_FILE).unlink(missing_ok=True)


def _checkpoints(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()]


def _step(checkpoint: Path) -> int:
    return int(checkpoint.name[len(PREFIX):])


class SaveEvery(TrainerCallback):
    """Asks the Trainer to save a checkpoint once `minutes` have passed since the last. In several processes
    the first one's clock decides for all: a save is a step every process must take together."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60
        self.last = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            return  # the training ends here: nothing to resume
        due = time.monotonic() - self.last >= self.seconds
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([float(due)], device=args.device)
            torch.distributed.broadcast(flag, src=0)
            due = bool(flag.item())
        if due:
            control.should_save = True
            self.last = time.monotonic()
