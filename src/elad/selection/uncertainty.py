"""The answer-only baselines: maximum entropy, least confidence, margin, disagreement (docs/selection.md).

The first three read one answer distribution per item, its *final* distribution: by default the
student's probabilities after the whole greedy explanation (answer_scores[id][-1]); for open-answer
tasks, where those are one-hot, the empirical distribution over the K sampled final answers.
"""

from typing import Literal

from elad.errors import EladError
from elad.selection import measures
from elad.selection.base import ANSWER_SCORES, EXPLANATIONS, SAMPLES, RoundView, Scored

Source = Literal["auto", "model", "samples"]


class _DistributionStrategy:
    """Scores each item by a function of its final answer distribution.

    source: "model" = answer_scores[id][-1]; "samples" = the empirical distribution over the K sampled
    answers; "auto" (default) = "samples" if open_answers else "model". In "model" mode an item whose
    distribution holds one answer only (a one-hot open answer) falls back to its samples when the view has
    them. open_answers: the task's answers are open (numbers), so the model gives no distribution.
    """

    name = ""

    def __init__(self, source: Source = "auto", open_answers: bool = False):
        if source not in ("auto", "model", "samples"):
            raise EladError(f"strategy '{self.name}': source must be auto, model or samples, not '{source}'")
        self.source = ("samples" if open_answers else "model") if source == "auto" else source
        self.needs = frozenset(
            {EXPLANATIONS, ANSWER_SCORES} if self.source == "model" else {EXPLANATIONS, SAMPLES}
        )

    def measure(self, distribution: dict[str, float]) -> tuple[float, dict]:
        raise NotImplementedError

    def score(self, view: RoundView) -> dict[str, Scored]:
        scored = {}
        for example in view.candidates:
            distribution, source = self.distribution(view, example.id)
            value, parts = self.measure(distribution)
            top = measures.top_answer(distribution)
            scored[example.id] = Scored(value, {
                **parts, "top": top, "p_top": distribution[top], "source": source,
                "distribution": _rounded(distribution),
            })
        return scored

    def distribution(self, view: RoundView, example_id: str) -> tuple[dict[str, float], str]:
        if self.source == "model":
            final = measures.normalise(view.prefix_distributions(example_id, self.name)[-1])
            has_samples = len(view.explanations.get(example_id) or []) > 1
            if len(final) > 1 or not has_samples:
                return final, "model"
        return measures.empirical(view.sampled_answers(example_id, self.name)), "samples"


class EntropyStrategy(_DistributionStrategy):
    """score = H(p_final), nats."""

    name = "entropy"

    def measure(self, distribution):
        value = measures.entropy(distribution)
        return value, {"entropy": value}


class LeastConfidenceStrategy(_DistributionStrategy):
    """score = 1 - max_a p_final(a)."""

    name = "least_confidence"

    def measure(self, distribution):
        value = measures.least_confidence(distribution)
        return value, {"least_confidence": value}


class MarginStrategy(_DistributionStrategy):
    """score = 1 - (p(1) - p(2)): the smaller the lead of the top answer, the higher."""

    name = "margin"

    def measure(self, distribution):
        value = measures.margin(distribution)
        return 1.0 - value, {"margin": value}


class DisagreementStrategy:
    """score = vote entropy of the K sampled final answers (nats). No constructor arguments."""

    name = "disagreement"
    needs = frozenset({EXPLANATIONS, SAMPLES})

    def score(self, view: RoundView) -> dict[str, Scored]:
        scored = {}
        for example in view.candidates:
            answers = view.sampled_answers(example.id, self.name)
            value = measures.vote_entropy(answers)
            scored[example.id] = Scored(value, {"vote_entropy": value, "votes": _votes(answers), "k": len(answers)})
        return scored


def _votes(answers) -> dict[str, int]:
    votes: dict[str, int] = {}
    for answer in answers:
        key = measures.answer_key(answer)
        votes[key] = votes.get(key, 0) + 1
    return dict(sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])))


def _rounded(distribution: dict[str, float]) -> dict[str, float]:
    return {answer: round(p, 6) for answer, p in sorted(distribution.items(), key=lambda kv: (-kv[1], kv[0]))}
