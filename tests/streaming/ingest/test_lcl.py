"""LCL: timestamps are UTC period ends; the published files' quirks; the public samples."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from streaming.ingest import ingest_file, validated_file
from tests.streaming.ingest.conftest import NOW


def test_period_ends_become_interval_starts_on_the_autumn_clock_change(write):
    # GIVEN period ends around 2013-10-27, the 50-period day that starts at 2013-10-26T23:00Z
    text = """\
LCLid,tstp,energy(kWh/hh)
MAC000002,2013-10-26 23:30:00, 0.219
MAC000002,2013-10-27 00:00:00, 0.241
MAC000002,2013-10-27 01:00:00, 0.191
MAC000002,2013-10-27 01:30:00, 0.235
MAC000002,2013-10-28 00:00:00, 0.301
"""
    with validated_file(write("MAC000002.csv", text), now=NOW) as validated:
        reads = validated.reads_table()
    # THEN each read starts 30 minutes before its timestamp, in these settlement periods
    assert reads.column("interval_start_utc").to_pylist() == [
        datetime(2013, 10, 26, 23, 0, tzinfo=UTC), datetime(2013, 10, 26, 23, 30, tzinfo=UTC),
        datetime(2013, 10, 27, 0, 30, tzinfo=UTC), datetime(2013, 10, 27, 1, 0, tzinfo=UTC),
        datetime(2013, 10, 27, 23, 30, tzinfo=UTC)]
    assert reads.column("settlement_date").to_pylist() == [date(2013, 10, 27)] * 5
    assert reads.column("settlement_period").to_pylist() == [1, 2, 4, 5, 50]
    assert reads.column("value").to_pylist() == [0.219, 0.241, 0.191, 0.235, 0.301]
    assert set(reads.column("register_id").to_pylist()) == {"S"}
    # AND the file's version is its latest period end, 2013-10-28T00:00:00Z
    assert reads.column("source_version").unique().to_pylist() == [1_382_918_400_000_000]


def test_the_raw_shape_with_duplicates_nulls_and_an_off_grid_null(write):
    text = """\
LCLid,DateTime,KWH/hh (per half hour)\r
MAC000002,2012-10-12 00:30:00.0000000, 0 \r
MAC000002,2012-10-12 01:00:00.0000000, 0.2 \r
MAC000002,2012-10-12 01:00:00.0000000, 0.2 \r
MAC000002,2012-10-12 01:30:00.0000000,Null\r
MAC000002,2012-12-19 12:37:27.0000000,Null\r
MAC000002,2012-10-12 01:00:00.0000000, 0.3 \r
"""
    with validated_file(write("MAC000002_raw.csv", text), now=NOW) as validated:
        result = validated.result
        quarantine = validated.quarantine_table().to_pylist()
        assert validated.reads_table().column("value").to_pylist() == [0.0, 0.2]
    assert (result.reads, result.duplicates, result.quarantined) == (2, 1, 3)
    assert [(q["source_line"], q["field"], q["reason"]) for q in quarantine] == [
        (5, "KWH/hh (per half hour)", "missing_value"),
        (6, "DateTime", "off_grid_timestamp"),
        (7, "value", "conflicting_duplicate"),
    ]


def test_the_original_four_column_shape(write):
    text = ("LCLid,stdorToU,DateTime,KWH/hh (per half hour) \n"
            "MAC000003,ToU,2013-01-01 00:30:00.0000000, 0.5 \n")
    with validated_file(write("x.csv", text), now=NOW) as validated:
        row = validated.reads_table().to_pylist()[0]
    assert (row["meter_point"], row["value"], row["interval_start_utc"]) == (
        "MAC000003", 0.5, datetime(2013, 1, 1, tzinfo=UTC))


@pytest.mark.realdata
def test_the_public_household_file_ingests_as_a_user_expects(realdata):
    # 24,158 rows: 17 exact duplicate rows, one Null at the off-grid time 12:37:27, the rest good
    result = ingest_file(realdata / "lcl" / "MAC000002_raw.csv", now=NOW)
    assert (result.status, result.format, result.lines, result.reads, result.duplicates, result.quarantined,
            result.reasons) == ("accepted", "lcl", 24159, 24140, 17, 1, {"off_grid_timestamp": 1})


@pytest.mark.realdata
def test_a_gzipped_household_year_is_a_full_year_of_periods(realdata):
    result = ingest_file(realdata / "lcl" / "halfhourly_2013_100_households" / "MAC000002.csv.gz", now=NOW)
    assert (result.status, result.reads, result.quarantined, result.duplicates) == ("accepted", 17520, 0, 0)
