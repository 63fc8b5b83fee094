"""The strategy protocol: score every candidate of the pool; the loop takes the top B."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from elad.errors import EladError
from elad.tasks import Example


@dataclass
class RoundView:
    """What a strategy may look at in one round: the unannotated pool and the student's outputs on it."""

    round: int
    candidates: list[Example]
    seed: int
    # Filled in only for strategies that ask for them (see Strategy.needs).
    # id -> [greedy, sample 1, ..., sample K], each {"text": str, "steps": list[str], "answer": str | None}
    # (parsed from the text) and, where the loop made the student answer after it, "forced": str | None
    explanations: dict[str, list[dict]] = field(default_factory=dict)
    # id -> the greedy explanation's answer distribution after prefix i = 0..n steps (i = n: all of it),
    # {answer: probability} over the task's candidates; {predicted: 1.0} for open-answer tasks
    answer_scores: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    # The task's answer check, is_correct(predicted, gold): for benchmark-only strategies that read gold
    # (the oracle) and for measuring how well scores find the student's errors.
    is_correct: Callable[[str | None, str], bool] | None = None

    def greedy_answer(self, example_id: str, strategy: str) -> str | None:
        return final_answer(self._explanations(example_id, strategy)[0])

    def sampled_answers(self, example_id: str, strategy: str) -> list[str | None]:
        """The final answers of the K sampled explanations (the greedy one excluded); K >= 1 required."""
        samples = self._explanations(example_id, strategy)[1:]
        if not samples:
            raise EladError(
                f"strategy '{strategy}': item '{example_id}' has no sampled explanations; "
                "set selection.samples (K) to 1 or more"
            )
        return [final_answer(s) for s in samples]

    def prefix_distributions(self, example_id: str, strategy: str) -> list[dict[str, float]]:
        scores = self.answer_scores.get(example_id)
        if not scores:
            raise EladError(f"strategy '{strategy}': no answer scores for item '{example_id}' in round {self.round}")
        return scores

    def _explanations(self, example_id: str, strategy: str) -> list[dict]:
        explanations = self.explanations.get(example_id)
        if not explanations:
            raise EladError(f"strategy '{strategy}': no explanations for item '{example_id}' in round {self.round}")
        return explanations


def final_answer(explanation: dict) -> str | None:
    """An explanation's answer: the forced one where the loop computed it, else the one parsed from its text."""
    return explanation["forced"] if "forced" in explanation else explanation.get("answer")


@dataclass(frozen=True)
class Scored:
    score: float  # higher = more worth a teacher's annotation
    parts: dict = field(default_factory=dict)  # the ingredients of the score, kept for `elad why`


EXPLANATIONS, SAMPLES, ANSWER_SCORES = "explanations", "samples", "answer_scores"


class Strategy(Protocol):
    name: str
    # What the loop must compute before score(): "explanations" (the greedy one), "samples" (K sampled
    # explanations besides it), "answer_scores" (the answer distribution after each prefix of the greedy one).
    needs: frozenset[str]

    def score(self, view: RoundView) -> dict[str, Scored]: ...


def select_top(scores: dict[str, Scored], budget: int, seed: int) -> list[tuple[str, Scored]]:
    """All candidates ranked best first; ties are broken by a seeded shuffle, never by input order."""
    ids = sorted(scores)
    tie_break = np.random.default_rng(seed).permutation(len(ids))
    ranked = sorted(range(len(ids)), key=lambda i: (-scores[ids[i]].score, tie_break[i]))
    return [(ids[i], scores[ids[i]]) for i in ranked]
