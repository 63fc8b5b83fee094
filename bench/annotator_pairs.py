"""CoT against CLEAR at equal teacher tokens, paired per seed and per test item.

The benchmark's annotators part runs both annotators on the same questions per seed (random selection,
same seed set), but CLEAR pays more tokens per annotation, so its first round already costs about what
CoT's whole run does and the area under the curve has no common stretch to average over. This compares
each CLEAR round with the CoT round of the same seed whose spend is nearest (within 20%), and with CoT's
round of the same annotation count, on the same test items:

- per seed: accuracy difference (points) and the tokens each paid;
- over seeds: the mean difference with its 95% t-interval;
- over items (all seeds pooled): how many items only CLEAR's student gets right, how many only CoT's,
  and the paired difference with a 95% normal interval of the per-item differences;
- what CLEAR's annotations were (revised, or CoT's fallback and why) and how often each ends with the
  gold answer, beside CoT's on the same questions.

    .venv/bin/python bench/keep_runs.py restore runs/efficiency-v2-bf16 bench/results/efficiency-v2-bf16
    .venv/bin/python bench/annotator_pairs.py runs/efficiency-v2-bf16/svamp/annotators
"""

import argparse
import json
import math
import statistics
from pathlib import Path

from elad.config import load_config
from elad.report.compare import load_runs
from elad.stats import mean_interval
from elad.store.db import RunStore


TOLERANCE = 0.2  # a CoT round pairs with a CLEAR round when their spends differ by at most this share


def test_correct(path: Path, round_: int) -> dict[str, bool]:
    """example id -> whether the student of that round answered the test item right (greedy, sample 0)."""
    store = RunStore(path / "run.db", readonly=True)
    try:
        return {row["example_id"]: bool(row["correct"]) for row in store.explanations(round_, "test")
                if row["sample"] == 0}
    finally:
        store.close()


def finished_rounds(run) -> dict[int, dict]:
    return {int(r["round"]): r for r in run.evaluated if run.states.get(int(r["round"])) == "done"}


def nearest(rounds: dict[int, dict], key: str, value: float) -> int:
    return min(rounds, key=lambda round_: abs(float(rounds[round_][key] or 0) - value))


def item_interval(diffs: list[int]) -> tuple[float, float]:
    """Mean of per-item differences (-1, 0, +1) and the half-width of its 95% normal interval."""
    mean = statistics.fmean(diffs)
    return mean, 1.96 * statistics.stdev(diffs) / math.sqrt(len(diffs))


def compare(pairs, match: str) -> None:
    """Print CLEAR's rounds against CoT's round matched on `match` (teacher_tokens or annotations)."""
    print(f"\nCLEAR against CoT at the nearest {match.replace('_', ' ')}:")
    per_round: dict[int, dict] = {}
    for seed, (cot, clear) in sorted(pairs.items()):
        cot_rounds, clear_rounds = finished_rounds(cot), finished_rounds(clear)
        for round_, row in sorted(clear_rounds.items()):
            if not cot_rounds:
                continue
            other = nearest(cot_rounds, match, float(row[match] or 0))
            if abs(float(cot_rounds[other][match] or 0) / float(row[match] or 1) - 1) > TOLERANCE:
                continue  # no CoT round spent about as much: nothing to pair it with
            mine, theirs = test_correct(clear.path, round_), test_correct(cot.path, other)
            shared = sorted(set(mine) & set(theirs))
            diffs = [int(mine[i]) - int(theirs[i]) for i in shared]
            slot = per_round.setdefault(round_, {"seeds": [], "items": []})
            slot["seeds"].append(100 * statistics.fmean(diffs))
            slot["items"].extend(diffs)
            print(f"  seed {seed}: CLEAR round {round_} ({row['annotations']:.0f} annotations, "
                  f"{row['teacher_tokens']:,.0f} tokens) {100 * row['accuracy']:.1f}% vs CoT round {other} "
                  f"({cot_rounds[other]['annotations']:.0f}, {cot_rounds[other]['teacher_tokens']:,.0f}) "
                  f"{100 * cot_rounds[other]['accuracy']:.1f}% on {len(shared)} items: "
                  f"{100 * statistics.fmean(diffs):+.1f} points")
    for round_, slot in sorted(per_round.items()):
        mean, half = mean_interval(slot["seeds"])
        items = slot["items"]
        item_mean, item_half = item_interval(items) if len(items) > 1 else (statistics.fmean(items), float("nan"))
        seeds_text = f"{mean:+.1f}" + (f" ± {half:.1f}" if half is not None else " (one seed)")
        print(f"  CLEAR round {round_}: over {len(slot['seeds'])} seeds {seeds_text} points; over "
              f"{len(items)} items {100 * item_mean:+.1f} ± {100 * item_half:.1f} "
              f"(only CLEAR right {items.count(1)}, only CoT right {items.count(-1)})")


