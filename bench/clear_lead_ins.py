"""CLEAR with the student's lead-in steps merged into the step after them: do reviews go better?

A student often opens its explanation with a line that only announces what follows ("To solve this
problem, we need to follow these steps:", "Let's break down the problem step by step:"). Shown to the
teacher as step 1 (as CLEAR did before it merged lead-ins), a small teacher judges such a step wrong
more often than not; the revision then throws away every student step and is the teacher's rewrite
with a plan shown as a mistake. For CLEAR runs stored before the merge, this glues each step ending
with a colon to the step after it (`elad.tasks.steps.merge_lead_ins`, what `ClearAnnotator` does now),
so the teacher judges the first step that claims something, and asks the live teacher for the whole
CLEAR annotation again (review, continuation where needed, CoT where the review fails) for every item of
the given CLEAR runs whose student steps have such a lead-in. Printed per run and in all: how many of
these items' annotations end in the gold answer (as stored, with the lead-ins merged, and CoT's
annotation of the same question from the paired CoT run), the outcomes (kept, revised, fell back to
CoT), which step was judged wrong first, how many student steps were kept, and the teacher tokens
(stored for these items, and now). Teacher only: no student is trained. `--check N` also re-asks the
first N items of each run with the steps as stored (not merged), to show the live teacher reproduces the
stored annotations.

    .venv/bin/python bench/keep_runs.py restore runs/efficiency-v2-bf16 bench/results/efficiency-v2-bf16
    .venv/bin/python -u bench/clear_lead_ins.py runs/efficiency-v2-bf16/svamp/annotators
"""

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.progress import track

from elad.annotation.base import Annotation
from elad.annotation.clear import ClearAnnotator
from elad.report.compare import load_runs
from elad.store.db import RunStore
from elad.students.models import gguf_file
from elad.tasks.steps import join_steps, merge_lead_ins

sys.path.insert(0, str(Path(__file__).resolve().parent))
from annotator_pairs import annotations, pool_examples  # noqa: E402
from clear_continuation import example_of, live_annotator  # noqa: E402
from distill_efficiency import start_llama_server, stop_llama_server  # noqa: E402


def has_lead_in(steps: list[str]) -> bool:
    return len(merge_lead_ins(steps)) < len(steps)


class StoredSteps(ClearAnnotator):
    """CLEAR shown the student's steps as the run stored them (one per line in the explanation given)."""

    def steps_of(self, explanation: str) -> list[str]:
        return [line for line in explanation.split("\n") if line.strip()]


class LeadInsMerged(StoredSteps):
    def steps_of(self, explanation: str) -> list[str]:
        return merge_lead_ins(super().steps_of(explanation))


def stored_tokens(path: Path) -> dict[str, int]:
    """example id -> teacher tokens the run paid for its annotation (every call: review, continuation, CoT)."""
    store = RunStore(path / "run.db", readonly=True)
    try:
        rows = store.db.execute("SELECT example_id, SUM(prompt_tokens + completion_tokens) FROM teacher_calls "
                                "GROUP BY example_id").fetchall()
    finally:
        store.close()
    return {example_id: int(tokens) for example_id, tokens in rows}


def outcome_of(details: dict, answer: str | None) -> dict:
    """What one annotation was (stored or new): its outcome, first wrong step, student steps kept, answer."""
    return {"outcome": details.get("outcome", "rejected"), "first_wrong": details.get("first_wrong"),
            "kept_steps": details.get("kept_steps", 0), "answer": answer}


