"""UK clock time <-> UTC: the helpers that D0010 (a clock-time flow) and the generator's shapes rely on."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from meterlake import calendar as cal


@pytest.mark.parametrize("wall, fold, expected", [
    pytest.param(datetime(2016, 2, 22), 0, datetime(2016, 2, 22, tzinfo=UTC), id="winter midnight is GMT"),
    pytest.param(datetime(2016, 6, 1), 0, datetime(2016, 5, 31, 23, tzinfo=UTC), id="summer midnight is BST"),
    pytest.param(datetime(2016, 10, 30, 1, 30), 0, datetime(2016, 10, 30, 0, 30, tzinfo=UTC),
                 id="repeated hour, first (BST)"),
    pytest.param(datetime(2016, 10, 30, 1, 30), 1, datetime(2016, 10, 30, 1, 30, tzinfo=UTC),
                 id="repeated hour, second (GMT)"),
    pytest.param(datetime(2016, 3, 27, 2, 0), 0, datetime(2016, 3, 27, 1, 0, tzinfo=UTC),
                 id="first clock time after the spring gap"),
])
def test_from_local_clock(wall, fold, expected):
    assert cal.from_local_clock(wall, fold=fold) == expected


def test_from_local_clock_refuses_a_time_in_the_spring_gap_and_an_aware_datetime():
    with pytest.raises(ValueError, match="does not exist"):
        cal.from_local_clock(datetime(2016, 3, 27, 1, 30))
    with pytest.raises(ValueError, match="already has a time zone"):
        cal.from_local_clock(datetime(2016, 3, 27, 1, 30, tzinfo=UTC))


@pytest.mark.parametrize("instant, expected", [
    pytest.param(datetime(2016, 10, 30, 0, 30, tzinfo=UTC), datetime(2016, 10, 30, 1, 30), id="BST"),
    pytest.param(datetime(2016, 10, 30, 1, 30, tzinfo=UTC), datetime(2016, 10, 30, 1, 30),
                 id="GMT, same wall"),
    pytest.param(datetime(2016, 3, 27, 1, 0, tzinfo=UTC), datetime(2016, 3, 27, 2, 0), id="after spring"),
])
def test_to_local_clock(instant, expected):
    assert cal.to_local_clock(instant) == expected


def test_to_local_clock_refuses_naive():
    with pytest.raises(ValueError, match="naive"):
        cal.to_local_clock(datetime(2016, 1, 1))
