"""Progress for long stages, stages stored group by group, and the per-round summary line.

On a terminal: a rich progress bar. Elsewhere (a job log, a pipe, CI): plain one-line records, one when
the stage starts, one at most every `LOG_EVERY` seconds while it runs, and one when it ends, so a log
shows what a round is doing.
"""

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


LOG_EVERY = 30.0  # seconds between plain progress records

Item = TypeVar("Item")


def groups_left(items: Sequence[Item], size: int, is_done: Callable[[Item], bool]) -> list[list[Item]]:
    """`items` cut into groups of `size` in their order, each without the items already done. The groups
    are the same on every run, so a stage resumed after a stop computes each group as an unstopped run
    did (a group counts as done once all it computes is stored)."""
    return [[item for item in items[i:i + size] if not is_done(item)] for i in range(0, len(items), size)]


def in_groups(console: Console, description: str, groups: list[list[Item]], per_item: int,
              work: Callable[[list[Item], int, Callable], None]) -> None:
    """`work(items, group_index, progress)` for each group with items left (work stores what it computed),
    under one progress bar counting `per_item` units per item."""
    total = sum(len(group) for group in groups) * per_item
    if not total:
        return
    with stage(console, description, total) as update:
        base = 0
        for index, items in enumerate(groups):
            if items:
                work(items, index, lambda done, _total=None, base=base: update(base + done))
                base += len(items) * per_item


@contextmanager
def stage(console: Console, description: str, total: int | None = None) -> Iterator:
    """Progress of one stage; yields `update(done, total)`."""
    if not console.is_terminal:
        with _records(console, description, total) as update:
            yield update
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(description, total=total)

        def update(done: int, new_total: int | None = None) -> None:
            bar.update(task, completed=done, total=new_total if new_total is not None else bar.tasks[0].total)

        yield update


@contextmanager
def _records(console: Console, description: str, total: int | None) -> Iterator:
    started = last = time.monotonic()
    state = {"done": 0, "total": total}
    console.print(f"{description}: started" + (f" ({total})" if total else ""), highlight=False, markup=False)

    def update(done: int, new_total: int | None = None) -> None:
        nonlocal last
        state["done"], state["total"] = done, new_total if new_total is not None else state["total"]
        now = time.monotonic()
        if now - last >= LOG_EVERY:
            last = now
            console.print(f"{description}: {_count(state)}, {now - started:.0f} s", highlight=False, markup=False)

    yield update
    counted = _count(state)
    ended = f"{description}: done{' ' + counted if counted else ''} in {time.monotonic() - started:.0f} s"
    console.print(ended, highlight=False, markup=False)


def _count(state: dict) -> str:
    done, total = state["done"], state["total"]
    if not total:
        return f"{done}" if done else ""
    return f"{done}/{total} ({done / total:.0%})"


def summary_line(row: dict) -> str:
    accuracy = row.get("accuracy")
    shown = f"{accuracy:.1%} ({int(row.get('correct', 0))}/{int(row.get('total', 0))})" if accuracy is not None else "-"
    if row.get("val_accuracy") is not None:
        shown += f", validation {row['val_accuracy']:.1%}"
    return (
        f"round {row['round']}: annotations {int(row['annotations'])} | teacher calls {int(row['teacher_calls'])}, "
        f"tokens {int(row['teacher_tokens']):,}, ${row['teacher_dollars']:.4f} | accuracy {shown} | {row['seconds']:.0f} s"
    )
