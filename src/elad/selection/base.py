"""The strategy protocol: score every candidate of the pool; the loop takes the top B."""

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from elad.tasks import Example


@dataclass
class RoundView:
    """What a strategy may look at in one round: the unannotated pool and the student's outputs on it."""

    round: int
    candidates: list[Example]
    seed: int
    # Filled in only for strategies that ask for them (see Strategy.needs).
    explanations: dict[str, list[dict]] = field(default_factory=dict)  # id -> samples (greedy first)
    answer_scores: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # id -> per-prefix distribution


@dataclass(frozen=True)
class Scored:
    score: float  # higher = more worth a teacher's annotation
    parts: dict = field(default_factory=dict)  # the ingredients of the score, kept for `elad why`


class Strategy(Protocol):
    name: str
    needs: frozenset[str]  # of {"explanations", "samples", "answer_scores"}

    def score(self, view: RoundView) -> dict[str, Scored]: ...


def select_top(scores: dict[str, Scored], budget: int, seed: int) -> list[tuple[str, Scored]]:
    """All candidates ranked best first; ties are broken by a seeded shuffle, never by input order."""
    ids = sorted(scores)
    tie_break = np.random.default_rng(seed).permutation(len(ids))
    ranked = sorted(range(len(ids)), key=lambda i: (-scores[ids[i]].score, tie_break[i]))
    return [(ids[i], scores[ids[i]]) for i in ranked]
