"""Teacher costs recounted for grid runs whose seed set came with another run's teacher cache.

Grids run before the fix copied a seed's first cell's whole teacher cache into every other cell of that
seed, with the replies the first cell bought in its later rounds. A later cell that bought one of those
items found it in the cache and was charged nothing, so its teacher calls, tokens and dollars per round
were too low (its selections, annotations and accuracies are unaffected where no token or dollar budget
bound: the cached reply is the very reply the teacher would have given).

This charges every cache hit that the run itself never paid for (no paid call of the run with the same
model, messages and completions), at the run's teacher prices, and rewrites the
`teacher` metrics of each round (`teacher_calls`, `teacher_tokens`, `teacher_dollars`, cumulative as
the loop writes them). Hits on the run's own purchases (a resumed round asking again) stay
free. Idempotent: run it again after more rounds finish, and after a recounted run resumes under the older
code (which writes its new rounds' totals without the charged hits). Prints, per run, the tokens before and
after. Only the metrics are rewritten: the calls themselves keep their `cache_hit` and dollars as booked.

    .venv/bin/python bench/recount_costs.py bench/results/efficiency-v2-bf16/esnli/strategies
"""

import argparse
import json
from pathlib import Path

from elad.config import load_config
from elad.report.compare import find_runs
from elad.store import RunDir, RunStore
from elad.teachers import price_for


def charged_calls(store: RunStore) -> list[dict]:
    """The run's calls that cost something, in call order: every paid call, and every cache hit on a reply
    the run never paid for."""
    calls = [dict(row) for row in store.db.execute("SELECT * FROM teacher_calls ORDER BY id")]
    # in any order: with concurrent requests a hit on another thread's reply can be booked before that
    # reply's paid call is
    paid = {_identity(call) for call in calls if not call["cache_hit"]}
    return [{**call, "foreign_hit": bool(call["cache_hit"])} for call in calls
            if not call["cache_hit"] or _identity(call) not in paid]


def _identity(call: dict) -> tuple[str, str, str]:
    """What a call is known by: the store keeps no sampling parameters, so two requests that differ only
    in them (a re-ask at a higher temperature) and got the same text count as one."""
    return call["model"], call["messages"], call["completions"]


def recount(run_dir: Path) -> tuple[int, int, int]:
    """Rewrite the run's per-round teacher metrics from its charged calls: (foreign hits, tokens before,
    tokens after) at its last round."""
    price = price_for(load_config(RunDir(run_dir).config_path).teacher)
    store = RunStore(RunDir(run_dir).store_path)
    try:
        calls = charged_calls(store)
        stored = {int(m["round"]): m["value"] for m in store.metrics()
                  if m["split"] == "teacher" and m["name"] == "teacher_tokens"}
        tokens = {}
        for round_ in sorted(stored):
            upto = [c for c in calls if c["round"] <= round_]
            tokens[round_] = sum(c["prompt_tokens"] + c["completion_tokens"] for c in upto)
            store.set_metrics(round_, "teacher", {
                "teacher_calls": len(upto), "teacher_tokens": tokens[round_],
                "teacher_dollars": sum(price.of(c["prompt_tokens"], c["completion_tokens"]) if c["foreign_hit"]
                                       else c["dollars"] for c in upto),
            })
        foreign = sum(c["foreign_hit"] for c in calls)
        store.set_meta("teacher_costs_recounted", json.dumps({"foreign_hits_charged": foreign}))
        last = max(stored, default=None)
        return foreign, int(stored.get(last, 0)), tokens.get(last, 0)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="run directories or grid folders")
    args = parser.parse_args()
    for run_dir in find_runs(args.paths):
        foreign, before, after = recount(run_dir)
        print(f"{run_dir.name}: {foreign} cache hits charged; teacher tokens {before:,} -> {after:,}")


if __name__ == "__main__":
    main()
