"""Memory a student process holds after a round's training, with and without handing the freed heap back
(`elad.students.memory.give_back_memory`, glibc's malloc_trim, called as every training ends).

Trains the student's LoRA on `--items` e-SNLI rationales, then reads the process's anonymous resident
memory (RssAnon: not the model files mapped from disk) before and after the trim, and after generating,
as the loop does next. Linux with glibc only.

    .venv/bin/python bench/training_memory.py --student qwen2.5-coder-0.5b --items 32 --batch-size 8

Last line: name=value pairs; held_ratio = memory held after training without the trim / with it.
"""

import argparse
import os
from pathlib import Path

from elad.config import StudentConfig, TaskConfig, TrainingConfig
from elad.students import Student
from elad.students import memory

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsbs-rationales" / "esnli"


def anonymous_gb() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssAnon")) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", default="qwen2.5-coder-0.5b")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args()

    trim = memory.give_back_memory
    memory.give_back_memory = lambda: None  # measure first what training leaves held
    student = Student(StudentConfig(model=args.student, lora={"r": 16, "alpha": 32}, max_new_tokens=32))
    task = TaskConfig.model_validate({"name": "esnli", "path": str(DATA)}).open()
    examples = task.load("valid")[:args.items]
    pairs = [(task.prompt(e), task.target(e.rationale, e.answer)) for e in examples]
    loaded = anonymous_gb()
    student.train(pairs, TrainingConfig(epochs=1, batch_size=args.batch_size, max_length=args.max_length), seed=0)
    held = anonymous_gb()
    trim()
    trimmed = anonymous_gb()
    student.generate([task.prompt(e) for e in examples])
    generating = anonymous_gb()
    print(f"loaded {loaded:.2f} GB, after training {held:.2f} GB, after the trim {trimmed:.2f} GB, "
          f"after generating {generating:.2f} GB")
    print(f"loaded_gb={loaded:.2f} held_gb={held:.2f} trimmed_gb={trimmed:.2f} generating_gb={generating:.2f} "
          f"held_ratio={held / trimmed:.2f}")


if __name__ == "__main__":
    main()