def replay(kind, run, cot_answers: dict[str, str], base_url: str, console: Console, limit: int | None = None):
    """One row per item of the run with a lead-in, as each is done: the stored annotation, the new one,
    CoT's answer."""
    task, ledger, clear = live_annotator(kind, run, base_url)
    pool, paid = pool_examples(run.path), stored_tokens(run.path)
    items = [(row, json.loads(row["details"])) for row in annotations(run.path)]
    items = [(row, d) for row, d in items if d.get("student_steps") and has_lead_in(d["student_steps"])][:limit]
    for row, details in track(items, description=f"{run.name}: {kind.__name__}", console=console):
        example = example_of(pool[row["example_id"]])
        before = ledger.spent.tokens
        result = clear.annotate(example, join_steps(details["student_steps"]))
        stored = outcome_of(details, row["answer"])
        new = outcome_of(result.details, result.answer if isinstance(result, Annotation) else None)
        right = lambda answer: bool(answer is not None and task.is_correct(answer, example.answer))  # noqa: E731
        yield {
            "stored": {**stored, "right": right(stored["answer"]), "tokens": paid.get(row["example_id"], 0)},
            "new": {**new, "right": right(new["answer"]), "tokens": ledger.spent.tokens - before},
            "cot_right": right(cot_answers.get(row["example_id"])),
        }


def tally(rows: list[dict]) -> str:
    def side(key: str) -> str:
        outcomes = Counter(r[key]["outcome"] for r in rows)
        first = Counter(r[key]["first_wrong"] for r in rows if r[key]["outcome"] == "revised")
        kept = sum(r[key]["kept_steps"] for r in rows if r[key]["outcome"] == "revised")
        return (f"{sum(r[key]['right'] for r in rows)} right; {dict(outcomes)}; first wrong step of the revised "
                f"{dict(sorted(first.items()))}, student steps kept {kept}; {sum(r[key]['tokens'] for r in rows):,} tokens")
    gained = sum(r["new"]["right"] and not r["stored"]["right"] for r in rows)
    lost = sum(r["stored"]["right"] and not r["new"]["right"] for r in rows)
    same = sum(r["new"]["answer"] == r["stored"]["answer"] for r in rows)
    return (f"{len(rows)} items with a lead-in\n  stored: {side('stored')}\n  new:    {side('new')}\n"
            f"  right only in the new {gained}, only in the stored {lost}; same answer {same}; "
            f"CoT's on the same questions {sum(r['cot_right'] for r in rows)} right")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="the annotators part's folder (clear and cot runs of the same seeds)")
    parser.add_argument("--teacher", default="qwen2.5-coder-1.5b", help="packaged GGUF served by llama.cpp")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds to replay (default: all)")
    parser.add_argument("--check", type=int, default=0, help="also re-ask this many items per run unmerged")
    parser.add_argument("--limit", type=int, default=None, help="replay at most this many items per run (a pilot)")
    parser.add_argument("--json", type=Path, default=None, help="write every item's row here")
    args = parser.parse_args()
    console = Console()
    runs = load_runs([args.folder])
    cot = {run.seed: {r["example_id"]: r["answer"] for r in annotations(run.path)} for run in runs if run.annotator == "cot"}
    seeds = {int(s) for s in args.seeds.split(",")} if args.seeds else None
    clear = [run for run in sorted(runs, key=lambda r: r.seed)
             if run.annotator == "clear" and (seeds is None or run.seed in seeds)]
    process, base_url = start_llama_server(gguf_file(args.teacher), Path(args.folder) / "llama_server_lead_ins.log")
    everything: dict[str, list[dict]] = {"merged": [], "check": []}
    try:
        for run in clear:
            arms = [(StoredSteps, "check", args.check)] if args.check else []
            for kind, key, limit in arms + [(LeadInsMerged, "merged", args.limit)]:
                rows = []
                for row in replay(kind, run, cot.get(run.seed, {}), base_url, console, limit):
                    rows.append(row)
                    everything[key].append(row)
                    if args.json:  # after every item: a stopped replay keeps what it has done
                        args.json.write_text(json.dumps(everything, indent=1))
                label = "steps as stored (check)" if key == "check" else "lead-ins merged"
                console.print(f"{run.name}, {label}: {tally(rows)}")
    finally:
        stop_llama_server(process)
    console.print(f"all, lead-ins merged: {tally(everything['merged'])}")
    if everything["check"]:
        console.print(f"all, steps as stored (check): {tally(everything['check'])}")


if __name__ == "__main__":
    main()
