"""`elad data inspect TASK --path ...`: what a task loads from a folder, before a run spends anything on it.

Per split: examples loaded, rows skipped (with `skip_bad_rows`), gold rationales, the answer balance;
then a few examples as the student will see them (prompt) and as a gold target would read.
"""

import random
from collections import Counter
from dataclasses import dataclass, field

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from elad.errors import DataError, EladError
from elad.tasks.base import AnswerKind, Example, Task

TOP_ANSWERS = 8  # open-answer tasks (numbers) list only their most common answers


@dataclass
class SplitSummary:
    split: str
    examples: int = 0
    skipped: int = 0
    rationales: int = 0
    answers: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    error: str | None = None  # the split could not be loaded


def summarize(task: Task, splits: list[str] | None = None) -> tuple[list[SplitSummary], dict[str, list[Example]]]:
    """Load each split (default: those whose files exist) and count what came out."""
    summaries, loaded = [], {}
    for split in splits or task.available_splits():
        summary = SplitSummary(split)
        try:
            examples = task.load(split)
        except (DataError, EladError) as error:
            summary.error = str(error)
            summaries.append(summary)
            continue
        loaded[split] = examples
        summary.examples = len(examples)
        summary.skipped = task.skipped.get(split, 0)
        summary.problems = task.problems.get(split, [])
        summary.rationales = sum(1 for e in examples if e.rationale)
        summary.answers = Counter(e.answer or "(none)" for e in examples)
        summaries.append(summary)
    return summaries, loaded


def inspect_task(name: str, path: str | None = None, options: dict | None = None, splits: list[str] | None = None,
                 examples: int = 3, seed: int = 0) -> Group:
    """A rich renderable: counts, label balance and `examples` formatted examples of a task's data.
    Raises EladError (unknown task, bad options, missing folder) like a run would."""
    from elad.tasks import TASKS

    task = TASKS.create(name, path=path, **(options or {}))
    summaries, loaded = summarize(task, splits)
    parts = [_counts_table(task, summaries)]
    for summary in summaries:
        if summary.problems:
            parts.append(Text(f"{summary.split}: skipped rows (first {len(summary.problems)}):\n  " +
                              "\n  ".join(summary.problems), style="yellow"))
    parts.append(_balance_table(task, summaries))
    shown = _pick(loaded, examples, seed)
    for split, example in shown:
        parts.append(_example_panel(task, split, example))
    if not loaded:
        parts.append(Text("no split could be loaded", style="bold red"))
    return Group(*parts)


def _counts_table(task: Task, summaries: list[SplitSummary]) -> Table:
    table = Table(title=f"task {task.name} ({task.answer_kind.value} answers)")
    for column in ("split", "examples", "skipped", "with rationale", "note"):
        table.add_column(column, justify="left" if column in ("split", "note") else "right")
    for s in summaries:
        table.add_row(s.split, str(s.examples), str(s.skipped), str(s.rationales), s.error or _gold_note(s),
                      style="red" if s.error else None)
    return table


def _gold_note(summary: SplitSummary) -> str:
    """Splits whose questions lack gold answers are for prediction only: a run refuses them as its test split."""
    missing = summary.answers.get("(none)", 0)
    if not missing:
        return ""
    share = "no" if missing == summary.examples else f"{missing} without"
    return f"{share} gold answers: prediction only, not a test split"


def _balance_table(task: Task, summaries: list[SplitSummary]) -> Table:
    ok = [s for s in summaries if not s.error]
    table = Table(title="answer balance" + (f" (top {TOP_ANSWERS})" if task.answer_kind == AnswerKind.NUMBER else ""))
    table.add_column("answer")
    for s in ok:
        table.add_column(s.split, justify="right")
    totals = Counter()
    for s in ok:
        totals.update(s.answers)
    answers = [a for a, _ in totals.most_common(TOP_ANSWERS)] if task.answer_kind == AnswerKind.NUMBER else \
        sorted(totals, key=lambda a: (-totals[a], a))
    for answer in answers:
        table.add_row(answer, *[_share(s.answers[answer], s.examples) for s in ok])
    return table


def _share(count: int, total: int) -> str:
    return f"{count} ({100 * count / total:.1f}%)" if total else "0"


def _pick(loaded: dict[str, list[Example]], k: int, seed: int) -> list[tuple[str, Example]]:
    pool = [(split, e) for split, examples in loaded.items() for e in examples]
    return random.Random(seed).sample(pool, min(k, len(pool)))


def _example_panel(task: Task, split: str, example: Example) -> Panel:
    body = Text()
    body.append("prompt\n", style="bold")
    body.append(task.prompt(example) + "\n\n")
    body.append("gold target\n", style="bold")
    body.append(task.target(example.rationale, example.answer) if example.rationale else
                f"(no rationale) answer: {example.answer or '(unknown)'}")
    return Panel(body, title=f"{split} / {example.id}", expand=False)


def render_text(renderable, width: int = 100) -> str:
    """Plain text of a renderable, for tests and logs."""
    import io

    from rich.console import Console

    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()
