"""bench/label_noise.py: each round after the seed set pairs its accuracy gain with the wrong answers it bought."""

from types import SimpleNamespace

import pytest

from tests.conftest import load_bench


def _run(accuracy, annotations, agreeing):
    """Rounds 0.. with cumulative annotations and cumulative teacher answers agreeing with gold."""
    rows = [{"round": r, "accuracy": acc, "annotations": n, "teacher_checked": n,
             "teacher_agrees": (ok / n if n else None)}
            for r, (acc, n, ok) in enumerate(zip(accuracy, annotations, agreeing))]
    return SimpleNamespace(rows=rows)


def test_each_round_after_the_seed_set_gives_its_gain_and_its_wrong_answers():
    bench = load_bench("label_noise")
    run = _run([0.30, 0.40, 0.35, 0.50], [0, 4, 8, 12], [0, 4, 6, 9])
    steps = bench.round_steps(run)
    # round 1 (the seed set, the same for every strategy) is left out; round 2 bought 2 wrong of 4, round 3 one
    assert steps == [(pytest.approx(-0.05), pytest.approx(2.0)), (pytest.approx(0.15), pytest.approx(1.0))]


def test_a_round_whose_round_before_was_not_evaluated_is_left_out():
    bench = load_bench("label_noise")
    run = _run([0.30, 0.40, None, 0.50], [0, 4, 8, 12], [0, 4, 6, 9])
    assert bench.round_steps(run) == []


def test_the_correlation_interval_holds_the_correlation_and_narrows_with_more_pairs():
    bench = load_bench("label_noise")
    few, many = bench.correlation_interval(0.3, 10), bench.correlation_interval(0.3, 100)
    assert few[0] < many[0] < 0.3 < many[1] < few[1]
