"""CLEAR's continuation request with and without CoT's worked exemplars: which reaches the gold answer?

A CLEAR annotation is the student's steps up to the first one the teacher judged wrong, then the
teacher's continuation: the review's own, or, where that has no reasoning, the reply to a request for the
continuation alone, which elad sends zero-shot while CoT's requests carry the task's worked exemplars
(`few_shot`). This replays every item of the given CLEAR runs that made that request (revised items, and
those that fell back to CoT because the reply had no reasoning either), asks the live teacher for the
continuation with CoT's exemplars as earlier turns (the review is taken from the run, not asked again),
and prints, per run and in all, how many of these items' annotations end in the gold answer: the stored
one (zero-shot continuation, or CoT's fallback), the one with exemplars (CoT's answer where its reply
has no reasoning either), and CoT's annotation of the same question from the paired CoT run. Teacher
only: no student is trained.

    .venv/bin/python bench/keep_runs.py restore runs/efficiency-v2-bf16 bench/results/efficiency-v2-bf16
    .venv/bin/python -u bench/clear_continuation.py runs/efficiency-v2-bf16/svamp/annotators
"""

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import track

from elad.annotation.clear import ClearAnnotator, Review
from elad.config import load_config
from elad.report.compare import load_runs
from elad.students.models import gguf_file
from elad.tasks import Example
from elad.teachers import Budget, Ledger, TeacherContext, build_teacher

sys.path.insert(0, str(Path(__file__).resolve().parent))
from annotator_pairs import annotations, pool_examples  # noqa: E402
from distill_efficiency import start_llama_server, stop_llama_server  # noqa: E402


class FewShotContinuation(ClearAnnotator):
    """CLEAR whose continuation request comes after CoT's worked exemplars, as a CoT request does."""

    def continuation_messages(self, example, steps, review):
        return (*self.messages(example)[:-1], super().continuation_messages(example, steps, review)[-1])


def reviewed(rows: list[dict]) -> list[tuple[dict, dict]]:
    """(annotation, details) of the items whose review found a wrong step and was followed by the continuation
    request (the review's own continuation had no reasoning): the only ones the exemplars change."""
    items = []
    for row in rows:
        details = json.loads(row["details"])
        if details.get("first_wrong") and details.get("student_steps") and details.get("continued"):
            items.append((row, details))
    return items


def example_of(row: dict) -> Example:
    return Example(id=row["id"], question=row["question"], answer=row["answer"], rationale=row.get("rationale"),
                   choices=json.loads(row["choices"]) if isinstance(row.get("choices"), str) else row.get("choices") or [])


def live_annotator(kind: type[ClearAnnotator], run, base_url: str):
    """(task, ledger, annotator of class `kind`) with the run's settings, asking the live teacher at
    `base_url` without a cache."""
    config = load_config(run.path / "config.yaml")
    config.teacher.base_url, config.teacher.cache = base_url, False
    task = config.task.open()
    ledger = Ledger(Budget(), count_tokens=lambda text: len(text.split()))
    context = TeacherContext(count_tokens=ledger.count_tokens, dataset=config.task.name, split="train",
                             data_root=None)
    annotator = kind(task, build_teacher(config.teacher, context), ledger, config.teacher.max_tokens,
                     temperature=config.teacher.temperature, few_shot=config.annotation.few_shot,
                     gold_check=config.annotation.gold_check, seed=run.seed)
    return task, ledger, annotator


def replay(run, cot_answers: dict[str, str], base_url: str, console: Console) -> list[tuple[bool, ...]]:
    """(stored annotation right, new annotation right, CoT's right, new reply reasons) for each item of one
    CLEAR run that asked for the continuation alone."""
    task, _, annotator = live_annotator(FewShotContinuation, run, base_url)
    rows, pool = annotations(run.path), pool_examples(run.path)
    outcomes = []
    for row, details in track(reviewed(rows), description=f"{run.name}: continuations", console=console):
        example = example_of(pool[row["example_id"]])
        review = Review(details["verdicts"], "")
        new = annotator.continue_from(example, details["student_steps"], review, {})
        cot_answer = cot_answers.get(row["example_id"])
        # Without reasoning in the reply the item falls back to CoT, whose answer the paired CoT run holds.
        new_answer = task.parse_answer(new, example) if new else cot_answer
        outcomes.append(tuple(bool(answer is not None and task.is_correct(answer, example.answer))
                              for answer in (row["answer"], new_answer, cot_answer)) + (new is not None,))
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="the annotators part's folder (clear and cot runs of the same seeds)")
    parser.add_argument("--teacher", default="qwen2.5-coder-1.5b", help="packaged GGUF served by llama.cpp")
    args = parser.parse_args()
    console = Console()
    runs = load_runs([args.folder])
    cot = {run.seed: {r["example_id"]: r["answer"] for r in annotations(run.path)} for run in runs if run.annotator == "cot"}
    clear = [run for run in runs if run.annotator == "clear"]
    folder = Path(args.folder)
    process, base_url = start_llama_server(gguf_file(args.teacher), folder / "llama_server_continuation.log")
    everything: list[tuple[bool, ...]] = []
    try:
        for run in sorted(clear, key=lambda r: r.seed):
            outcomes = replay(run, cot.get(run.seed, {}), base_url, console)
            everything += outcomes
            console.print(f"{run.name}: {tally(outcomes)}")
    finally:
        stop_llama_server(process)
    console.print(f"all: {tally(everything)}")


def tally(outcomes: list[tuple[bool, ...]]) -> str:
    stored_right, new_right, cot_right, reasoned = (sum(o[i] for o in outcomes) for i in range(4))
    gained = sum(new and not old for old, new, *_ in outcomes)
    lost = sum(old and not new for old, new, *_ in outcomes)
    return (f"{len(outcomes)} items asked for the continuation; annotations with the gold answer: stored "
            f"{stored_right}, new {new_right} (right only in the new {gained}, only in the stored {lost}; "
            f"{reasoned} new replies reasoned, the rest fall back to CoT), CoT's on the same questions {cot_right}")


if __name__ == "__main__":
    main()
