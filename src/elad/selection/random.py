"""Random selection: the baseline every other strategy must beat."""

import numpy as np

from elad.selection.base import RoundView, Scored


class RandomStrategy:
    """score = a uniform draw per item, seeded by the round's seed; the draws follow the ids' sorted order,
    so the same candidates get the same scores in any order. No constructor arguments."""

    name = "random"
    needs = frozenset()
    stop_measure = None  # uniform draws measure no uncertainty (loop.stop_uncertainty)

    def score(self, view: RoundView) -> dict[str, Scored]:
        ids = sorted(e.id for e in view.candidates)
        draws = np.random.default_rng(view.seed).random(len(ids))
        return {i: Scored(float(d)) for i, d in zip(ids, draws)}
