"""How fast the student engine is against the plain ways, every ratio measured in this one run.

1. explain_speedup: explanations per second of Student.explain (greedy + K samples per question,
   batched) over a plain per-question loop (one generate call per explanation, one sequence each).
2. prefix_scoring_ratio: the time Student.answer_scores takes to score the answer after every step
   prefix of the greedy explanations (one tree-masked forward pass per batch), over the time generating
   those explanations took (batched greedy). Target <= 0.5. For reference, naive_prefix_ratio: one
   teacher-forced forward pass per prefix (candidates batched), and generate_per_prefix ~ mean steps + 1.
3. train_tokens_ratio: training tokens per second of Student.train (target-only logits, length-grouped
   batches) over the plain Hugging Face Trainer (the model's own loss, random batches) on the same
   model, LoRA config, data and batch size.

    nice -n 19 .venv/bin/python bench/student_speed.py [--model smollm2-135m] [--questions 16] [--samples 4]

Last line: explain_speedup=... prefix_scoring_ratio=... train_tokens_ratio=...
"""

import argparse
import os
import tempfile
import time

import torch

from elad.config import StudentConfig, TrainingConfig
from elad.students import Student
from elad.students.common import TrainRecord
from elad.students.training import PadCollator, _ListDataset, training_arguments
from elad.tasks import TASKS
from elad.tasks.base import ANSWER_CUE
from elad.tasks.steps import split_steps


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def bench_explain(student: Student, prompts: list[str], samples: int) -> dict:
    def plain_loop():
        out = []
        for prompt in prompts:
            texts = student.generate([prompt])
            texts += [student.generate([prompt], sample=True, temperature=0.7, top_p=0.95, seed=j)[0] for j in range(samples)]
            out.append(texts)
        return out

    ours, t_ours = timed(lambda: student.explain(prompts, samples=samples, temperature=0.7, top_p=0.95, seed=0))
    _, t_plain = timed(plain_loop)
    count = len(prompts) * (1 + samples)
    print(f"explain: {count} explanations; batched explain {t_ours:.1f} s ({count / t_ours:.2f}/s), "
          f"per-question generate loop {t_plain:.1f} s ({count / t_plain:.2f}/s)")
    return {"explain_speedup": t_plain / t_ours, "explanations": ours}


def bench_prefix_scoring(student: Student, prompts: list[str], candidates) -> dict:
    greedy, t_generate = timed(lambda: student.generate(prompts))
    steps = [split_steps(text) for text in greedy]
    _, t_score = timed(lambda: student.answer_scores(prompts, steps, [candidates] * len(prompts)))

    @torch.inference_mode()
    def naive():  # one forward pass per prefix; the candidates of a prefix in one batch
        student.tokenizer.padding_side = "right"
        for prompt, item_steps in zip(prompts, steps):
            rendered = student.render_prompt(prompt)
            for i in range(len(item_steps) + 1):
                texts = [rendered + "\n".join(item_steps[:i] + [ANSWER_CUE]) + " " + c for c in candidates]
                batch = student.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
                student.model(**batch.to(student.device))

    _, t_naive = timed(naive)
    mean_steps = sum(len(s) for s in steps) / len(steps)
    print(f"prefix scoring: {len(prompts)} greedy explanations, {mean_steps:.1f} steps on average; generating them "
          f"{t_generate:.1f} s; answer_scores over all {sum(len(s) + 1 for s in steps)} prefixes {t_score:.2f} s; "
          f"one forward per prefix {t_naive:.2f} s")
    return {"prefix_scoring_ratio": t_score / t_generate, "naive_prefix_ratio": t_naive / t_generate,
            "generate_per_prefix": mean_steps + 1}


def bench_training(student: Student, records: list[TrainRecord], settings: TrainingConfig) -> dict:
    from peft import LoraConfig, get_peft_model
    from transformers import PrinterCallback, Trainer

    features = student.features(records, settings)
    tokens = sum(len(f["input_ids"]) for f in features) * int(settings.epochs)

    def plain():
        student.reset()
        torch.manual_seed(0)
        lora = student.config.lora
        model = get_peft_model(student.model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                         target_modules=lora.target_modules, task_type="CAUSAL_LM"))
        with tempfile.TemporaryDirectory() as scratch:
            args = training_arguments(scratch, settings, seed=0, mixed_bf16=False)
            trainer = Trainer(model=model, args=args, train_dataset=_ListDataset(features),
                              data_collator=PadCollator(student.tokenizer.pad_token_id))
            trainer.remove_callback(PrinterCallback)
            trainer.train()

    warm = student.features(records[:2], settings)  # one step each way first: kernels warmed for both
    batch = PadCollator(student.tokenizer.pad_token_id)(warm)
    student.model(**batch).loss.backward()
    student.model.zero_grad(set_to_none=True)
    _, t_plain = timed(plain)
    report, t_ours = timed(lambda: student.train(records, settings, seed=0))
    print(f"training: {len(records)} examples, {tokens} tokens, batch {settings.batch_size}; Student.train "
          f"{t_ours:.1f} s ({tokens / t_ours:.0f} tokens/s, {report.steps} steps), plain Trainer {t_plain:.1f} s "
          f"({tokens / t_plain:.0f} tokens/s)")
    return {"train_tokens_ratio": t_plain / t_ours, "train_tokens_per_s": tokens / t_ours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--train-examples", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.manual_seed(0)
    task = TASKS.create("esnli")
    questions = task.load("test")[: args.questions]
    prompts = [task.prompt(e) for e in questions]
    student = Student(StudentConfig(model=args.model, max_new_tokens=args.max_new_tokens, generation_batch_size=16,
                                    threads=args.threads))
    print(f"model {args.model}, {student.dtype}, {torch.get_num_threads()} threads, device {student.device}; "
          f"load average at start {os.getloadavg()[0]:.2f} (other processes skew every timing)")
    student.generate(prompts[:2], max_new_tokens=4)  # warm-up
    results = bench_explain(student, prompts, args.samples)
    results.update(bench_prefix_scoring(student, prompts, task.candidates(questions[0])))
    pool = [e for e in task.load("valid") if e.rationale][: args.train_examples]
    records = [TrainRecord(prompt=task.prompt(e), target=task.target(e.rationale, e.answer)) for e in pool]
    results.update(bench_training(student, records, TrainingConfig(epochs=1, batch_size=4)))
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    print(f"naive_prefix_ratio={results['naive_prefix_ratio']:.2f} generate_per_prefix={results['generate_per_prefix']:.1f} "
          f"train_tokens_per_s={results['train_tokens_per_s']:.0f}")
    print(f"explain_speedup={results['explain_speedup']:.2f} prefix_scoring_ratio={results['prefix_scoring_ratio']:.3f} "
          f"train_tokens_ratio={results['train_tokens_ratio']:.2f}")


if __name__ == "__main__":
    main()
