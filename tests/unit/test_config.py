import pytest
from pydantic import ValidationError

from elad.config import ExperimentConfig, TaskConfig, load_config, parse_config
from elad.errors import EladError


def test_defaults_round_trip_through_yaml():
    config = ExperimentConfig(name="x", seed=3)
    assert parse_config(config.to_yaml()) == config


def test_unknown_key_is_named_with_its_line():
    text = "name: a\nloop:\n  rounds: 2\n  per_rnd: 5\n"
    with pytest.raises(EladError) as error:
        parse_config(text, source="exp.yaml")
    message = str(error.value)
    assert "exp.yaml" in message
    assert "loop.per_rnd (line 4): unknown key" in message


def test_wrong_type_names_the_key():
    with pytest.raises(EladError) as error:
        parse_config("training:\n  epochs: many\n")
    assert "training.epochs (line 2)" in str(error.value)


def test_unregistered_strategy_lists_the_known_ones():
    with pytest.raises(EladError) as error:
        parse_config("selection:\n  strategy: psychic\n")
    assert "selection.strategy (line 2): unknown selection strategy 'psychic'" in str(error.value)
    assert "random" in str(error.value)


def test_overrides_apply_dotted_keys_and_are_validated():
    config = parse_config("name: a\n", overrides={"loop.rounds": 5, "student.model": "smollm2-135m"})
    assert config.loop.rounds == 5 and config.student.model == "smollm2-135m"
    with pytest.raises(EladError, match="loop.rounds"):
        parse_config("name: a\n", overrides={"loop.rounds": 0})


def test_broken_yaml_reports_the_line():
    with pytest.raises(EladError, match="line 2"):
        parse_config("name: a\nseed: 1: 2\nloop: {}\n")


def test_missing_file(tmp_path):
    with pytest.raises(EladError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_packaged_demo_config_is_valid():
    from importlib import resources

    config = load_config(str(resources.files("elad") / "configs" / "demo.yaml"))
    assert config.task.name == "esnli" and config.teacher.backend == "replay"


def test_a_cached_prompt_price_above_the_prompt_price_is_refused():
    from elad.config import TeacherConfig

    assert TeacherConfig(price_prompt=1.0, price_cached_prompt=0.5).price_cached_prompt == 0.5
    with pytest.raises(ValidationError, match="price_cached_prompt must not exceed price_prompt"):  # pydantic's own error
        TeacherConfig(price_prompt=1.0, price_cached_prompt=2.0)


def test_stopping_rules_need_a_validation_split():
    from elad.config import ExperimentConfig

    with pytest.raises(ValueError, match="loop.patience reads the validation accuracy: set task.validation_size"):
        ExperimentConfig.model_validate({"loop": {"patience": 2}})
    config = ExperimentConfig.model_validate({"loop": {"target_accuracy": 0.8}, "task": {"validation_size": 50}})
    assert config.task.validation_size == 50


def test_a_dollar_budget_needs_the_teachers_prices():
    from elad.config import ExperimentConfig

    for budget in ("budget", "round_budget"):
        with pytest.raises(ValueError, match=f"loop.{budget}.dollars needs the teacher's prices"):
            ExperimentConfig.model_validate({"loop": {budget: {"dollars": 5}}})
    config = ExperimentConfig.model_validate({"loop": {"budget": {"dollars": 5}}, "teacher": {"price_completion": 0.6}})
    assert config.loop.budget.dollars == 5


def test_the_task_opens_with_its_configured_prompt_layout():
    settings = TaskConfig(name="esnli", instruction_first=True)
    task = settings.open()
    example = task.load("test")[0]
    assert task.prompt(example) == f"{task.instruction}\n{example.question}"
    assert TaskConfig(name="esnli").open().prompt(example) == f"{example.question}\n{task.instruction}"


def test_a_bare_yaml_off_is_the_gold_check_off_and_round_trips():
    # YAML 1.1 reads `off` as false; the documented spelling must not be an error
    config = parse_config("annotation:\n  gold_check: off\n")
    assert config.annotation.gold_check == "off"
    assert parse_config(config.to_yaml()) == config
    assert parse_config("annotation:\n  gold_check: reask\n").annotation.gold_check == "reask"
    with pytest.raises(EladError, match="gold_check"):
        parse_config("annotation:\n  gold_check: true\n")
