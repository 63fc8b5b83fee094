"""The batch a round sends to the teacher: a strategy wrapped in what every run composes around it.

A strategy scores candidates; `BatchPolicy` decides which candidates it sees (the unchosen pool, or a
seeded sample of it: `selection.pool_sample`), which strategy scores round 1 (random, for a seed set of
`loop.initial_random` items), and which of the ranked items make the batch (the top `loop.per_round`, or
a draw favouring high scores with `selection.options.acquisition`, re-ordered for diversity with
`selection.options.diversity`). The loop asks for the batch; the student
outputs a strategy needs are filled in between (`candidates` -> `strategy_for` -> RoundView -> `choose`).
"""

from dataclasses import dataclass

import numpy as np

from elad.selection.base import Scored, Strategy, select_top
from elad.selection.diversity import diverse_top
from elad.selection.random import RandomStrategy
from elad.selection.stochastic import drawn_first
from elad.tasks import Example


@dataclass(frozen=True)
class BatchPolicy:
    strategy: Strategy
    per_round: int
    initial_random: int | None = None  # round 1 chooses this many at random (a seed set) instead
    pool_sample: int | None = None  # score a seeded sample of this many candidates, not the whole pool
    diversity: float | None = None  # similarity threshold above which an item waits behind one like it
    acquisition: str = "top"  # or a draw that favours high scores: softrank, power, softmax (stochastic.py)
    beta: float = 1.0  # how strongly the draw favours them

    def candidates(self, pool: list[Example], taken: set[str], seed: int) -> list[Example]:
        """The pool items never chosen before, or a seeded sample of `pool_sample` of them (pool order)."""
        candidates = [e for e in pool if e.id not in taken]
        if self.pool_sample and self.pool_sample < len(candidates):
            keep = np.random.default_rng(seed).choice(len(candidates), size=self.pool_sample, replace=False)
            candidates = [candidates[i] for i in sorted(keep)]
        return candidates

    def seeding(self, round_: int) -> bool:
        return round_ == 1 and bool(self.initial_random)

    def strategy_for(self, round_: int) -> Strategy:
        return RandomStrategy() if self.seeding(round_) else self.strategy

    def size_for(self, round_: int) -> int:
        return self.initial_random if self.seeding(round_) else self.per_round

    def choose(self, round_: int, scores: dict[str, Scored], candidates: list[Example], seed: int
               ) -> tuple[list[tuple[str, Scored]], list[str]]:
        """(every candidate ranked best first, the ids of the batch)."""
        size = self.size_for(round_)
        ranked = select_top(scores, len(candidates), seed)
        if not self.seeding(round_):
            ranked = drawn_first(ranked, size, self.acquisition, self.beta, seed)
        if self.diversity is not None:
            ranked = diverse_top(ranked, {e.id: e.question for e in candidates}, size, threshold=self.diversity)
        return ranked, [example_id for example_id, _ in ranked[:size]]
