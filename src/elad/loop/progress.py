"""Progress bars for long stages (rich), and the per-round summary line."""

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextmanager
def stage(console: Console, description: str, total: int | None = None) -> Iterator:
    """A progress bar for one stage; yields `update(done, total)`."""
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


def summary_line(row: dict) -> str:
    accuracy = row.get("accuracy")
    shown = f"{accuracy:.1%} ({int(row.get('correct', 0))}/{int(row.get('total', 0))})" if accuracy is not None else "-"
    return (
        f"round {row['round']}: annotations {int(row['annotations'])} | teacher calls {int(row['teacher_calls'])}, "
        f"tokens {int(row['teacher_tokens']):,}, ${row['teacher_dollars']:.4f} | accuracy {shown} | {row['seconds']:.0f} s"
    )
