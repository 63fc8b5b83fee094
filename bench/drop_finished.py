"""Decoding with finished sequences dropped from the batch, against `model.generate` keeping them.

`model.generate` computes every row of a batch until its longest sequence ends; elad's transformers engine
drops each row as it writes its end token (`elad.students.decoding`). This writes the same e-SNLI
explanations both ways with a trained Qwen2.5-Coder-0.5B student: greedy ones of test questions (as
evaluation does), and greedy + K sampled ones of pool questions (as selection does). Each side runs twice,
alternated, and the faster of its times counts.

    .venv/bin/elad demo                                   # or any run: a round's LoRA adapter
    nice .venv/bin/python -u bench/drop_finished.py --adapter runs/demo/rounds/1/adapter [--items 96]

Last line: drop_speedup_eval=<generate s / drop s> drop_speedup_explain=<...> same_greedy=<n>/<m>
same_answers=<n>/<m> correct=<generate>/<drop> tokens=<new tokens written> rows_steps=<used>/<kept>
"""

import argparse
import time
from pathlib import Path

import torch


def timed(call):
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, required=True, help="a round's LoRA adapter (rounds/<r>/adapter)")
    parser.add_argument("--items", type=int, default=96, help="test questions explained greedily")
    parser.add_argument("--pool-items", type=int, default=32, help="pool questions explained greedily + K times")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side, alternated")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from elad.config import StudentConfig, TaskConfig
    from elad.students import Student, generation

    task = TaskConfig(name="esnli").open()
    examples = task.load("test")[: args.items]
    prompts = [task.prompt(e) for e in examples]
    pool = [task.prompt(e) for e in task.load("valid")[: args.pool_items]]
    student = Student(StudentConfig(model="qwen2.5-coder-0.5b", lora={"r": 16, "alpha": 32},
                                    max_new_tokens=args.max_new_tokens, generation_batch_size=48))
    student.load_adapter(args.adapter)
    real_plain = generation.plain_decoding

    def side(drop: bool):
        generation.plain_decoding = real_plain if drop else (lambda model: False)
        greedy, eval_s = timed(lambda: student.generate(prompts))
        explained, explain_s = timed(lambda: student.explain(pool, samples=args.samples, temperature=0.7,
                                                             top_p=0.95, seed=0))
        return greedy, explained, eval_s, explain_s

    runs = {True: [], False: []}
    for drop in (False, True) * args.repeats:
        runs[drop].append(side(drop))
        greedy, _, eval_s, explain_s = runs[drop][-1]
        print(f"{'drop' if drop else 'generate'}: evaluate {len(prompts)} in {eval_s:.1f} s, "
              f"explain {len(pool)} x {1 + args.samples} in {explain_s:.1f} s")
    generation.plain_decoding = real_plain
    best = {drop: (min(r[2] for r in rs), min(r[3] for r in rs)) for drop, rs in runs.items()}
    kept, dropped = runs[False][0][0], runs[True][0][0]
    answers = [[task.parse_answer(t) for t in texts] for texts in (kept, dropped)]
    correct = [sum(bool(task.is_correct(a, e.answer)) for a, e in zip(side_, examples)) for side_ in answers]
    # rows x steps a kept batch computes against those a dropping one does (batches go longest prompt first)
    order = sorted(range(len(prompts)), key=lambda i: -len(student.render_prompt(prompts[i])))
    lengths = [min(args.max_new_tokens, len(student.tokenizer(dropped[i], add_special_tokens=False)["input_ids"]) + 1)
               for i in order]
    steps = sum(max(lengths[i: i + 48]) * len(lengths[i: i + 48]) for i in range(0, len(lengths), 48))
    print(f"drop_speedup_eval={best[False][0] / best[True][0]:.2f} "
          f"drop_speedup_explain={best[False][1] / best[True][1]:.2f} "
          f"same_greedy={sum(a == b for a, b in zip(kept, dropped))}/{len(kept)} "
          f"same_answers={sum(a == b for a, b in zip(*answers))}/{len(kept)} correct={correct[0]}/{correct[1]} "
          f"tokens={sum(lengths)} rows_steps={sum(lengths)}/{steps}")


if __name__ == "__main__":
    main()
