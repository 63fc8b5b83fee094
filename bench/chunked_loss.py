"""A LoRA training's peak memory and time with the loss computed in chunks (elad's default for Llama-,
Mistral- and Qwen-shaped students, `students/chunked_loss.py`) against the whole logits of every batch.

Each setting trains the student's LoRA on the same `--items` SVAMP questions with their recorded PaLM
rationales (`--epochs`, seed 0, batches of 8, bf16 by default) in a fresh process, and reports the peak
of the process's anonymous resident memory while it trains (sampled every 10 ms; the weights included,
the model files mapped from disk not), the training's wall time and its last loss. Linux with glibc.

    .venv/bin/python bench/chunked_loss.py --items 128 --epochs 2

Last line: peak_ratio = whole's peak / chunked's (higher = less memory), train_ratio = whole's time /
chunked's (higher = faster).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_peak import PeakWatch  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsbs-rationales" / "svamp"


def train_once(args) -> dict:
    from elad.config import StudentConfig, TaskConfig, TrainingConfig
    from elad.students import Student, training

    if args.one == "whole":
        training.plain_head = lambda model: None  # every batch's logits, as before the chunks
    student = Student(StudentConfig(model=args.student, dtype=args.dtype, lora={"r": 16, "alpha": 32}))
    task = TaskConfig.model_validate({"name": "svamp", "path": str(DATA)}).open()
    pairs = [(task.prompt(e), task.target(e.rationale, e.answer)) for e in task.load("train")[:args.items]]
    settings = TrainingConfig(epochs=args.epochs, batch_size=8, max_length=384, learning_rate=5e-4)
    started = time.perf_counter()
    with PeakWatch() as watch:
        report = student.train(pairs, settings, seed=0)
    return {"peak_gb": round(watch.peak, 2), "train_s": round(time.perf_counter() - started, 1),
            "loss": round(report.loss, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", default="qwen2.5-coder-0.5b")
    parser.add_argument("--dtype", default="bfloat16", choices=["auto", "bfloat16", "float32"])
    parser.add_argument("--items", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--one", choices=["chunked", "whole"], help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(train_once(args)))
        return
    results = {}
    for name in ("whole", "chunked"):
        child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--one", name], capture_output=True,
                               text=True, check=True)
        results[name] = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{name}: {results[name]}", flush=True)
    whole, chunked = results["whole"], results["chunked"]
    print(f"peak_ratio={whole['peak_gb'] / chunked['peak_gb']:.2f} train_ratio={whole['train_s'] / chunked['train_s']:.2f}")


if __name__ == "__main__":
    main()
