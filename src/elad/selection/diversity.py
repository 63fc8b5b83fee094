"""Optional diversity: do not spend one batch's budget on near-duplicate questions.

diverse_top walks the ranking best first and defers an item whose question's token set has Jaccard
similarity >= threshold with a question already taken; if the walk ends with fewer than `budget` items,
the deferred ones fill the batch in rank order, so the budget is always spent when the pool allows.
"""

import re

from elad.selection.base import Scored

_TOKEN = re.compile(r"\w+")


def tokens(text: str) -> frozenset[str]:
    return frozenset(_TOKEN.findall(text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|A & B| / |A | B|; two empty sets are identical (1.0)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def diverse_top(
    ranked: list[tuple[str, Scored]], questions: dict[str, str], budget: int, threshold: float = 0.8
) -> list[tuple[str, Scored]]:
    """The whole ranking, re-ordered: the `budget` items of the batch first, then the others in their order.

    ranked: select_top's output (best first); questions: id -> question text. The batch is what the loop
    takes as `result[:budget]`. A deferred item's parts gain "deferred_by": the id it resembled.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"diversity threshold must lie in (0, 1], not {threshold}")
    taken: list[tuple[str, Scored]] = []
    taken_tokens: list[tuple[str, frozenset[str]]] = []
    deferred: list[tuple[str, Scored]] = []
    rest: list[tuple[str, Scored]] = []
    for example_id, scored in ranked:
        if len(taken) >= budget:
            rest.append((example_id, scored))
            continue
        own = tokens(questions.get(example_id, ""))
        twin = next((other for other, seen in taken_tokens if jaccard(own, seen) >= threshold), None)
        if twin is None:
            taken.append((example_id, scored))
            taken_tokens.append((example_id, own))
        else:
            deferred.append((example_id, Scored(scored.score, {**scored.parts, "deferred_by": twin})))
    fill = deferred[: budget - len(taken)]
    # The batch, then every other item in its original rank order.
    rank = {example_id: position for position, (example_id, _) in enumerate(ranked)}
    others = sorted(deferred[len(fill):] + rest, key=lambda item: rank[item[0]])
    return taken + fill + others
