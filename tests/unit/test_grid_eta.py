"""The grid's time-to-finish estimate in `elad status`."""

from elad.loop.grid import hours_left


def _cell(state: str, hours: float) -> dict:
    return {"state": state, "hours": hours}


def test_unfinished_cells_are_counted_at_the_finished_cells_pace_less_what_they_ran():
    cells = [_cell("finished", 1.0), _cell("finished", 2.0), _cell("in round 3", 0.5), _cell("not started", 0.0),
             _cell("in round 4", 2.5)]  # already past the pace: nothing more counted for it
    assert hours_left(cells) == 1.0 + 1.5 + 0.0


def test_no_estimate_before_a_cell_has_finished():
    assert hours_left([_cell("in round 2", 0.4), _cell("not started", 0.0)]) is None
    assert hours_left([_cell("finished", 1.2)]) == 0.0
