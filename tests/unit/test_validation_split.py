"""The validation split: carved from the pool side, from questions with gold answers, never from the test set."""

from types import SimpleNamespace

import pytest

from elad.config import ExperimentConfig
from elad.errors import EladError
from elad.loop.build import load_questions
from elad.tasks import Example


def _task(pool_gold: int, pool_blank: int):
    rows = {"train": [Example(f"g{i}", f"q{i}", "4") for i in range(pool_gold)]
                     + [Example(f"b{i}", f"q{i}", "") for i in range(pool_blank)],
            "test": [Example(f"t{i}", f"t{i}", "4") for i in range(5)]}
    return SimpleNamespace(default_splits=("train", "test"), load=lambda split: rows[split])


def _config(size: int) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"task": {"pool_size": None, "test_size": None, "validation_size": size}})


def test_validation_questions_have_gold_and_stay_out_of_the_pool():
    pool, test, validation = load_questions(_config(4), _task(pool_gold=6, pool_blank=5))
    assert len(validation) == 4 and all(e.answer for e in validation)
    assert not {e.id for e in validation} & {e.id for e in pool} and len(pool) == 7 and len(test) == 5


def test_too_few_questions_with_gold_name_the_validation_setting():
    with pytest.raises(EladError, match="task.validation_size: 8 asked, but only 6 questions of split 'train'"):
        load_questions(_config(8), _task(pool_gold=6, pool_blank=5))
