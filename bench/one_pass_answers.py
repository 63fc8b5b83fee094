"""The answers EGSS reads, in one pass or in two.

EGSS reads two things of a pool item beyond its explanations: the student's answer after each step of its
greedy explanation (`Student.answer_scores`), and its answer forced after each of its 1 + K explanations
(`Student.final_answers`). Both start from the same prompt, and the greedy explanation's end is the last
of its step prefixes, so `Student.step_and_final_answers` reads them in one pass: the prompt and the
greedy explanation once instead of twice. This times both ways on the explanations a run stored for one
round (the real texts a trained student wrote), with the adapter that wrote them, alternated, the faster
of each side's times counting, and compares the distributions.

    nice .venv/bin/python -u bench/one_pass_answers.py --run RUN_DIR --round 2 [--items 64]

Last line: one_pass_speedup=<two passes s / one pass s> two_pass_s=... one_pass_s=... max_diff=<largest
difference of a probability> same_answers=<n>/<m>
"""

import argparse
import sqlite3
import time
from pathlib import Path

import torch


def stored_explanations(run: Path, round_: int, items: int) -> dict[str, list[str]]:
    """example id -> the round's pool explanations of it (greedy first), for the first `items` items."""
    with sqlite3.connect(run / "run.db") as db:
        rows = db.execute("SELECT example_id, sample, text FROM explanations WHERE round = ? AND role = 'pool' "
                          "ORDER BY example_id, sample", (round_,)).fetchall()
    texts: dict[str, list[str]] = {}
    for example_id, _, text in rows:
        texts.setdefault(example_id, []).append(text)
    return dict(list(texts.items())[:items])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a run directory with pool explanations stored")
    parser.add_argument("--round", type=int, default=2, help="whose explanations: round r's, by round r-1's adapter")
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side, alternated")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from elad.config import parse_config
    from elad.loop.build import splits
    from elad.loop.explain import reasoning_steps
    from elad.students import Student

    config = parse_config((args.run / "config.yaml").read_text())
    task = config.task.open()
    texts = stored_explanations(args.run, args.round, args.items)
    by_id = {e.id: e for e in task.load(splits(config, task)[0])}
    examples = [by_id[i] for i in texts]
    prompts = [task.prompt(e) for e in examples]
    steps = [[reasoning_steps(t) for t in texts[e.id]] for e in examples]
    candidates = [task.candidates(e) for e in examples]
    student = Student(config.student)
    if args.round > 1:
        student.load_adapter(args.run / "rounds" / str(args.round - 1) / "adapter")

    def two_passes():
        prefixes = student.answer_scores(prompts, [s[0] for s in steps], candidates, parse=task.parse_answer)
        return prefixes, student.final_answers(prompts, steps, candidates, parse=task.parse_answer)

    def one_pass():
        return student.step_and_final_answers(prompts, steps, candidates, parse=task.parse_answer)

    seconds: dict[str, list[float]] = {"two": [], "one": []}
    results = {}
    for name, call in (("two", two_passes), ("one", one_pass)) * args.repeats:
        started = time.perf_counter()
        results[name] = call()
        seconds[name].append(time.perf_counter() - started)
        print(f"{name} pass(es): {seconds[name][-1]:.1f} s", flush=True)
    pairs = [(a, b) for side_a, side_b in zip(results["two"], results["one"])
             for per_a, per_b in zip(side_a, side_b) for a, b in zip(per_a, per_b)]
    max_diff = max(abs(a[k] - b.get(k, 0.0)) for a, b in pairs for k in a)
    same = sum(max(a, key=a.get) == max(b, key=b.get) for a, b in pairs)
    tokens = sum(student.count_tokens(t) for per_item in texts.values() for t in per_item)
    print(f"{len(examples)} items, {sum(len(t) for t in texts.values())} explanations ({tokens} tokens), "
          f"{sum(len(s[0]) for s in steps) / len(steps):.1f} steps in a greedy one on average")
    two, one = min(seconds["two"]), min(seconds["one"])
    print(f"one_pass_speedup={two / one:.2f} two_pass_s={two:.1f} one_pass_s={one:.1f} max_diff={max_diff:.2g} "
          f"same_answers={same}/{len(pairs)}")


if __name__ == "__main__":
    main()
