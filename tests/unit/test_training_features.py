"""Training features: an example whose prompt leaves no room for its target is left out, and said so."""

import logging

import pytest

from elad.errors import EladError
from elad.students.common import IGNORE_INDEX
from elad.students.prompting import _fitting


def _pair(prompt: int, target: int, max_length: int) -> dict:
    labels = ([IGNORE_INDEX] * prompt + [7] * target)[:max_length]
    return {"input_ids": [1] * len(labels), "labels": labels}


def test_an_example_with_no_target_token_left_is_dropped_with_a_warning(caplog):
    features = [_pair(4, 4, 16), _pair(20, 4, 16), _pair(14, 4, 16)]  # fits, all prompt, target cut
    with caplog.at_level(logging.WARNING, logger="elad.students.prompting"):
        kept = _fitting(features, 16)
    assert kept == [features[0], features[2]]
    assert "1 of 3 training examples have prompts of training.max_length=16" in caplog.text
    assert "1 training examples reach training.max_length=16" in caplog.text


def test_step_by_step_needs_a_target_token_in_both_tasks():
    both = {"predict": _pair(4, 2, 16), "explain": _pair(4, 8, 16)}
    lost = {"predict": _pair(4, 2, 16), "explain": _pair(16, 8, 16)}
    assert _fitting([both, lost], 16) == [both]
    with pytest.raises(EladError, match="no training example fits training.max_length=16"):
        _fitting([lost], 16)
