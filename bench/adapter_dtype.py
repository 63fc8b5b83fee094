"""Generation with the LoRA adapter in the base weights' dtype (bf16), against the adapter in fp32 as it trains.

Over bf16 base weights a LoRA adapter that trains in fp32 makes every adapted layer cast its input to fp32,
multiply in fp32 and cast the result back; elad casts the adapter to bf16 while it generates and scores
(`StudentWeights.adapter_in_base_dtype`). This writes the same greedy e-SNLI test explanations both ways
with a trained Qwen2.5-Coder-0.5B student, alternated, and compares time, texts and answers. It measures
something only where the student loads in bf16 (`student.dtype: auto` on a GPU or a CPU with native bf16,
or `--dtype bfloat16`).

    .venv/bin/elad demo                                   # or any run: a round's LoRA adapter
    nice .venv/bin/python -u bench/adapter_dtype.py --adapter runs/demo/rounds/1/adapter [--items 96]

Last line: adapter_dtype_speedup=<fp32 s / bf16 s> same_texts=<n>/<m> same_answers=<n>/<m>
correct=<fp32>/<bf16>
"""

import argparse
import contextlib
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, required=True, help="a round's LoRA adapter (rounds/<r>/adapter)")
    parser.add_argument("--items", type=int, default=96, help="test questions explained greedily")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--dtype", default="auto", choices=["auto", "bfloat16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side, alternated")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from elad.config import StudentConfig, TaskConfig
    from elad.students import Student
    from elad.students.weights import StudentWeights

    task = TaskConfig(name="esnli").open()
    examples = task.load("test")[: args.items]
    prompts = [task.prompt(e) for e in examples]
    student = Student(StudentConfig(model="qwen2.5-coder-0.5b", lora={"r": 16, "alpha": 32}, dtype=args.dtype,
                                    max_new_tokens=args.max_new_tokens, generation_batch_size=48))
    student.load_adapter(args.adapter)
    print(f"base weights in {student.weights.pretrained.dtype}", flush=True)
    cast = StudentWeights.adapter_in_base_dtype

    def side(in_base_dtype: bool):
        StudentWeights.adapter_in_base_dtype = cast if in_base_dtype else (lambda self: contextlib.nullcontext())
        started = time.perf_counter()
        texts = student.generate(prompts)
        return texts, time.perf_counter() - started

    runs = {True: [], False: []}
    for in_base_dtype in (False, True) * args.repeats:
        runs[in_base_dtype].append(side(in_base_dtype))
        print(f"adapter in {'the base dtype' if in_base_dtype else 'fp32'}: {len(prompts)} explanations in "
              f"{runs[in_base_dtype][-1][1]:.1f} s", flush=True)
    StudentWeights.adapter_in_base_dtype = cast
    best = {side_: min(seconds for _, seconds in rs) for side_, rs in runs.items()}
    fp32, base = runs[False][0][0], runs[True][0][0]
    answers = [[task.parse_answer(t) for t in texts] for texts in (fp32, base)]
    correct = [sum(bool(task.is_correct(a, e.answer)) for a, e in zip(side_, examples)) for side_ in answers]
    print(f"adapter_dtype_speedup={best[False] / best[True]:.2f} same_texts={sum(a == b for a, b in zip(fp32, base))}/"
          f"{len(fp32)} same_answers={sum(a == b for a, b in zip(*answers))}/{len(fp32)} "
          f"correct={correct[0]}/{correct[1]}")


if __name__ == "__main__":
    main()
