"""Does a round's accuracy gain follow how many wrong teacher answers the round bought?

A strategy that buys hard items also buys more of the teacher's wrong answers (a recorded rationale that
ends in another answer than gold), and those teach the student a wrong answer. If that were what holds
a strategy back, a round's gain in test accuracy would fall with the number of wrong answers it bought.
This reads every run of the given grid folders and, over all their round-to-round steps after the seed
set, prints the correlation between a round's accuracy gain and the wrong answers it bought (with a
95% interval, Fisher z), the least-squares slope in points per wrong answer, and the spread of the gains.

    .venv/bin/python bench/label_noise.py bench/results/efficiency-v2-bf16/svamp/strategies
"""

import argparse
import math
import statistics

from elad.report.compare import load_runs, purchase_agreement


def round_steps(run) -> list[tuple[float, float]]:
    """(accuracy gain, wrong answers bought) for each round whose round before was evaluated."""
    rows = {int(r["round"]): r for r in run.rows if r.get("accuracy") is not None}
    shares = purchase_agreement(run)
    steps = []
    for round_, share in shares.items():
        now, before = rows.get(round_), rows.get(round_ - 1)
        if now is None or before is None or round_ < 2:  # round 1 is the seed set: every strategy's is the same
            continue
        bought = float(now["annotations"]) - float(before["annotations"])
        steps.append((float(now["accuracy"]) - float(before["accuracy"]), bought * (1 - share)))
    return steps


def correlation_interval(r: float, n: int) -> tuple[float, float]:
    """95% interval of a Pearson correlation from n pairs (Fisher z)."""
    z, half = math.atanh(max(min(r, 0.999999), -0.999999)), 1.96 / math.sqrt(n - 3)
    return math.tanh(z - half), math.tanh(z + half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="grid folders or run folders")
    args = parser.parse_args()
    steps = [step for run in load_runs(args.folders) for step in round_steps(run)]
    if len(steps) < 4:
        raise SystemExit(f"{len(steps)} round-to-round steps with teacher agreement stored: too few to correlate")
    gains, wrong = [s[0] for s in steps], [s[1] for s in steps]
    r = statistics.correlation(gains, wrong)
    low, high = correlation_interval(r, len(steps))
    slope = statistics.linear_regression(wrong, gains).slope
    print(f"{len(steps)} round-to-round steps; wrong teacher answers bought a round: "
          f"mean {statistics.fmean(wrong):.1f}, from {min(wrong):.0f} to {max(wrong):.0f}")
    print(f"accuracy gain a round: mean {100 * statistics.fmean(gains):+.1f} points, "
          f"std {100 * statistics.stdev(gains):.1f}, from {100 * min(gains):+.1f} to {100 * max(gains):+.1f}")
    print(f"correlation of gain with wrong answers bought: {r:+.2f} (95% CI {low:+.2f} to {high:+.2f}); "
          f"slope {100 * slope:+.2f} points per wrong answer")


if __name__ == "__main__":
    main()
