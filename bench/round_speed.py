"""One benchmark round of active distillation, timed on an older elad and on this checkout.

The round: e-SNLI (validation split as the pool, 500 test items), Qwen2.5-Coder-0.5B with LoRA r=16, EGSS
on a pool sample of 64 with K = 3 samples, 32 replayed PaLM-540B rationales, CoT training (2 epochs),
evaluation by the answer parsed from the student's greedy explanation; seed 0. Each side runs with its
own defaults for what the setting leaves open (e.g. generation_batch_size). The older code (default:
commit 16ebec2) runs from a temporary git worktree, the new code from `src/`, each as `elad run` in a
child process, one after the other, with the same config and the same Python environment.

Stage times come from the new code's run store (`seconds_<stage>` metrics); the old code records only the
round's total. same_outputs counts the test items whose greedy explanation is the same text in both runs.

    nice .venv/bin/python -u bench/round_speed.py                      # both sides, about 80 min on 2 cores
    nice .venv/bin/python -u bench/round_speed.py --reuse-old          # the old side from its saved result
    nice .venv/bin/python -u bench/round_speed.py --test-size 100 --pool-sample 16 --per-round 8  # smaller

Results (with each side's explanations) are saved under bench/results/round_speed/. Last line:
round_speedup=<old/new> round_s=<new> explain_s=... score_s=... train_s=... eval_s=... same_outputs=<n>/<m>
"""

import argparse
import hashlib
import json
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
RESULTS = REPO / "bench" / "results" / "round_speed"
RUN_ELAD = "import sys; from elad.cli import app; sys.argv[0] = 'elad'; app()"


def round_config(args) -> dict:
    """The benchmark round, in keys that the old code knows too."""
    return {
        "name": "round-speed",
        "seed": 0,
        "task": {"name": "esnli", "path": str(args.data), "pool_split": "valid", "test_split": "test",
                 "pool_size": 1000, "test_size": args.test_size},
        # generation_batch_size left to each side's default (16 before, 96 now): what a user gets
        "student": {"model": args.model, "max_new_tokens": 64, "lora": {"r": 16, "alpha": 32}},
        "training": {"objective": "cot", "epochs": 2, "learning_rate": 5e-4, "batch_size": 8, "max_length": 256},
        "selection": {"strategy": "egss", "samples": 3, "pool_sample": args.pool_sample},
        "teacher": {"backend": "replay", "model": "palm-540b", "source": "dsbs"},
        "annotation": {"method": "cot"},
        "loop": {"rounds": 1, "per_round": args.per_round, "evaluate_initial": False},
    }


def run_side(src: Path, config: dict, folder: Path) -> dict:
    """`elad run` of the code under `src` in a child process; its wall time, stage times and outputs."""
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(src)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", RUN_ELAD, "run", str(config_path), "--run-dir", str(folder / "run")],
                   env=env, check=True, cwd=folder)
    wall = time.perf_counter() - started
    with sqlite3.connect(folder / "run" / "run.db") as db:
        metrics = {name: value for name, value in db.execute(
            "SELECT name, value FROM metrics WHERE round = 1 AND split IN ('stages', 'teacher', 'test')")}
        texts = dict(db.execute("SELECT example_id, text FROM explanations WHERE round = 1 AND role = 'test' "
                                "AND sample = 0"))
    return {"wall_s": wall, "round_s": metrics["seconds"], "metrics": metrics, "test_texts": texts}


def checked_out(commit: str) -> tuple[Path, callable]:
    """A temporary worktree of `commit` and the function that removes it."""
    folder = Path(tempfile.mkdtemp(prefix="elad-old-"))
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), commit], check=True,
                   capture_output=True)

    def remove():
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(folder)], check=False,
                       capture_output=True)

    return folder, remove


def cpu_label() -> str:
    """'' on a CPU that emulates bf16 (both sides run fp32), '-bf16cpu' where `dtype: auto` picks bf16: a
    saved side is only comparable with a side run on the same kind of CPU."""
    flags = Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else ""
    return "-bf16cpu" if ("avx512_bf16" in flags or "amx_bf16" in flags) else ""


def saved_path(commit: str, config: dict) -> Path:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    return RESULTS / f"{commit}-{digest}{cpu_label()}.json"


def old_side(args, config: dict, scratch: Path) -> dict:
    saved = saved_path(args.old, config)
    if args.reuse_old and saved.exists():
        print(f"old side: {saved} (saved)", flush=True)
        return json.loads(saved.read_text())
    worktree, remove = checked_out(args.old)
    try:
        print(f"old side: {args.old}", flush=True)
        result = run_side(worktree / "src", config, scratch / "old")
    finally:
        remove()
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(result, indent=1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default="16ebec2", help="the commit to compare against")
    parser.add_argument("--reuse-old", action="store_true", help="reuse the old side's saved result if any")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--pool-sample", type=int, default=64)
    parser.add_argument("--per-round", type=int, default=32)
    parser.add_argument("--keep", type=Path, help="keep both run directories here")
    args = parser.parse_args()
    config = round_config(args)
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="elad-round-speed-"))

    old = old_side(args, config, scratch)
    print("new side: this checkout", flush=True)
    new = run_side(REPO / "src", config, scratch / "new")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    saved_path(f"new-{commit}", config).write_text(json.dumps(new, indent=1))

    same = sum(new["test_texts"].get(i) == text for i, text in old["test_texts"].items())
    stage = new["metrics"]
    print(f"old round {old['round_s']:.0f} s, accuracy {old['metrics'].get('accuracy', 0):.3f}; "
          f"new round {new['round_s']:.0f} s, accuracy {stage.get('accuracy', 0):.3f}")
    print(f"new stages: select {stage.get('seconds_select', 0):.0f} s (explain {stage.get('seconds_explain', 0):.0f}, "
          f"score {stage.get('seconds_score', 0):.0f}), annotate {stage.get('seconds_annotate', 0):.0f}, "
          f"train {stage.get('seconds_train', 0):.0f}, evaluate {stage.get('seconds_evaluate', 0):.0f}")
    print(f"round_speedup={old['round_s'] / new['round_s']:.2f} round_s={new['round_s']:.0f} "
          f"explain_s={stage.get('seconds_explain', 0):.0f} score_s={stage.get('seconds_score', 0):.0f} "
          f"train_s={stage.get('seconds_train', 0):.0f} eval_s={stage.get('seconds_evaluate', 0):.0f} "
          f"same_outputs={same}/{len(old['test_texts'])}")


if __name__ == "__main__":
    main()
