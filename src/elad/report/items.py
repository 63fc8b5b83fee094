"""What a report shows of one chosen item, read from the run store once and rendered twice (`elad why` in
the terminal, the HTML report): the question and gold answer, the student's explanations of the round,
its answer after each step prefix, the strategy's score and parts, and what the teacher did with it."""

import json
import math
from dataclasses import dataclass

from elad.errors import EladError
from elad.store import RunStore

ROLE = "pool"  # the role the loop stores pool items and their selection-time explanations under


@dataclass
class ItemView:
    example_id: str
    rank: int
    score: float
    parts: dict
    example: dict | None  # question, answer, ... (None: not in the store)
    explanations: list[dict]  # greedy first, then the samples
    distributions: list[dict[str, float]]  # the answer distribution after each step prefix
    annotation: dict | None
    rejection: dict | None

    @property
    def greedy(self) -> dict | None:
        return self.explanations[0] if self.explanations else None

    @property
    def steps(self) -> list[str]:
        return json.loads(self.greedy["steps"] or "[]") if self.greedy else []

    @property
    def sampled_answers(self) -> list[str]:
        """What the strategy counted: each sample's forced answer where the loop computed one, else the
        answer parsed from its text."""
        return [answer_text(r["forced"] if r.get("has_forced") else r["answer"]) for r in self.explanations[1:]]

    @property
    def answers_forced(self) -> bool:
        """Whether the sampled answers shown are forced ones (the student made to answer after each)."""
        return any(r.get("has_forced") for r in self.explanations[1:])

    def answers_by_prefix(self) -> list[tuple[int, str, str | None, float | None, bool]]:
        """(prefix, the step it adds, the top answer then, its probability, whether the top answer changed)
        for prefix 0 (no step yet) to the last step."""
        rows, previous = [], None
        for i in range(max(len(self.steps) + 1, len(self.distributions))):
            step = "(no step yet: answering straight away)" if i == 0 else (
                self.steps[i - 1] if i - 1 < len(self.steps) else "")
            best = p = None
            changed = False
            if i < len(self.distributions) and self.distributions[i]:
                best, p = top_answer(self.distributions[i])
                changed = previous is not None and best != previous
                previous = best
            rows.append((i, step, best, p, changed))
        return rows


def chosen_items(store: RunStore, round_: int, top: int | None = None) -> list[ItemView]:
    """The `top` best chosen items of `round_`; an EladError naming the rounds that have a selection when
    this one has none."""
    rows = store.chosen_rows(round_, top)
    if not rows:
        known = ", ".join(map(str, store.selected_rounds())) or "none yet"
        raise EladError(f"round {round_} has no stored selection; rounds with one: {known}")
    return [item_view(store, round_, row) for row in rows]


def item_view(store: RunStore, round_: int, row: dict) -> ItemView:
    example_id = row["example_id"]
    return ItemView(
        example_id=example_id, rank=row["rank"], score=row["score"], parts=json.loads(row["parts"] or "{}"),
        example=store.example(example_id, ROLE), explanations=store.item_explanations(round_, example_id, ROLE),
        distributions=store.prefix_distributions(round_, example_id),
        annotation=store.annotation(example_id), rejection=store.rejection(example_id),
    )


def vote_tally(answers: list[str]) -> str:
    votes: dict[str, int] = {}
    for answer in answers:
        votes[answer] = votes.get(answer, 0) + 1
    return ", ".join(f"{a} ×{n}" for a, n in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])))


def top_answer(distribution: dict[str, float]) -> tuple[str, float]:
    total = sum(distribution.values()) or 1.0
    best = min(distribution, key=lambda a: (-distribution[a], a))
    return best, distribution[best] / total


def answer_text(answer) -> str:
    return "<none>" if answer is None else str(answer)


def number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (math.isfinite(value) and float(value).is_integer()):
        return str(int(value))
    return f"{value:.4f}".rstrip("0").rstrip(".")


def value_text(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {number(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(number(v) for v in value) + "]"
    return number(value)
