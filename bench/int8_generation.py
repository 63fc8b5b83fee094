"""Greedy generation with the student's linear layers in int8 (PyTorch dynamic quantization), against fp32.

On a CPU that emulates bf16, int8 matrix products (fbgemm) are the remaining way to cheaper arithmetic.
This swaps the base weights of every LoRA-wrapped linear layer of a trained Qwen2.5-Coder-0.5B student for
dynamically quantized int8 ones (per-channel weights, activations quantized per call; the adapter stays in
fp32), and writes the same greedy explanations of e-SNLI test questions both ways.

    .venv/bin/elad demo                                   # or any run: a round's LoRA adapter
    nice .venv/bin/python -u bench/int8_generation.py --adapter runs/demo/rounds/1/adapter [--items 48]

Last line: int8_speedup=<fp32 s / int8 s> same_texts=<n>/<m> same_answers=<n>/<m> correct=<fp32>/<int8>
"""

import argparse
import time
import warnings
from pathlib import Path

import torch


def quantize_base_layers(model, per_channel: bool) -> int:
    """Replace the base layer of every LoRA linear with an int8 dynamic one; how many were replaced."""
    import torch.ao.nn.quantized.dynamic as dynamic
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig

    replaced = 0
    for module in list(model.modules()):
        base = getattr(module, "base_layer", None)
        if isinstance(base, torch.nn.Linear):
            base.qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
            module.base_layer = dynamic.Linear.from_float(base)
            replaced += 1
    return replaced


def timed(student, prompts: list[str]) -> tuple[list[str], float]:
    started = time.perf_counter()
    texts = student.generate(prompts)
    return texts, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, required=True, help="a round's LoRA adapter (rounds/<r>/adapter)")
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--per-tensor", action="store_true", help="one weight scale per layer, not per channel")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.ao.quantization's notice

    from elad.config import StudentConfig, TaskConfig
    from elad.students import Student

    task = TaskConfig(name="esnli").open()
    examples = task.load("test")[: args.items]
    prompts = [task.prompt(e) for e in examples]
    student = Student(StudentConfig(model="qwen2.5-coder-0.5b", lora={"r": 16, "alpha": 32}, max_new_tokens=64,
                                    generation_batch_size=48))
    student.load_adapter(args.adapter)
    fp32, fp32_s = timed(student, prompts)
    replaced = quantize_base_layers(student.weights.model, per_channel=not args.per_tensor)
    int8, int8_s = timed(student, prompts)
    print(f"fp32 {fp32_s:.1f} s, int8 {int8_s:.1f} s ({replaced} layers)")
    answers = [[task.parse_answer(t) for t in texts] for texts in (fp32, int8)]
    correct = [sum(bool(task.is_correct(a, e.answer)) for a, e in zip(side, examples)) for side in answers]
    print(f"int8_speedup={fp32_s / int8_s:.2f} same_texts={sum(a == b for a, b in zip(fp32, int8))}/{len(fp32)} "
          f"same_answers={sum(a == b for a, b in zip(*answers))}/{len(fp32)} correct={correct[0]}/{correct[1]}")


if __name__ == "__main__":
    main()
