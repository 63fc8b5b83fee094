"""Top-p sampling from the likeliest tokens first (`elad.students.decoding.nucleus`), against generate's
warpers over the whole vocabulary (sort every row's logits, draw one random number per entry).

Writes the greedy + K sampled explanations of `--items` e-SNLI pool questions, as selection does, with
Qwen2.5-Coder-0.5B (the base model: round 1's student), both ways, alternated. The sampled texts are
different draws either way, so this compares time and how long the texts run, not the texts.

    nice .venv/bin/python -u bench/nucleus_sampling.py [--items 16] [--samples 3]

Last line: nucleus_speedup=<warpers s / nucleus s> tokens=<warpers>/<nucleus> (sampled tokens written)
"""

import argparse
import time

import torch


def warpers_next_tokens(logits, sample, temperature, top_p):
    """The next tokens as generate's sampling chooses them."""
    from transformers.generation import TemperatureLogitsWarper, TopPLogitsWarper

    if not sample:
        return logits.argmax(dim=-1)
    scores = TopPLogitsWarper(top_p)(None, TemperatureLogitsWarper(temperature)(None, logits.float()))
    return torch.multinomial(scores.softmax(dim=-1), num_samples=1).squeeze(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side, alternated")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from elad.config import StudentConfig, TaskConfig
    from elad.students import Student, decoding

    task = TaskConfig(name="esnli").open()
    pool = [task.prompt(e) for e in task.load("valid")[: args.items]]
    student = Student(StudentConfig(model="qwen2.5-coder-0.5b", max_new_tokens=args.max_new_tokens,
                                    generation_batch_size=48))
    ours = decoding.next_tokens

    def side(nucleus: bool):
        decoding.next_tokens = ours if nucleus else warpers_next_tokens
        started = time.perf_counter()
        explained = student.explain(pool, samples=args.samples, temperature=0.7, top_p=0.95, seed=0)
        seconds = time.perf_counter() - started
        tokens = sum(len(student.tokenizer(t, add_special_tokens=False)["input_ids"]) for e in explained for t in e[1:])
        print(f"{'nucleus' if nucleus else 'warpers'}: {len(pool)} x (1 + {args.samples}) in {seconds:.1f} s, "
              f"{tokens} sampled tokens", flush=True)
        return seconds, tokens

    runs = {True: [], False: []}
    for nucleus in (False, True) * args.repeats:
        runs[nucleus].append(side(nucleus))
    decoding.next_tokens = ours
    best = {side_: min(s for s, _ in rs) for side_, rs in runs.items()}
    print(f"nucleus_speedup={best[False] / best[True]:.2f} tokens={runs[False][0][1]}/{runs[True][0][1]}")


if __name__ == "__main__":
    main()
