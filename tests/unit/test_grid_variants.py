"""Grid strategies drawn by a stochastic acquisition: `name+acquisition[:beta]`, labelled apart in reports."""

import os

import pytest

from elad.config import SelectionConfig
from elad.errors import EladError
from elad.loop.grid import strategy_variant
from elad.store.rundir import strategy_label


@pytest.mark.parametrize("spec, expected", [
    ("egss", ("egss", {})),
    ("egss+softrank", ("egss", {"acquisition": "softrank"})),
    ("entropy+power:2", ("entropy", {"acquisition": "power", "beta": 2.0})),
])
def test_a_variant_names_its_strategy_and_acquisition(spec, expected):
    assert strategy_variant(spec) == expected


@pytest.mark.parametrize("spec", ["egss+bogus", "egss+softrank:x", "egss+power:-1"])
def test_a_bad_variant_is_refused_with_its_spelling(spec):
    with pytest.raises(EladError, match="name\\+acquisition"):
        strategy_variant(spec)


def test_labels_round_trip_the_variant_and_leave_plain_strategies_alone():
    for spec in ("egss", "egss+softrank", "entropy+power:2"):
        name, options = strategy_variant(spec)
        assert strategy_label(SelectionConfig(strategy=name, options=options)) == spec
    assert strategy_label({"strategy": "egss", "options": {"acquisition": "top", "beta": 3}}) == "egss"


def test_each_worker_shard_gets_the_seed_set_choice_and_writes_no_results_of_its_own(tmp_path):
    from elad.config import ExperimentConfig
    from elad.loop.grid import _shard_command

    config = ExperimentConfig()
    shared = _shard_command(tmp_path / "c.yaml", [], ["egss"], ["cot"], 2, tmp_path / "out", (1, 2), config)
    apart = _shard_command(tmp_path / "c.yaml", [], ["egss"], ["cot"], 2, tmp_path / "out", (1, 2), config,
                           share_seed_set=False)
    assert "--no-results" in shared and "--no-share-seed-set" not in shared
    assert "--no-share-seed-set" in apart and "--shard" in apart
    # a shard is `elad grid` in a process that ends with the grid that started it
    assert shared[1:4] == ["-m", "elad.children", str(os.getpid())] and shared[4] == "grid"


def test_an_unknown_strategy_in_a_grid_is_one_line_naming_the_cell():
    from elad.config import ExperimentConfig
    from elad.loop.grid import cell_config

    with pytest.raises(EladError) as caught:
        cell_config(ExperimentConfig(), "psychic", "cot", 0)
    assert str(caught.value).startswith("grid cell psychic-cot-s0: selection.strategy: unknown selection strategy")
    assert "\n" not in str(caught.value) and "pydantic" not in str(caught.value)
