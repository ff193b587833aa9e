"""Data quality on literal clean reads: completeness, estimated share, lateness, quarantined and flagged reads."""
from __future__ import annotations

from datetime import date

import pytest

from jobs.lakeio import calendar_frame
from jobs.quality import job as quality
from tests.jobs.helpers import after, starts
from tests.jobs.settle.test_transform import _reg, _registry

DAY = date(2024, 10, 27)  # 50 periods


def _row(meter, period, *, kind="interval", method=None, quarantined=False, flags=(), version=None, value=0.5):
    start = starts(DAY, [period])[0]
    return (meter, "S1", "electricity", "S", kind, start, DAY, period, value, "kWh",
            "estimated" if method else "actual", "f", 1, None, version, None, None, 1, list(flags), quarantined,
            method is not None, method)


@pytest.fixture(scope="module")
def measured(spark):
    on_time = after(DAY, 2)
    late = after(DAY, 24 * 8)  # after SF (+5 working days)
    rows = [_row("FULL", p, version=on_time) for p in range(1, 51)]
    # 40 received (two late), 5 source estimates, 3 interpolated, 2 missing; one quarantined read, one spike
    rows += [_row("GAPPY", p, version=late if p <= 2 else on_time) for p in range(1, 41)]
    rows += [_row("GAPPY", p, method="source", version=on_time) for p in range(41, 46)]
    rows += [_row("GAPPY", p, method="interpolation") for p in range(46, 49)]
    rows += [_row("GAPPY", 1, quarantined=True, flags=["future"], version=on_time, value=9.0)]
    rows += [_row("GAPPY", 3, flags=["spike"], version=late, value=7.0)]
    rows += [_row("GAPPY", 1, kind="register", version=on_time, value=1234.0)]
    clean = spark.createDataFrame(rows, quality.clean_schema())
    registry = _registry(spark, [_reg("SILENT")])
    out = quality.transform(clean, calendar_frame(spark, [DAY]), registry, quality.sf_cutoffs(spark, [DAY]),
                            days=[DAY])
    return {r.meter_point: r.asDict() for r in out.collect()}


def test_a_complete_meter_day(measured):
    r = measured["FULL"]
    periods = (r["expected_periods"], r["received_periods"], r["estimated_periods"], r["missing_periods"])
    assert periods == (50, 50, 0, 0)
    assert (r["completeness"], r["estimated_share"], r["late_reads"]) == (1.0, 0.0, 0)
    assert (r["first_arrival_h"], r["last_arrival_h"]) == (2.0, 2.0)


def test_received_estimated_and_missing_periods_add_up_to_the_calendar(measured):
    r = measured["GAPPY"]
    assert (r["received_periods"], r["source_estimated_periods"], r["estimated_periods"], r["missing_periods"]) == (
        45, 5, 3, 2)
    assert r["completeness"] == pytest.approx(45 / 50)
    assert r["estimated_share"] == pytest.approx(8 / 50)


def test_lateness_is_measured_from_the_end_of_the_settlement_day(measured):
    r = measured["GAPPY"]
    assert (r["first_arrival_h"], r["last_arrival_h"], r["late_reads"]) == (2.0, 192.0, 3)


def test_quarantined_and_flagged_reads_are_counted(measured):
    r = measured["GAPPY"]
    assert (r["quarantined_reads"], r["flagged_reads"], r["register_reads"]) == (1, 2, 1)
    assert r["flag_counts"] == {"future": 1, "spike": 1}


def test_a_registered_meter_without_reads_is_expected_and_missing(measured):
    r = measured["SILENT"]
    assert (r["expected_periods"], r["received_periods"], r["missing_periods"], r["completeness"]) == (50, 0, 50, 0.0)
    assert r["flag_counts"] == {}


def test_late_means_after_the_dates_sf_cutoff(spark):
    row = quality.sf_cutoffs(spark, [DAY]).collect()[0]
    # SF of Sunday 27 October 2024: five working days on, sources created by the end of Friday 1 November
    assert row.sf_cutoff_version == 1730505599999999  # 2024-11-02T00:00:00Z less 1 µs


def test_lines_rejected_at_ingest_are_counted_on_their_meter_day(spark):
    # GIVEN GAPPY's clean reads and three lines of it rejected at ingest that day, one of an unknown meter
    clean = spark.createDataFrame([_row("GAPPY", p) for p in range(1, 48)], quality.clean_schema())
    ingest = spark.createDataFrame([(DAY, "GAPPY", 3), (DAY, "NOBODY", 1)],
                                   "settlement_date date, meter_point string, ingest_quarantined_lines int")
    # WHEN quality is measured with the ingest counts
    out = quality.transform(clean, calendar_frame(spark, [DAY]), _registry(spark, [_reg("SILENT")]),
                            quality.sf_cutoffs(spark, [DAY]), days=[DAY], ingest=ingest)
    # THEN the meter-day has them, an expected meter without any has 0, and a meter not expected adds no row
    assert {r.meter_point: r.ingest_quarantined_lines for r in out.collect()} == {"GAPPY": 3, "SILENT": 0}


def test_without_the_ingest_counts_they_are_unknown_not_zero(measured):
    assert {m: r["ingest_quarantined_lines"] for m, r in measured.items()} == {"FULL": None, "GAPPY": None,
                                                                                "SILENT": None}