def annotations(path: Path) -> list[dict]:
    store = RunStore(path / "run.db", readonly=True)
    try:
        return store.annotations()
    finally:
        store.close()


def pool_examples(path: Path) -> dict[str, dict]:
    """The run's pool questions (stored rows) by id."""
    store = RunStore(path / "run.db", readonly=True)
    try:
        return {i: store.example(i) for i in store.example_ids("pool")}
    finally:
        store.close()


def outcomes(pairs, task) -> None:
    """Per seed: CLEAR's outcomes, each with how many of its annotations end in the gold answer and how
    many of CoT's annotations of the same questions do."""
    print("\nWhat the annotations were (right = the teacher's answer is gold; CoT: on the same questions):")
    for seed, (cot, clear) in sorted(pairs.items()):
        gold = {i: row["answer"] for i, row in pool_examples(clear.path).items()}
        cot_right = {r["example_id"]: bool(task.is_correct(r["answer"], gold[r["example_id"]]))
                     for r in annotations(cot.path)}
        counts: dict[str, list[int]] = {}  # outcome -> [items, CLEAR right, CoT right]
        first_wrong: dict[int, int] = {}
        for row in annotations(clear.path):
            details = json.loads(row["details"])
            kind = details.get("outcome", "?")
            if kind == "revised":
                first_wrong[details.get("first_wrong")] = first_wrong.get(details.get("first_wrong"), 0) + 1
            else:
                kind += f" ({details.get('fallback_reason', '?')})"
            slot = counts.setdefault(kind, [0, 0, 0])
            slot[0] += 1
            slot[1] += bool(task.is_correct(row["answer"], gold[row["example_id"]]))
            slot[2] += cot_right.get(row["example_id"], False)
        print(f"  seed {seed}: CoT {sum(cot_right.values())}/{len(cot_right)} right; CLEAR "
              f"{sum(c[1] for c in counts.values())}/{sum(c[0] for c in counts.values())} right")
        for kind, (items, right, cot_same) in sorted(counts.items(), key=lambda kv: -kv[1][0]):
            print(f"    {items:3d} {kind}: CLEAR {right} right, CoT {cot_same}")
        print("    revised items by the first step judged wrong: "
              + ", ".join(f"step {k}: {v}" for k, v in sorted(first_wrong.items(), key=lambda kv: str(kv[0]))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="the annotators part's folder (cot and clear runs of the same seeds)")
    args = parser.parse_args()
    runs = load_runs([args.folder])
    by_seed: dict[int, dict[str, object]] = {}
    for run in runs:
        by_seed.setdefault(run.seed, {})[run.annotator] = run
    pairs = {seed: (both["cot"], both["clear"]) for seed, both in by_seed.items() if {"cot", "clear"} <= set(both)}
    if not pairs:
        raise SystemExit(f"{args.folder}: no seed with both a cot and a clear run")
    compare(pairs, "teacher_tokens")
    compare(pairs, "annotations")
    outcomes(pairs, load_config(runs[0].path / "config.yaml").task.open())


if __name__ == "__main__":
    main()
