"""How long a trained student may write: fitted to the lengths of what it was taught."""

import math

import pytest

from elad.students.common import fitted_new_tokens


def test_the_fitted_length_is_a_quarter_above_the_95th_percentile_within_its_bounds():
    lengths = list(range(1, 101))  # the 95th percentile (nearest rank) of 1..100 is 95
    assert fitted_new_tokens(lengths, cap=512) == math.ceil(1.25 * 95) + 8 == 127
    assert fitted_new_tokens(list(reversed(lengths)), cap=512) == 127  # order does not matter
    assert fitted_new_tokens([3, 4], cap=512) == 16  # never below 16
    assert fitted_new_tokens(lengths, cap=100) == 100 and fitted_new_tokens([3], cap=8) == 8  # the cap wins
    assert fitted_new_tokens([40] * 19 + [400], cap=512) == 58  # one outlier in 20 is past the 95th percentile
    with pytest.raises(ValueError):
        fitted_new_tokens([], cap=512)
