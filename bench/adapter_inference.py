"""How a trained LoRA adapter runs while the student generates: peft's layers with the adapter in fp32 as it
trains, peft's layers with the adapter cast to the base weights' dtype, and elad's fused layers
(`elad.students.lora_fused`: one accumulating product, the scaling folded in, the base's dtype).

Over bf16 base weights an fp32 adapter makes every adapted layer cast its input to fp32 and back; and
peft adds the adapter's part in two passes over each layer's output. This writes the same greedy e-SNLI
test explanations in each setting with a trained Qwen2.5-Coder-0.5B student, alternated, and compares
time, texts and answers against the first setting. With `--dtype float32` the cast does nothing and the
fused layers should give the same texts.

    .venv/bin/elad demo                                   # or any run: a round's LoRA adapter
    nice .venv/bin/python -u bench/adapter_inference.py --adapter runs/demo/rounds/1/adapter [--items 96]

Last line, for each later setting against peft with an fp32 adapter:
<setting>: speedup=<s / s> same_texts=<n>/<m> same_answers=<n>/<m> correct=<n> (the first: correct=<n>)
"""

import argparse
import contextlib
import time
from pathlib import Path

import torch

SETTINGS = {"peft-fp32": (False, False), "peft-cast": (True, False), "fused": (True, True)}  # (cast, fuse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, required=True, help="a round's LoRA adapter (rounds/<r>/adapter)")
    parser.add_argument("--items", type=int, default=96, help="test questions explained greedily")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float32"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each setting, alternated")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from elad.config import StudentConfig, TaskConfig
    from elad.students import Student, weights
    from elad.students.weights import StudentWeights

    task = TaskConfig(name="esnli").open()
    examples = task.load("test")[: args.items]
    prompts = [task.prompt(e) for e in examples]
    student = Student(StudentConfig(model="qwen2.5-coder-0.5b", lora={"r": 16, "alpha": 32}, dtype=args.dtype,
                                    max_new_tokens=args.max_new_tokens, generation_batch_size=48))
    student.load_adapter(args.adapter)
    print(f"base weights in {student.weights.pretrained.dtype}", flush=True)
    cast, fuse = StudentWeights.adapter_in_base_dtype, weights.fused_lora

    def run(setting: str):
        casts, fuses = SETTINGS[setting]
        StudentWeights.adapter_in_base_dtype = cast if casts else (lambda self: contextlib.nullcontext())
        weights.fused_lora = fuse if fuses else (lambda model: contextlib.nullcontext())
        started = time.perf_counter()
        texts = student.generate(prompts)
        seconds = time.perf_counter() - started
        print(f"{setting}: {len(prompts)} explanations in {seconds:.1f} s", flush=True)
        return texts, seconds

    runs = {name: [] for name in SETTINGS}
    for _ in range(args.repeats):
        for name in SETTINGS:
            runs[name].append(run(name))
    StudentWeights.adapter_in_base_dtype, weights.fused_lora = cast, fuse
    best = {name: min(seconds for _, seconds in rs) for name, rs in runs.items()}
    texts = {name: rs[0][0] for name, rs in runs.items()}
    answers = {name: [task.parse_answer(t) for t in ts] for name, ts in texts.items()}
    correct = {name: sum(bool(task.is_correct(a, e.answer)) for a, e in zip(ans, examples))
               for name, ans in answers.items()}
    first = next(iter(SETTINGS))
    print(f"{first}: correct={correct[first]} " + " ".join(
        f"{name}: speedup={best[first] / best[name]:.2f} "
        f"same_texts={sum(a == b for a, b in zip(texts[first], texts[name]))}/{len(prompts)} "
        f"same_answers={sum(a == b for a, b in zip(answers[first], answers[name]))}/{len(prompts)} "
        f"correct={correct[name]}" for name in list(SETTINGS)[1:]))


if __name__ == "__main__":
    main()
