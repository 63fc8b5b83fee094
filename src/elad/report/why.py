"""`elad why`: why a round's strategy chose its items, read back from the run store.

For each chosen item (best first): the question and gold answer, the student's greedy steps with its
answer after each step (from answer_scores; ↺ marks a change of the top answer), the sampled answers,
and the strategy's score with every part it stored. Reads the store's tables with SQL only.
"""

import json
import math

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from elad.errors import EladError
from elad.store import RunStore

ROLE = "pool"  # the role the loop stores pool items and their selection-time explanations under


def why(store: RunStore, round_: int, top: int = 10) -> Group:
    """A rich renderable explaining the `top` best chosen items of `round_` (print it with a rich Console)."""
    rows = _chosen(store, round_, top)
    panels = [_item_panel(store, round_, row) for row in rows]
    total = store.db.execute(
        "SELECT COUNT(*) AS n, SUM(chosen) AS c FROM selections WHERE round = ?", (round_,)
    ).fetchone()
    header = Text(
        f"round {round_} · strategy {rows[0]['strategy']} · {total['c']} chosen of {total['n']} scored"
        f" · showing the top {len(rows)}",
        style="bold",
    )
    return Group(header, *panels)


def why_text(store: RunStore, round_: int, top: int = 10, width: int = 110) -> str:
    """The same, as plain text (no colours), e.g. for a file or a test."""
    console = Console(width=width, record=True, color_system=None, file=_Null())
    console.print(why(store, round_, top))
    return console.export_text()


# --- reading the store -----------------------------------------------------------------------------

def _chosen(store: RunStore, round_: int, top: int) -> list[dict]:
    rows = [dict(r) for r in store.db.execute(
        "SELECT * FROM selections WHERE round = ? AND chosen = 1 ORDER BY rank LIMIT ?", (round_, max(0, top)),
    )]
    if rows:
        return rows
    rounds = [r["round"] for r in store.db.execute("SELECT DISTINCT round FROM selections WHERE chosen = 1 ORDER BY round")]
    known = ", ".join(map(str, rounds)) or "none yet"
    raise EladError(f"round {round_} has no stored selection; rounds with one: {known}")


def _example(store: RunStore, example_id: str) -> dict | None:
    row = store.db.execute(
        "SELECT * FROM examples WHERE id = ? ORDER BY role != ? LIMIT 1", (example_id, ROLE)
    ).fetchone()
    return dict(row) if row else None


def _explanations(store: RunStore, round_: int, example_id: str) -> list[dict]:
    """The item's explanations of this round (greedy = sample 0 first), under the pool role if present."""
    rows = [dict(r) for r in store.db.execute(
        "SELECT * FROM explanations WHERE round = ? AND example_id = ? ORDER BY role != ?, role, sample",
        (round_, example_id, ROLE),
    )]
    if not rows:
        return []
    role = rows[0]["role"]
    return [r for r in rows if r["role"] == role]


def _prefix_distributions(store: RunStore, round_: int, example_id: str) -> list[dict[str, float]]:
    return [json.loads(r["distribution"]) for r in store.db.execute(
        "SELECT distribution FROM answer_scores WHERE round = ? AND example_id = ? ORDER BY prefix",
        (round_, example_id),
    )]


# --- rendering -------------------------------------------------------------------------------------

def _item_panel(store: RunStore, round_: int, row: dict) -> Panel:
    example_id = row["example_id"]
    example = _example(store, example_id)
    explanations = _explanations(store, round_, example_id)
    distributions = _prefix_distributions(store, round_, example_id)
    parts = json.loads(row["parts"] or "{}")
    body: list = []
    if example:
        body.append(Text(example["question"]))
        body.append(Text(f"gold answer: {example['answer']}", style="dim"))
    else:
        body.append(Text("(question not in the store)", style="dim"))
    body.append(_steps_table(explanations[0] if explanations else None, distributions))
    body.append(_samples_line(explanations))
    body.append(_parts_table(row["score"], parts))
    title = f"#{row['rank'] + 1} · {example_id} · score {_number(row['score'])}"
    return Panel(Group(*body), title=title, title_align="left")


def _steps_table(greedy: dict | None, distributions: list[dict[str, float]]) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, expand=False)
    table.add_column("after", justify="right", no_wrap=True)
    table.add_column("student's greedy step")
    table.add_column("answer then", no_wrap=True)
    steps = json.loads(greedy["steps"]) if greedy else []
    count = max(len(steps) + 1, len(distributions))
    previous = None
    for i in range(count):
        step = "(no step yet: answering straight away)" if i == 0 else (steps[i - 1] if i - 1 < len(steps) else "")
        answer = "—"
        if i < len(distributions) and distributions[i]:
            best, p = _top(distributions[i])
            flip = " ↺" if previous is not None and best != previous else ""
            answer = f"{best} ({p:.2f}){flip}"
            previous = best
        table.add_row(str(i), Text(step), Text(answer))
    if greedy is None:
        table.add_row("", Text("(no explanation stored for this round)", style="dim"), "")
    else:
        correct = {1: " ✓", 0: " ✗"}.get(greedy["correct"], "")
        table.add_row("", Text("final answer", style="dim"), Text(f"{_answer(greedy['answer'])}{correct}"))
    return table


def _samples_line(explanations: list[dict]) -> Text:
    samples = [_answer(r["answer"]) for r in explanations[1:]]
    if not samples:
        return Text("sampled answers: none stored", style="dim")
    votes: dict[str, int] = {}
    for answer in samples:
        votes[answer] = votes.get(answer, 0) + 1
    tally = ", ".join(f"{a} ×{n}" for a, n in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])))
    return Text(f"sampled answers (K={len(samples)}): {' '.join(samples)}   [{tally}]")


def _parts_table(score: float, parts: dict) -> Text:
    text = Text()
    text.append("score", style="bold")
    text.append(f" {_number(score)}")
    for key, value in parts.items():
        text.append("  ·  ")
        text.append(key, style="bold")
        text.append(f" {_value(value)}")
    return text


def _top(distribution: dict[str, float]) -> tuple[str, float]:
    total = sum(distribution.values()) or 1.0
    best = min(distribution, key=lambda a: (-distribution[a], a))
    return best, distribution[best] / total


def _answer(answer) -> str:
    return "<none>" if answer is None else str(answer)


def _number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (math.isfinite(value) and float(value).is_integer()):
        return str(int(value))
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _value(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_number(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_number(v) for v in value) + "]"
    return _number(value)


class _Null:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass
