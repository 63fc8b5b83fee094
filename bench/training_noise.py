"""How much of a round's accuracy is the training seed: one finished round trained again under other seeds.

Strategies are compared by the student each round's annotations train. If training the same student on
the same annotations under another seed moves its accuracy by as much as two strategies differ, no
selection effect of that size can be seen in a few seeds, whatever the strategies buy. This reads a
finished run (its config, pool, test set and the annotations up to `--round`), trains the student on
exactly that round's training set under `--seeds` seeds, the run's own first, evaluates each on the
run's test set as the loop does (greedy, the generation length fitted to the annotations), and prints
each seed's accuracy, their spread, and the largest difference between two of them.

The run's own seed must give back the stored accuracy: it checks that this trains and evaluates as the
loop did (same code, same machine kind). When it does not, the other seeds' spread still measures the
noise, but not the stored run's.

    nice .venv/bin/python -u bench/training_noise.py bench/results/efficiency-v2-bf16/svamp/strategies/random-cot-s0 \\
        --round 4 --seeds 3
"""

import argparse
import statistics
import tempfile
from pathlib import Path

from elad.config import load_config
from elad.loop.build import load_questions
from elad.loop.evaluate import evaluate
from elad.loop.stages import round_seed, training_records
from elad.store import RunStore
from elad.students import Student
from elad.students.common import fitted_new_tokens

# Other seeds are far from any run's own (round_seed(seed, r) = seed * 1_000_003 + r).
OTHER_SEED_STEP = 7_919


def stored_accuracy(store: RunStore, round_: int) -> float | None:
    row = store.db.execute("SELECT value FROM metrics WHERE round = ? AND split = 'test' AND name = 'accuracy'",
                           (round_,)).fetchone()
    return row[0] if row else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished run's folder (config.yaml and run.db)")
    parser.add_argument("--round", type=int, required=True, help="the round whose training set is trained again")
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds, the run's own first")
    parser.add_argument("--start", type=int, default=0,
                        help="the first seed's index (0: the run's own); more seeds for a run measured before")
    args = parser.parse_args()

    config = load_config(args.run / "config.yaml")
    store = RunStore(args.run / "run.db", readonly=True)
    accuracy_then = stored_accuracy(store, args.round)
    if accuracy_then is None:
        raise SystemExit(f"{args.run}: round {args.round} has no test accuracy stored")
    task = config.task.open()
    pool, test, _ = load_questions(config, task)
    stored_test = {row[0] for row in store.db.execute("SELECT id FROM examples WHERE role = 'test'")}
    if stored_test != {e.id for e in test}:
        raise SystemExit(f"{args.run}: the config draws another test set than the run stored (other data files?)")
    annotations = store.annotations(up_to_round=args.round)
    records = training_records(task, pool, annotations)
    student = Student(config.student)
    if config.student.fit_new_tokens:
        student.max_new_tokens = fitted_new_tokens([student.count_tokens(a["target"]) for a in annotations],
                                                   config.student.new_tokens_cap)
    print(f"{args.run.name} round {args.round}: {len(records)} annotations, {len(test)} test items, "
          f"{student.max_new_tokens} new tokens; stored accuracy {accuracy_then:.1%}", flush=True)

    own = round_seed(config.seed, args.round)
    accuracies = []
    for k in range(args.start, args.start + args.seeds):
        seed = own + k * OTHER_SEED_STEP
        student.reset()
        with tempfile.TemporaryDirectory() as logs:
            report = student.train(records, config.training, seed=seed, log_dir=Path(logs))
        result = evaluate(student, task, test)
        accuracies.append(result.accuracy)
        note = " (the run's own seed)" if k == 0 else ""
        print(f"seed {seed}{note}: loss {report.loss:.3f}, accuracy {result.accuracy:.1%} "
              f"({result.correct}/{result.total})", flush=True)

    if args.start == 0:
        print(f"reproduces the stored accuracy: {'yes' if abs(accuracies[0] - accuracy_then) < 1e-9 else 'NO'}")
    if len(accuracies) > 1:
        spread = statistics.stdev(accuracies)
        # two cells whose training seeds differ carry this noise twice: their difference's std is sqrt(2) x
        print(f"accuracy over {len(accuracies)} seeds: mean {statistics.mean(accuracies):.1%}, std {spread:.1%} "
              f"(of a difference between two cells: {spread * 2 ** 0.5:.1%}), "
              f"largest difference {max(accuracies) - min(accuracies):.1%}")


if __name__ == "__main__":
    main()
