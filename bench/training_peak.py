"""Peak memory and time of a round's training with and without gradient checkpointing
(`training.gradient_checkpointing`), with glibc's allocator as it comes (a threshold for mapping blocks apart
that rises with what is freed) and as elad sets it (`elad.students.memory`: while training with
checkpointing, blocks over 128 KiB mapped apart, so freed ones go back to the system; without it, and
while generating, every block from the heap, which is kept whole).

Each setting trains the student's LoRA on the same `--items` e-SNLI rationales (1 epoch, seed 0) in a fresh
process, then writes their greedy explanations (as an evaluation would). The process reports the peak of
its anonymous resident memory while training (sampled every 10 ms; the weights included, the model files
mapped from disk not), the training's and the generation's wall times and the last loss. Linux with glibc.

    .venv/bin/python bench/training_peak.py --student qwen2.5-coder-0.5b --items 32 --batch-size 8

Last line: each setting against "glibc" (no checkpointing, the allocator as it comes): peak_ratio = that
peak / this one, train_ratio and generate_ratio = this time / that one.
"""

import argparse
import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsbs-rationales" / "esnli"


SETTINGS = {  # name: (gradient checkpointing, elad's allocator setting)
    "glibc": (False, False),
    "checkpointing+glibc": (True, False),
    "elad": (False, True),
    "checkpointing+elad": (True, True),
}


def anonymous_gb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssAnon")) / 1e6


class PeakWatch:
    """The highest anonymous resident memory seen while the block runs (`read`: this process's, by default)."""

    def __init__(self, read=None):
        self.read = read or anonymous_gb

    def __enter__(self):
        self.peak, self.running = self.read(), True
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        while self.running:
            self.peak = max(self.peak, self.read())
            time.sleep(0.01)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


@contextlib.contextmanager
def trimmed_after(lean: bool = True):
    """glibc's allocator as it comes while training, and the trim after it that elad does."""
    from elad.students import memory

    yield
    memory.give_back_memory()


def train_once(args) -> dict:
    from elad.config import StudentConfig, TaskConfig, TrainingConfig
    from elad.students import Student, training

    checkpointing, mapped_apart = SETTINGS[args.one]
    if not mapped_apart:  # glibc's allocator as it comes; the trim after training as elad does it
        training.training_memory = trimmed_after

    student = Student(StudentConfig(model=args.student, lora={"r": 16, "alpha": 32}, max_new_tokens=32))
    task = TaskConfig.model_validate({"name": "esnli", "path": str(DATA)}).open()
    pairs = [(task.prompt(e), task.target(e.rationale, e.answer)) for e in task.load("valid")[:args.items]]
    settings = TrainingConfig(epochs=1, batch_size=args.batch_size, max_length=args.max_length,
                              gradient_checkpointing=checkpointing)
    started = time.perf_counter()
    with PeakWatch() as watch:
        report = student.train(pairs, settings, seed=0)
    trained = time.perf_counter()
    student.generate([prompt for prompt, _ in pairs])
    return {"peak_gb": round(watch.peak, 2), "train_s": round(trained - started, 1),
            "generate_s": round(time.perf_counter() - trained, 1), "loss": round(report.loss, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", default="qwen2.5-coder-0.5b")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--one", choices=list(SETTINGS), help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(train_once(args)))
        return
    results = {}
    for name in SETTINGS:
        child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--one", name], capture_output=True,
                               text=True, check=True)
        results[name] = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{name}: {results[name]}", flush=True)
    base = results["glibc"]
    print(" ".join(f"{name}: peak_ratio={base['peak_gb'] / r['peak_gb']:.2f} train_ratio={r['train_s'] / base['train_s']:.2f} "
                   f"generate_ratio={r['generate_s'] / base['generate_s']:.2f}" for name, r in results.items()
                   if name != "glibc"))


if __name__ == "__main__":
    main()
