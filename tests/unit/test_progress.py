"""Progress records when the output is not a terminal (a job log), and nothing but a bar on one."""

import io

from rich.console import Console

from elad.loop import progress


def test_a_log_gets_plain_records_at_start_while_running_and_at_the_end(monkeypatch):
    out = io.StringIO()
    clock = iter([0.0, 10.0, 40.0, 45.0, 75.0, 80.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    with progress.stage(Console(file=out, width=200), "round 1 · annotate", 32) as update:
        update(4)  # 10 s: too soon for a record
        update(16)  # 40 s
        update(20)  # 45 s
        update(32)  # 75 s
    lines = out.getvalue().splitlines()
    assert lines == [
        "round 1 · annotate: started (32)",
        "round 1 · annotate: 16/32 (50%), 40 s",
        "round 1 · annotate: 32/32 (100%), 75 s",
        "round 1 · annotate: done 32/32 (100%) in 80 s",
    ]


def test_a_stage_without_a_total_says_when_it_ends():
    out = io.StringIO()
    with progress.stage(Console(file=out, width=200), "round 2 · train on 64"):
        pass
    assert out.getvalue().splitlines()[0] == "round 2 · train on 64: started"
    assert out.getvalue().splitlines()[1].startswith("round 2 · train on 64: done in ")


def test_a_terminal_gets_the_bar_and_no_records():
    out = io.StringIO()
    with progress.stage(Console(file=out, width=200, force_terminal=True), "round 1 · annotate", 2) as update:
        update(2)
    assert "started" not in out.getvalue()


def test_a_stage_group_samples_with_a_seed_no_other_round_or_run_seed_uses():
    from elad.loop.explain import group_seed
    from elad.loop.stages import round_seed

    assert group_seed(round_seed(3, 2), 0) == round_seed(3, 2)  # one group: the round's own seed
    rounds = {round_seed(seed, round_) for seed in range(4) for round_ in range(20)}
    later_groups = {group_seed(round_seed(seed, round_), index) for seed in range(4) for round_ in range(20)
                    for index in range(1, 20)}
    assert not rounds & later_groups
    assert len(later_groups) == 4 * 20 * 19
