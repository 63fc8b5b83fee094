"""Training with a batch's shared prompt start computed once, against computing it for every row.

`students.training` runs the tokens that every row of a batch shares before its first target (the chat
template's opening, and the task's instruction when `task.instruction_first` is set) through the model
once and repeats their keys and values for the batch. This trains the student on the same 32 e-SNLI items
(gold rationales as targets, CoT objective, 1 epoch, batches of 8, LoRA r 16) with that sharing on and off,
in both prompt layouts, alternated so that other work on the machine weighs on every side alike.

    nice .venv/bin/python -u bench/train_prefix.py [--examples 32] [--repeats 2] [--threads 2]

Last line: sharing_speedup_question_first=<off s / on s> sharing_speedup_instruction_first=<...>
shared_tokens=<question-first>-><instruction-first> loss_question_first=<on>/<off> loss_instruction_first=...
"""

import argparse
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "dsbs-rationales" / "esnli"
LAYOUTS = {"question_first": False, "instruction_first": True}


def records(instruction_first: bool, count: int):
    from elad.config import TaskConfig
    from elad.students.common import TrainRecord

    task = TaskConfig(name="esnli", path=str(DATA), instruction_first=instruction_first).open()
    return [TrainRecord(prompt=task.prompt(e), target=task.target(e.rationale or "", e.answer), rationale=e.rationale,
                        answer=e.answer) for e in task.load("valid")[:count]]


def shared_tokens(student, examples) -> int:
    ids = [student.prompts.ids(student.render_prompt(e.prompt)) for e in examples]
    same = 0
    while all(len(i) > same and i[same] == ids[0][same] for i in ids):
        same += 1
    return same


def timed_training(student, examples, settings, sharing: bool) -> tuple[float, float]:
    from elad.students import training

    training.SHARED_START_MIN = 8 if sharing else 10**9  # 10**9: no batch ever shares that much
    started = time.perf_counter()
    report = student.train(examples, settings, seed=0)
    return time.perf_counter() - started, report.loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from elad.config import StudentConfig, TrainingConfig
    from elad.students import Student

    student = Student(StudentConfig(model="qwen2.5-coder-0.5b", lora={"r": 16, "alpha": 32}))
    settings = TrainingConfig(objective="cot", epochs=1, learning_rate=5e-4, batch_size=8, max_length=256)
    data = {name: records(first, args.examples) for name, first in LAYOUTS.items()}
    seconds = {(name, on): 0.0 for name in LAYOUTS for on in (True, False)}
    losses = {}
    for repeat in range(args.repeats):
        for name in LAYOUTS:
            for sharing in (True, False):
                took, losses[name, sharing] = timed_training(student, data[name], settings, sharing)
                seconds[name, sharing] += took
                print(f"repeat {repeat + 1} {name} sharing={'on' if sharing else 'off'}: {took:.1f} s, "
                      f"loss {losses[name, sharing]:.4f}", flush=True)
    shared = {name: shared_tokens(student, data[name]) for name in LAYOUTS}
    print(" ".join(
        [f"sharing_speedup_{n}={seconds[n, False] / seconds[n, True]:.2f}" for n in LAYOUTS]
        + [f"shared_tokens={shared['question_first']}->{shared['instruction_first']}"]
        + [f"loss_{n}={losses[n, True]:.4f}/{losses[n, False]:.4f}" for n in LAYOUTS]))


if __name__ == "__main__":
    main()
