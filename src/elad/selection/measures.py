"""The measures every strategy is built from, as plain functions of answer distributions and votes.

Each function here is one formula of docs/selection.md; the names match. Distributions are dicts
{answer: probability}; they are renormalised to sum to 1 (an all-zero or empty one is an error).
Entropies are in nats, except the Jensen-Shannon divergence, which is in bits so that it lies in [0, 1].
"""

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Sequence

from elad.errors import EladError

NO_ANSWER = "<none>"  # an explanation whose answer could not be read: a category of its own


def answer_key(answer: str | None) -> str:
    return NO_ANSWER if answer is None else str(answer)


def normalise(distribution: dict[str, float]) -> dict[str, float]:
    """The distribution scaled to sum to 1; negative or non-finite probabilities are refused."""
    if any(not math.isfinite(p) or p < 0 for p in distribution.values()):
        raise EladError(f"answer distribution with a negative or non-finite probability: {distribution}")
    total = sum(distribution.values())
    if total <= 0:
        raise EladError(f"empty answer distribution: {distribution}")
    return {answer: p / total for answer, p in distribution.items()}


def top_answer(distribution: dict[str, float]) -> str:
    """The most probable answer; ties go to the answer that sorts first, so the result never depends on order."""
    return min(distribution, key=lambda answer: (-distribution[answer], answer))


def ranked_probabilities(distribution: dict[str, float]) -> list[float]:
    return sorted(normalise(distribution).values(), reverse=True)


def entropy(distribution: dict[str, float]) -> float:
    """H(p) = -sum_a p(a) ln p(a), in nats (0 ln 0 = 0)."""
    return _entropy_of(normalise(distribution).values())


def least_confidence(distribution: dict[str, float]) -> float:
    """LC(p) = 1 - max_a p(a)."""
    return 1.0 - ranked_probabilities(distribution)[0]


def margin(distribution: dict[str, float]) -> float:
    """M(p) = p(1) - p(2): the top probability minus the runner-up's (p(2) = 0 with one answer)."""
    probabilities = ranked_probabilities(distribution) + [0.0]
    return probabilities[0] - probabilities[1]


def empirical(answers: Iterable[str | None]) -> dict[str, float]:
    """The share of each answer among `answers` (unreadable answers count as one answer, NO_ANSWER)."""
    votes = Counter(answer_key(a) for a in answers)
    total = sum(votes.values())
    if total == 0:
        raise EladError("no answers to build a distribution from")
    return {answer: count / total for answer, count in sorted(votes.items())}


def vote_entropy(answers: Sequence[str | None]) -> float:
    """VE = -sum_a (v_a / K) ln (v_a / K) over the K votes, in nats."""
    return _entropy_of(empirical(answers).values())


def normalised_vote_entropy(answers: Sequence[str | None]) -> float:
    """VE / ln K, in [0, 1]; 0 when K <= 1."""
    if len(answers) <= 1:
        return 0.0
    return min(1.0, vote_entropy(answers) / math.log(len(answers)))


def dissent(greedy: str | None, samples: Sequence[str | None]) -> float:
    """The share of sampled answers that differ from the greedy one: 1 - v_g / K."""
    if not samples:
        raise EladError("no sampled answers")
    agree = sum(answer_key(a) == answer_key(greedy) for a in samples)
    return 1.0 - agree / len(samples)


def js_divergence(p: dict[str, float], q: dict[str, float]) -> float:
    """JS(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2, in bits: 0 for equal
    distributions, 1 for ones with disjoint support. Answers missing from one side have probability 0."""
    p, q = normalise(p), normalise(q)
    total = 0.0
    for answer in set(p) | set(q):
        a, b = p.get(answer, 0.0), q.get(answer, 0.0)
        m = (a + b) / 2
        if a > 0:
            total += 0.5 * a * math.log2(a / m)
        if b > 0:
            total += 0.5 * b * math.log2(b / m)
    return min(1.0, max(0.0, total))


def rank_normalise(values: dict[str, float]) -> dict[str, float]:
    """R(v_j) = (#{k: v_k < v_j} + (#{k: v_k = v_j} - 1) / 2) / (N - 1): the mid-rank of v_j scaled to
    [0, 1]; tied values share their average rank; all values equal (or N = 1) -> 0.5 each."""
    n = len(values)
    if n <= 1:
        return {key: 0.5 for key in values}
    ordered = sorted(values.values())
    result = {}
    for key, value in values.items():
        below = _count_below(ordered, value)
        equal = _count_below(ordered, value, inclusive=True) - below
        result[key] = (below + (equal - 1) / 2) / (n - 1)
    return result


def minmax_normalise(values: dict[str, float]) -> dict[str, float]:
    """(v - min) / (max - min) over the round's candidates; all values equal -> 0 each."""
    if not values:
        return {}
    low, high = min(values.values()), max(values.values())
    if high == low:
        return {key: 0.0 for key in values}
    return {key: (value - low) / (high - low) for key, value in values.items()}


SCALES = {"rank": rank_normalise, "minmax": minmax_normalise}


def _entropy_of(probabilities: Iterable[float]) -> float:
    return max(0.0, -sum(p * math.log(p) for p in probabilities if p > 0))


def _count_below(ordered: list[float], value: float, inclusive: bool = False) -> int:
    return (bisect.bisect_right if inclusive else bisect.bisect_left)(ordered, value)
