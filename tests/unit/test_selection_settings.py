"""The selection settings checked before a run: the knowledge-transferred stop rule (loop.stop_uncertainty),
the diversity option, and what a step-by-step student can answer."""

import pytest

from elad.config import ExperimentConfig, LoopConfig
from elad.errors import EladError
from elad.loop.build import build_selection
from elad.loop.stopping import transferred
from elad.selection import create_strategy
from elad.selection.random import RandomStrategy
from elad.store import RunStore


def _store(tmp_path, scores: list[float], parts: list[dict]) -> RunStore:
    store = RunStore(tmp_path / "run.db")
    store.start_round(2)
    store.add_selection(2, "egss", [(f"q{i}", s, p) for i, (s, p) in enumerate(zip(scores, parts))], chosen={"q0"})
    return store


def test_the_rule_reads_the_inter_part_of_a_scaled_egss_score(tmp_path):
    # rank-scaled scores average 0.5 whatever the pool: only the inter part says how unsure the student is
    store = _store(tmp_path, [1.0, 0.5, 0.0], [{"inter": 0.1}, {"inter": 0.0}, {"inter": 0.2}])
    loop = LoopConfig(stop_uncertainty=0.2)
    assert "mean pool uncertainty 0.100 is below 0.2" in transferred(loop, store, 2, create_strategy("egss"))
    assert transferred(LoopConfig(stop_uncertainty=0.05), store, 2, create_strategy("egss")) is None


def test_a_raw_score_is_read_as_it_is_and_a_seed_set_draw_not_at_all(tmp_path):
    store = _store(tmp_path, [0.3, 0.1], [{}, {}])
    loop = LoopConfig(stop_uncertainty=0.6)
    assert "0.200 is below 0.6" in transferred(loop, store, 2, create_strategy("entropy"))
    # the seed set's uniform draws (mean about 0.5) would stop a run before it bought anything
    assert transferred(loop, store, 2, RandomStrategy()) is None


def _config(strategy: str, **more) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"selection": {"strategy": strategy, **more.pop("selection", {})},
                                            "loop": {"stop_uncertainty": 0.1, **more}})


@pytest.mark.parametrize("strategy, weight", [("random", 0.5), ("oracle", 0.5), ("egss", 1.0)])
def test_a_strategy_with_no_uncertainty_to_average_is_refused_before_the_run(strategy, weight):
    config = _config(strategy, selection={"weight": weight})
    with pytest.raises(EladError, match=f"loop.stop_uncertainty: strategy '{strategy}'.*gives no uncertainty"):
        build_selection(config, config.task.open(), console=None)


def test_a_diversity_out_of_range_is_refused_before_the_run():
    config = ExperimentConfig.model_validate({"selection": {"strategy": "entropy", "options": {"diversity": 1.5}}})
    with pytest.raises(EladError, match=r"selection.options.diversity must be a number in \(0, 1\], not 1.5"):
        build_selection(config, config.task.open(), console=None)
    fine = ExperimentConfig.model_validate({"selection": {"strategy": "egss", "options": {"diversity": "0.8"}}})
    assert build_selection(fine, fine.task.open(), console=None)[1].diversity == 0.8


def test_a_strategy_reading_answers_after_explanations_warns_a_predict_only_student(capsys):
    from rich.console import Console

    for inference, warned in (("predict", True), ("cot", False)):
        config = ExperimentConfig.model_validate({"selection": {"strategy": "egss"},
                                                  "training": {"objective": "step_by_step", "inference": inference}})
        build_selection(config, config.task.open(), Console(width=200))
        assert ("its explain task is never taught to give one" in capsys.readouterr().out) == warned
