"""The clean job's transform on literal rows: what clean_reads holds for a day."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from jobs.clean import job as clean
from jobs.lakeio import calendar_frame
from tests.jobs.helpers import day_of, frame, reads, starts
from tests.jobs.settle.test_transform import _registry

DAY = date(2024, 10, 16)


@pytest.fixture(scope="module")
def rows(spark):
    tables = [
        day_of("M", DAY, 0.5, skip=(7,)),  # period 7 missing: interpolated
        reads("M", [starts(DAY, [8])[0] + timedelta(minutes=7)], 0.9),  # off grid: quarantined
        reads("M", starts(DAY, [9]), 0.7, version=2_000_000_000_000_000),  # a correction of period 9
        reads("M", [starts(DAY, [1])[0]], 4000.0, kind="register"),
        day_of("M", DAY - timedelta(days=1), 0.5),  # history: loaded, not output
        reads("DEV", starts(DAY, [3]), 250.0, kind="device", unit="W", register=None),  # not cleaned
    ]
    days = sorted({DAY, DAY - timedelta(days=1)})
    out = clean.transform(frame(spark, *tables),
                          calendar_frame(spark, days), _registry(spark, []), days=[DAY])
    assert tuple(out.columns) == clean.COLUMNS
    return [r.asDict() for r in out.collect()]


def test_only_the_days_interval_and_register_reads_are_output(rows):
    assert {r["settlement_date"] for r in rows} == {DAY}
    assert {r["read_kind"] for r in rows} == {"interval", "register"}
    assert len([r for r in rows if r["read_kind"] == "interval"]) == 47 + 1 + 1  # reads, the off-grid one, estimate


def test_the_live_version_is_output_with_its_version_count(rows):
    nine = [r for r in rows if r["settlement_period"] == 9 and r["read_kind"] == "interval"]
    assert [(r["value"], r["versions"]) for r in nine] == [(0.7, 2)]


def test_a_quarantined_read_is_kept_and_marked(rows):
    off = [r for r in rows if r["is_quarantined"]]
    assert [(r["value"], r["flags"]) for r in off] == [(0.9, ["off_grid"])]


def test_an_estimated_half_hour_is_a_row_marked_with_its_method(rows):
    est = [r for r in rows if r["is_estimated"]]
    assert len(est) == 1
    r = est[0]
    assert (r["settlement_period"], r["value"], r["quality"], r["estimation_method"], r["meter_serial"]) == (
        7, 0.5, "estimated", "interpolation", "E1")
    assert (r["register_id"], r["source_version"], r["source_file"], r["flags"]) == (None, None, None, [])
