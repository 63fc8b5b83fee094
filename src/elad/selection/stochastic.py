"""Stochastic batch acquisition: draw the batch with probability rising with the score, instead of
taking the top k (Kirsch et al. 2023, "Stochastic Batch Acquisition"). The top k of a noisy score are
often near-duplicates in what they teach; a draw keeps most of the score's preference and adds variety.

    selection: {options: {acquisition: softrank, beta: 1.0}}

- `softrank`: p ∝ rank^-beta (rank 1 = the best score; tied scores share their mean rank, so equal
  scores are equally likely): scale-free, the default stochastic choice.
- `power`: p ∝ max(score, 0)^beta (scores that are not negative: entropies, EGSS's scaled parts).
- `softmax`: p ∝ exp(beta * score).
- `top` (default): the top k, no draw.

The draw is without replacement (the Gumbel-top-k trick: the k largest of log p + Gumbel noise), seeded
by the round's seed; beta = 0 is uniform, a large beta approaches the top k.
"""

import numpy as np

from elad.errors import EladError
from elad.selection.base import Scored

ACQUISITIONS = ("top", "softrank", "power", "softmax")


def check_acquisition(kind: str, beta: float) -> None:
    if kind not in ACQUISITIONS:
        raise EladError(f"selection.options.acquisition: one of {', '.join(ACQUISITIONS)}, not {kind!r}")
    if not np.isfinite(beta) or beta < 0:
        raise EladError(f"selection.options.beta must be a number >= 0, not {beta!r}")


def drawn_first(ranked: list[tuple[str, Scored]], size: int, kind: str, beta: float, seed: int
                ) -> list[tuple[str, Scored]]:
    """The ranking (best first) re-ordered: a batch of `size` drawn by `kind` first (in rank order, each
    with its place in the ranking as part `rank`), then the others in rank order."""
    if kind == "top" or size >= len(ranked):
        return ranked
    keys = _log_weights([s.score for _, s in ranked], kind, beta) + np.random.default_rng(seed).gumbel(size=len(ranked))
    batch = sorted(np.argsort(-keys, kind="stable")[:size])
    chosen = set(batch)
    drawn = [(i, Scored(s.score, {**s.parts, "rank": n + 1})) for n, (i, s) in enumerate(ranked) if n in chosen]
    return drawn + [item for n, item in enumerate(ranked) if n not in chosen]


def _log_weights(scores: list[float], kind: str, beta: float) -> np.ndarray:
    values = np.asarray(scores, dtype=float)
    if kind == "softrank":
        return -beta * np.log(_mid_ranks(values))
    if kind == "power":
        return beta * np.log(np.maximum(values, 0.0) + 1e-12)
    return beta * (values - values.max())  # softmax


def _mid_ranks(values: np.ndarray) -> np.ndarray:
    """Each score's rank in `values` (best first, so rank = position + 1), tied scores sharing the mean of
    their positions' ranks: the order a tie was broken in does not make one of them likelier."""
    ranks = np.arange(1, len(values) + 1, dtype=float)
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and values[end + 1] == values[start]:
            end += 1
        ranks[start:end + 1] = (start + end) / 2 + 1
        start = end + 1
    return ranks
