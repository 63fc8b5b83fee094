"""The dry run's arithmetic (loop/plan.py) on the packaged e-SNLI sample, with words as tokens."""

import pytest

from elad.config import ExperimentConfig
from elad.loop.plan import plan_run


def words(text: str) -> int:
    return len(text.split())


def config(**sections) -> ExperimentConfig:
    base = {"task": {"name": "esnli", "pool_size": 40, "test_size": 10},
            "teacher": {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1", "max_tokens": 100},
            "loop": {"rounds": 3, "per_round": 4}}
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return ExperimentConfig.model_validate(base)


def test_calls_per_item_follow_the_annotator():
    cot = plan_run(config(), words)
    assert [r.items for r in cot.rounds] == [4, 4, 4] and cot.calls == 12
    # every call's worst case holds max_tokens, and the prompt with the ledger's margin
    assert all(r.worst_tokens > 4 * 100 and r.expected_tokens < r.worst_tokens for r in cot.rounds)
    reask = plan_run(config(annotation={"gold_check": "reask"}), words)
    assert reask.calls == 24 and reask.worst_tokens == pytest.approx(2 * cot.worst_tokens, rel=0.01)
    replay = plan_run(config(teacher={"backend": "replay", "model": "palm-540b"}, annotation={"gold_check": "reask"}),
                      words)
    assert replay.calls == 12  # a recording is not asked again
    clear = plan_run(config(annotation={"method": "clear"}), words)
    assert clear.calls == 36  # two reviews and a continuation per item
    assert clear.worst_tokens > 3 * cot.worst_tokens * 0.9  # each review carries the student's explanation


def test_rounds_stop_where_the_pool_ends_and_the_budget_cut_is_found():
    short = plan_run(config(task={"pool_size": 6}), words)
    assert [r.items for r in short.rounds] == [4, 2, 0]
    whole = plan_run(config(), words)
    per_item = whole.rounds[0].worst_tokens / 4
    tight = plan_run(config(loop={"budget": {"tokens": int(5.5 * per_item)}}), words)
    round_, items = tight.budget_cut["worst"]
    assert round_ == 2 and 4 <= items <= 5
    # a round cap defers items to the next round instead of stopping the run
    capped = plan_run(config(loop={"round_budget": {"calls": 3}, "budget": {"calls": 7}}), words)
    assert capped.budget_cut["worst"] == (3, 7)
