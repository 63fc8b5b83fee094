"""The task's instruction before the question or after it: what it does to the student's speed and accuracy.

With the instruction first, every student prompt opens with the same text, which generation computes once
per batch (`students.generation.shared_prefix`); with it last, only the chat template's opening is shared.

1. Speed, in one process: greedy explanations of the same test items by the untrained student in both
   layouts, alternated (question-first, instruction-first, twice), so that other work on the machine
   weighs on both alike. layout_speedup = seconds question-first / seconds instruction-first.
2. Accuracy: one round per layout (a random seed set from the pool, replayed PaLM-540B rationales, CoT
   training), the same seed, items and annotations; test accuracy before and after training, paired.

    nice .venv/bin/python -u bench/prompt_layout.py                 # e-SNLI, 200 test items: ~40 min on 2 cores
    nice .venv/bin/python -u bench/prompt_layout.py --test-size 48 --speed-items 16   # a quick look
    nice .venv/bin/python -u bench/prompt_layout.py --seed 1 --speed-items 0 --no-untrained   # another seed

Last line: layout_speedup=... prefix_tokens=<question-first>-><instruction-first> untrained=<a>-><b>
trained=<a>-><b> paired_diff=<b - a> +/- <95% half-width> same_answers=<n>/<m>
"""

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "dsbs-rationales" / "esnli"
RUN_ELAD = "import sys; from elad.cli import app; sys.argv[0] = 'elad'; app()"


def round_config(args, instruction_first: bool) -> dict:
    return {
        "name": "prompt-layout",
        "seed": args.seed,
        "task": {"name": "esnli", "path": str(args.data), "pool_split": "valid", "test_split": "test",
                 "pool_size": 1000, "test_size": args.test_size, "instruction_first": instruction_first},
        "student": {"model": args.model, "max_new_tokens": 64, "lora": {"r": 16, "alpha": 32}},
        "training": {"objective": "cot", "epochs": 2, "learning_rate": 5e-4, "batch_size": 8, "max_length": 256},
        "selection": {"strategy": "random"},
        "teacher": {"backend": "replay", "model": "palm-540b", "source": "dsbs"},
        "annotation": {"method": "cot"},
        "loop": {"rounds": 1, "per_round": args.per_round, "evaluate_initial": args.untrained},
    }


def speed(args) -> tuple[float, float, int, int]:
    """Seconds for greedy explanations of the same items, question-first then instruction-first (each the
    sum of two alternated passes), and the tokens each layout's prompts share."""
    import torch

    from elad.config import StudentConfig, TaskConfig
    from elad.students import Student
    from elad.students.generation import shared_prefix

    student = Student(StudentConfig(model=args.model, max_new_tokens=64))
    seconds, prefix = [0.0, 0.0], [0, 0]
    for _ in range(2):
        for side, first in enumerate((False, True)):
            task = TaskConfig(name="esnli", path=str(args.data), instruction_first=first).open()
            prompts = [task.prompt(e) for e in task.load("test")[: args.speed_items]]
            rendered = [student.render_prompt(p) for p in prompts]
            prefix[side] = shared_prefix([student.prompts.ids(r) for r in rendered])
            started = time.perf_counter()
            with torch.inference_mode():
                student.generate(prompts)
            seconds[side] += time.perf_counter() - started
    return seconds[0], seconds[1], prefix[0], prefix[1]


def run_round(config: dict, folder: Path) -> dict:
    """`elad run` in a child process; accuracy before and after, and each test item's parsed answer."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    subprocess.run([sys.executable, "-c", RUN_ELAD, "run", str(path), "--run-dir", str(folder / "run")],
                   env=env, check=True, cwd=folder)
    with sqlite3.connect(folder / "run" / "run.db") as db:
        accuracy = dict(db.execute("SELECT round, value FROM metrics WHERE split = 'test' AND name = 'accuracy'"))
        rows = db.execute("SELECT example_id, answer, correct FROM explanations WHERE round = 1 AND role = 'test' "
                          "AND sample = 0").fetchall()
    answers, right = {i: a for i, a, _ in rows}, {i: bool(c) for i, _, c in rows}
    return {"untrained": accuracy.get(0), "trained": accuracy.get(1), "right": right, "answers": answers}


def paired(a: dict, b: dict) -> tuple[float, float]:
    """Mean of b - a over the shared items (1 right, 0 wrong) and its 95% half-width (normal)."""
    diffs = [int(b[i]) - int(a[i]) for i in a if i in b]
    mean = sum(diffs) / len(diffs)
    variance = sum((d - mean) ** 2 for d in diffs) / max(1, len(diffs) - 1)
    return mean, 1.96 * (variance / len(diffs)) ** 0.5


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--test-size", type=int, default=200)
    parser.add_argument("--per-round", type=int, default=32)
    parser.add_argument("--speed-items", type=int, default=48, help="0: accuracy only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-untrained", dest="untrained", action="store_false",
                        help="skip the untrained student's accuracy (the paired difference reads the trained ones)")
    parser.add_argument("--keep", type=Path, help="keep both run directories here")
    args = parser.parse_args()
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="elad-prompt-layout-"))

    last_s, first_s, last_prefix, first_prefix = speed(args) if args.speed_items else (float("nan"),) * 2 + (0, 0)
    print(f"greedy explanations of {args.speed_items} items, twice: question-first {last_s:.0f} s "
          f"(shared prefix {last_prefix} tokens), instruction-first {first_s:.0f} s ({first_prefix} tokens)",
          flush=True)
    sides = [run_round(round_config(args, first), scratch / name)
             for first, name in ((False, "question-first"), (True, "instruction-first"))]
    diff, half = paired(sides[0]["right"], sides[1]["right"])
    same = sum(sides[0]["answers"].get(i) == a for i, a in sides[1]["answers"].items())
    for name, side in zip(("question-first", "instruction-first"), sides):
        print(f"{name}: untrained {_share(side['untrained'])}, trained on {args.per_round} {side['trained']:.3f}")
    print(f"layout_speedup={last_s / first_s:.2f} prefix_tokens={last_prefix}->{first_prefix} "
          f"untrained={_share(sides[0]['untrained'])}->{_share(sides[1]['untrained'])} "
          f"trained={sides[0]['trained']:.3f}->{sides[1]['trained']:.3f} paired_diff={diff:+.3f} +/- {half:.3f} "
          f"same_answers={same}/{len(sides[1]['answers'])}")


if __name__ == "__main__":
    main()
