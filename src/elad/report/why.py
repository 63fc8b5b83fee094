"""`elad why`: why a round's strategy chose its items, read back from the run store.

For each chosen item (best first): the question and gold answer, the student's greedy steps with its
answer after each step (from answer_scores; ↺ marks a change of the top answer), the sampled answers,
and the strategy's score with every part it stored (`report/items.py` reads them; this renders them).
"""

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from elad.report.items import ItemView, answer_text, chosen_items, number, value_text, vote_tally
from elad.store import RunStore


def why(store: RunStore, round_: int, top: int = 10) -> Group:
    """A rich renderable explaining the `top` best chosen items of `round_` (print it with a rich Console)."""
    items = chosen_items(store, round_, top)
    summary = store.selection_summary(round_)
    header = Text(
        f"round {round_} · strategy {summary['strategy']} · {summary['chosen']} chosen of {summary['scored']} scored"
        f" · showing the top {len(items)}",
        style="bold",
    )
    return Group(header, *_fed_line(store, round_), *_errors_line(store, round_), *(_item_panel(item) for item in items))


def _errors_line(store: RunStore, round_: int) -> list[Text]:
    """How well the scores pointed at the student's errors this round (where gold was known)."""
    found = {m["name"]: m["value"] for m in store.metrics() if m["round"] == round_ and m["split"] == "selection"}
    aurocs = {name.removeprefix("auroc_"): value for name, value in found.items() if name.startswith("auroc_")}
    if not aurocs:
        return []
    listed = ", ".join(f"{name} {value:.2f}" for name, value in aurocs.items())
    return [Text(f"AUROC against the student's errors on {int(found.get('errors_known', 0))} scored items "
                 f"({int(found.get('errors_wrong', 0))} wrong; 0.5 = no better than chance): {listed}")]


def fed_summary(store: RunStore, round_: int) -> dict[str, int]:
    """What the round's strategy read, to check before blaming it: how many pool items were explained and
    how many explanations in all, how many greedy ones reached the answer cue (finished), how many
    explanations gave no answer to read from their text, how many were answered by forcing, and how many
    forced answers differ from a readable one."""
    from elad.tasks import ANSWER_CUE

    rows = [dict(r) for r in store.db.execute(
        "SELECT e.sample, e.text, e.answer, f.answer AS forced, f.sample IS NOT NULL AS has_forced "
        "FROM explanations e LEFT JOIN forced_answers f USING (round, role, example_id, sample) "
        "WHERE e.round = ? AND e.role = 'pool'", (round_,))]
    greedy = [r for r in rows if r["sample"] == 0]
    both = [r for r in rows if r["has_forced"] and r["answer"] is not None]
    return {
        "items": len(greedy), "explanations": len(rows),
        "greedy_finished": sum(ANSWER_CUE.lower() in r["text"].lower() for r in greedy),
        "unreadable": sum(r["answer"] is None for r in rows),
        "forced": sum(bool(r["has_forced"]) for r in rows),
        "forced_differs": sum(r["forced"] != r["answer"] for r in both),
    }


def _fed_line(store: RunStore, round_: int) -> list[Text]:
    fed = fed_summary(store, round_)
    if not fed["explanations"]:
        return []
    line = (f"read: {fed['explanations']} explanations of {fed['items']} items; {fed['greedy_finished']} of the "
            f"{fed['items']} greedy ones reached the answer cue; {fed['unreadable']} gave no answer in their text")
    if fed["forced"]:
        line += (f"; every answer forced after its explanation ({fed['forced']}), "
                 f"{fed['forced_differs']} differing from the text's")
    return [Text(line)]


def why_text(store: RunStore, round_: int, top: int = 10, width: int = 110) -> str:
    """The same, as plain text (no colours), e.g. for a file or a test."""
    console = Console(width=width, record=True, color_system=None, file=_Null())
    console.print(why(store, round_, top))
    return console.export_text()


# --- rendering -------------------------------------------------------------------------------------

def _item_panel(item: ItemView) -> Panel:
    body: list = []
    if item.example:
        body.append(Text(item.example["question"]))
        body.append(Text(f"gold answer: {item.example['answer']}", style="dim"))
    else:
        body.append(Text("(question not in the store)", style="dim"))
    body.append(_steps_table(item))
    body.append(_samples_line(item))
    body.append(_parts_table(item.score, item.parts))
    title = f"#{item.rank + 1} · {item.example_id} · score {number(item.score)}"
    return Panel(Group(*body), title=title, title_align="left")


def _steps_table(item: ItemView) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, expand=False)
    table.add_column("after", justify="right", no_wrap=True)
    table.add_column("student's greedy step")
    table.add_column("answer then", no_wrap=True)
    for i, step, best, p, changed in item.answers_by_prefix():
        answer = "—" if best is None else f"{best} ({p:.2f}){' ↺' if changed else ''}"
        table.add_row(str(i), Text(step), Text(answer))
    greedy = item.greedy
    if greedy is None:
        table.add_row("", Text("(no explanation stored for this round)", style="dim"), "")
    else:
        correct = {1: " ✓", 0: " ✗"}.get(greedy["correct"], "")
        table.add_row("", Text("final answer", style="dim"), Text(f"{answer_text(greedy['answer'])}{correct}"))
    return table


def _samples_line(item: ItemView) -> Text:
    samples = item.sampled_answers
    if not samples:
        return Text("sampled answers: none stored", style="dim")
    how = " forced after each" if item.answers_forced else ""
    return Text(f"sampled answers (K={len(samples)}{how}): {' '.join(samples)}   [{vote_tally(samples)}]")


def _parts_table(score: float, parts: dict) -> Text:
    text = Text()
    text.append("score", style="bold")
    text.append(f" {number(score)}")
    for key, value in parts.items():
        text.append("  ·  ")
        text.append(key, style="bold")
        text.append(f" {value_text(value)}")
    return text


class _Null:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass
