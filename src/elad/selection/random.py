"""Random selection: the baseline every other strategy must beat."""

import numpy as np

from elad.selection.base import RoundView, Scored


class RandomStrategy:
    name = "random"
    needs = frozenset()

    def score(self, view: RoundView) -> dict[str, Scored]:
        draws = np.random.default_rng(view.seed).random(len(view.candidates))
        return {e.id: Scored(float(d)) for e, d in zip(view.candidates, draws)}
