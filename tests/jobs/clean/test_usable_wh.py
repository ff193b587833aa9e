"""The usable interval reads and their whole Wh (jobs/clean/vee.py: what settlement and billing sum)."""
from __future__ import annotations

import pytest

from jobs.clean import vee


@pytest.mark.parametrize("x, expected", [
    pytest.param("0.5D", 1, id="a half goes up"),
    pytest.param("2.5D", 3, id="a half goes up, whatever the parity"),
    pytest.param("-0.5D", -1, id="a negative half goes away from zero"),
    pytest.param("-2.5D", -3, id="a negative half, odd"),
    pytest.param("0.49999999999999994D", 0, id="the double just below a half"),
    pytest.param("-0.49999999999999994D", 0, id="the double just above minus a half"),
    pytest.param("2.4999999999999996D", 2, id="just below 2.5"),
    pytest.param("1234.5000000000002D", 1235, id="just above a half"),
    pytest.param("123456789012.5D", 123456789013, id="large"),
    pytest.param("CAST(NULL AS DOUBLE)", None, id="null"),
])
def test_half_up_rounds_halves_away_from_zero_as_sparks_round_does(spark, x, expected):
    got, sparks = spark.sql(f"SELECT {vee.half_up_sql('x')} AS got, CAST(round(x) AS BIGINT) AS sparks "
                            f"FROM (SELECT {x} AS x)").first()
    assert (got, sparks) == (expected, expected)


def test_usable_intervals_keep_energy_reads_in_whole_wh(spark):
    rows = [  # read_kind, value, unit, is_quarantined, quality
        ("interval", 0.25, "kWh", False, "actual"),
        ("interval", 600.0, "Wh", False, "estimated"),
        ("interval", 1.0, "kWh", True, "actual"),       # quarantined
        ("interval", 1.0, "kWh", False, "withdrawn"),   # withdrawn
        ("interval", 1.0, "kW", False, "actual"),       # not energy
        ("register", 5.0, "kWh", False, "actual"),      # a register read
    ]
    df = spark.createDataFrame(rows, "read_kind string, value double, unit string, is_quarantined boolean, "
                                     "quality string")
    got = sorted(tuple(r) for r in vee.usable_intervals(df).select("value", "value_wh").collect())
    assert got == [(0.25, 250), (600.0, 600)]
