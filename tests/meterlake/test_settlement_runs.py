"""Settlement runs (meterlake.settlement_runs): each run's cut-off day, instant and version (pure; no Spark)."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from meterlake import settlement_runs as runs
from meterlake.errors import UsageError


@pytest.mark.parametrize("day, run, cutoff", [
    pytest.param(date(2024, 10, 16), "SF", date(2024, 10, 23), id="SF: Wednesday + 5 working days"),
    pytest.param(date(2024, 10, 19), "SF", date(2024, 10, 25), id="SF: Saturday + 5 working days"),
    pytest.param(date(2024, 10, 16), "R1", date(2024, 11, 16), id="R1: a month"),
    pytest.param(date(2024, 1, 31), "R1", date(2024, 2, 29), id="R1: clamped to a leap February"),
    pytest.param(date(2024, 10, 16), "R2", date(2024, 12, 16), id="R2: two months"),
    pytest.param(date(2024, 10, 16), "R3", date(2025, 2, 16), id="R3: four months"),
    pytest.param(date(2024, 10, 16), "RF", date(2025, 12, 16), id="RF: fourteen months"),
    pytest.param(date(2024, 10, 16), "DF", date(2027, 2, 16), id="DF: twenty-eight months"),
])
def test_each_runs_cutoff_day(day, run, cutoff):
    assert runs.cutoff_day(day, run) == cutoff


def test_the_cutoff_is_the_end_of_the_cutoff_day_in_uk_time():
    # SF of 2024-10-16 closes at the end of Wednesday 23 October (BST): 23:00 UTC
    assert runs.cutoff_instant(date(2024, 10, 16), "SF") == datetime(2024, 10, 23, 23, 0, tzinfo=UTC)
    # R1 of 2024-10-27 closes at the end of 27 November (GMT): midnight UTC
    assert runs.cutoff_instant(date(2024, 10, 27), "R1") == datetime(2024, 11, 28, 0, 0, tzinfo=UTC)
    assert runs.cutoff_version(date(2024, 10, 16), "SF") == 1_729_724_400_000_000 - 1


def test_later_runs_never_cut_off_earlier():
    versions = [runs.cutoff_version(date(2024, 10, 16), r) for r in runs.RUNS]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_an_unknown_run_is_refused():
    with pytest.raises(UsageError, match="unknown settlement run"):
        runs.cutoff_day(date(2024, 10, 16), "R9")
    assert runs.check_run("sf") == "SF"
