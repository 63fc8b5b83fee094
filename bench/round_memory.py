"""Does a round's training hold more memory in a process that has already generated and trained (as a
loop's process has from its second round on) than in a fresh one?

Each history runs in a fresh process on the same SVAMP questions with their recorded PaLM rationales
(LoRA, bf16 by default, batches of 8, 2 epochs, seed 0):

- fresh: train on `--items` items;
- after-inference: write explanations for `--pool` questions (a greedy one and 3 samples each, as
  selection does) and answer `--test` questions (as an evaluation does), then train;
- second-training: train, then the same inference, then train again (round 2 of a loop);
- second-training-own: the same, each training in a fresh process of its own (`training.own_process`).

Each reports the peak of the anonymous resident memory of the process and its children together (sampled
every 10 ms; weights included, model files mapped from disk not) in each phase, and the phase's wall time.
Linux with glibc.

    .venv/bin/python bench/round_memory.py --items 96

Last line: ratio = that history's training peak / the fresh one's (1.00 = history costs nothing), and its
training time / the fresh one's.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_peak import PeakWatch  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsbs-rationales" / "svamp"
HISTORIES = ("fresh", "after-inference", "second-training", "second-training-own")


def tree_anonymous_gb() -> float:
    """Anonymous resident memory of this process and its descendants (a training in its own process)."""
    total, pending = 0, [str(os.getpid())]
    while pending:
        pid = pending.pop()
        try:
            with open(f"/proc/{pid}/status") as status:
                total += next(int(line.split()[1]) for line in status if line.startswith("RssAnon"))
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending += (task / "children").read_text().split()
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue  # ended meanwhile
    return total / 1e6


def run_history(args) -> dict:
    from elad.config import StudentConfig, TaskConfig, TrainingConfig
    from elad.students import Student, training

    if args.whole:
        training.plain_head = lambda model: None  # every batch's whole logits
    student = Student(StudentConfig(model=args.student, dtype=args.dtype, lora={"r": 16, "alpha": 32},
                                    max_new_tokens=args.max_new_tokens))
    task = TaskConfig.model_validate({"name": "svamp", "path": str(DATA)}).open()
    examples = task.load("train")
    pairs = [(task.prompt(e), task.target(e.rationale, e.answer)) for e in examples[:args.items]]
    pool = [task.prompt(e) for e in examples[args.items:args.items + args.pool]]
    test = [task.prompt(e) for e in task.load("test")[:args.test]]
    settings = TrainingConfig(epochs=args.epochs, batch_size=8, max_length=384, learning_rate=5e-4,
                              own_process=args.one.endswith("-own"))
    phases = {}

    def measure(name, work):
        started = time.perf_counter()
        with PeakWatch(tree_anonymous_gb) as watch:
            work()
        phases[name] = {"peak_gb": round(watch.peak, 2), "seconds": round(time.perf_counter() - started, 1)}

    def train(name):
        measure(name, lambda: student.train(pairs, settings, seed=0))

    def infer(name):
        measure(name, lambda: (student.explain(pool, samples=3), student.generate(test)))

    if args.one.startswith("second-training"):
        train("first training")
    if args.one != "fresh":
        infer("inference")
    train("training")
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", default="qwen2.5-coder-0.5b")
    parser.add_argument("--dtype", default="bfloat16", choices=["auto", "bfloat16", "float32"])
    parser.add_argument("--items", type=int, default=96)
    parser.add_argument("--pool", type=int, default=64)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--whole", action="store_true", help="each batch's whole logits, not the loss in chunks")
    parser.add_argument("--histories", default=",".join(HISTORIES))
    parser.add_argument("--one", choices=HISTORIES, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_history(args)))
        return
    results = {}
    for name in args.histories.split(","):
        child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--one", name], capture_output=True,
                               text=True, check=True)
        results[name] = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{name}: {results[name]}", flush=True)
    if "fresh" in results:
        fresh = results["fresh"]["training"]["peak_gb"]
        fresh_s = results["fresh"]["training"]["seconds"]
        print(" ".join(f"{name}: ratio={r['training']['peak_gb'] / fresh:.2f} "
                       f"time_ratio={r['training']['seconds'] / fresh_s:.2f}" for name, r in results.items()))


if __name__ == "__main__":
    main()
