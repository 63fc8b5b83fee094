"""Why Student generates with every weight marked requires_grad (under inference_mode).

On this CPU (torch 2.13, bf16), generation through a model whose weights are frozen, as LoRA leaves the
base model, measured 3.5x slower than through the very same weights unfrozen (Qwen2.5-0.5B, batch 16).
This prints the ratio for a packaged model: `python bench/frozen_weights.py [--model smollm2-135m]`.
Last line: `frozen_over_unfrozen=<ratio>` (time with frozen weights / time unfrozen; > 1 means the
workaround pays).
"""

import argparse
import time

import torch

from elad.config import StudentConfig
from elad.students import Student
from elad.tasks import TASKS


def timed_generation(student: Student, batch: dict, tokens: int) -> float:
    started = time.perf_counter()
    with torch.inference_mode():
        student.model.generate(**batch, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                               pad_token_id=student.tokenizer.pad_token_id)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(2)
    student = Student(StudentConfig(model=args.model))
    task = TASKS.create("esnli")
    prompts = [student.render_prompt(task.prompt(e)) for e in task.load("test")[: args.batch]]
    student.tokenizer.padding_side = "left"
    batch = student.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    timings = {"unfrozen": [], "frozen": []}
    for _ in range(args.repeats):  # interleaved, so a busy machine slows both alike
        student.model.requires_grad_(True)
        timings["unfrozen"].append(timed_generation(student, batch, args.tokens))
        student.model.requires_grad_(False)
        timings["frozen"].append(timed_generation(student, batch, args.tokens))
    best = {name: min(values) for name, values in timings.items()}
    for name, seconds in best.items():
        print(f"{name:9s} {seconds:6.2f} s  ({args.batch * args.tokens / seconds:.0f} tokens/s)")
    print(f"model={args.model} frozen_over_unfrozen={best['frozen'] / best['unfrozen']:.2f}")


if __name__ == "__main__":
    main()
