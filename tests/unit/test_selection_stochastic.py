"""Stochastic batch acquisition: a seeded draw that favours high scores (softrank, power, softmax)."""

from collections import Counter

import pytest

from elad.errors import EladError
from elad.selection import Scored, create_strategy
from elad.selection.batch import BatchPolicy
from elad.selection.stochastic import check_acquisition, drawn_first
from elad.tasks import Example

RANKED = [(f"q{i}", Scored(1.0 - i / 10)) for i in range(10)]  # q0 best


def _batch(kind, beta, seed, size=3):
    return [i for i, _ in drawn_first(RANKED, size, kind, beta, seed)[:size]]


@pytest.mark.parametrize("kind", ["softrank", "power", "softmax"])
def test_a_draw_is_seeded_distinct_and_keeps_every_item(kind):
    first, again = drawn_first(RANKED, 3, kind, 1.0, seed=7), drawn_first(RANKED, 3, kind, 1.0, seed=7)
    assert first == again and sorted(i for i, _ in first) == sorted(i for i, _ in RANKED)
    assert len(set(_batch(kind, 1.0, 7))) == 3
    assert all("rank" in s.parts for _, s in first[:3]) and not any("rank" in s.parts for _, s in first[3:])


@pytest.mark.parametrize("kind", ["softrank", "power", "softmax"])
def test_higher_scores_are_drawn_more_often_and_a_large_beta_is_the_top_k(kind):
    counts = Counter(i for seed in range(600) for i in _batch(kind, 2.0, seed))
    assert counts["q0"] > counts["q4"] > counts["q9"]
    assert all(_batch(kind, 200.0, seed) == ["q0", "q1", "q2"] for seed in range(20))


def test_beta_zero_draws_uniformly():
    counts = Counter(i for seed in range(2000) for i in _batch("softrank", 0.0, seed))
    assert all(abs(c / 2000 - 0.3) < 0.05 for c in counts.values()) and len(counts) == 10


def test_top_is_the_ranking_and_round_one_seeding_is_not_drawn():
    assert drawn_first(RANKED, 3, "top", 1.0, 0) == RANKED
    policy = BatchPolicy(create_strategy("random"), per_round=3, initial_random=3, acquisition="softrank", beta=0.0)
    candidates = [Example(i, i, "A") for i, _ in RANKED]
    scores = dict(RANKED)
    _, seed_set = policy.choose(1, scores, candidates, seed=1)
    assert seed_set == ["q0", "q1", "q2"]  # round 1's random scores are taken as they rank


def test_options_are_checked_and_pass_the_strategy_by():
    with pytest.raises(EladError, match="acquisition: one of top, softrank, power, softmax"):
        check_acquisition("gumbel", 1.0)
    with pytest.raises(EladError, match="beta must be a number >= 0"):
        check_acquisition("softrank", -1.0)
    assert create_strategy("entropy", options={"acquisition": "softrank", "beta": 2.0}).name == "entropy"


def test_softrank_draws_tied_scores_equally_often():
    # q1..q3 tie: the ranking broke the tie in some order, the draw must not favour the first of them
    tied = [("q0", Scored(0.9))] + [(f"q{i}", Scored(0.5)) for i in (1, 2, 3)] + [("q4", Scored(0.1))]
    counts = Counter(i for seed in range(3000) for i, _ in drawn_first(tied, 1, "softrank", 1.0, seed)[:1])
    # mid-rank 3 for the tie: p = (1/3) / (1 + 3 * 1/3 + 1/5) = 0.152 each; by position it would be 0.23 .. 0.12
    shares = [counts[f"q{i}"] / 3000 for i in (1, 2, 3)]
    assert max(shares) - min(shares) < 0.04 and all(abs(s - 0.152) < 0.03 for s in shares)
