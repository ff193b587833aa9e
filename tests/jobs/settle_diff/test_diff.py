"""The run diff on literal settled half-hours: one meter per reason."""
from __future__ import annotations

from datetime import date

import pytest

from jobs.settle_diff.job import diff

DAY = date(2024, 10, 16)
COLUMNS = "meter_point string, settlement_date date, settlement_period int, value_wh long, method string, " \
          "source_version long, source_file string"

# (meter, earlier run's value and method, later run's value and method)
CASES = {
    "LATE": ((None, None), (400, "actual")),
    "NEWEST": ((None, None), (300, "profile")),
    "REPLACED": ((500, "interpolation"), (450, "actual")),
    "SAME-VALUE-REPLACED": ((500, "profile"), (500, "actual")),
    "REVISED": ((500, "profile"), (520, "interpolation")),
    "DROPPED": ((500, "proration"), (None, None)),
    "CORRECTED": ((500, "actual"), (550, "actual")),
    "WITHDRAWN": ((500, "actual"), (480, "interpolation")),
    "UNCHANGED": ((500, "actual"), (500, "actual")),
    "UNCHANGED-ESTIMATE": ((500, "profile"), (500, "profile")),
}


@pytest.fixture(scope="module")
def changes(spark):
    def rows(side):
        out = []
        for meter, runs in CASES.items():
            value, method = runs[side]
            version = None if method not in ("actual", "source_estimate") else 100 + side
            out.append((meter, DAY, 7, value, method, version, f"file-{side}" if version else None))
        return spark.createDataFrame(out, COLUMNS)

    result = diff(rows(0), rows(1), from_run="SF", to_run="R1").collect()
    return {r.meter_point: r for r in result}


@pytest.mark.parametrize("meter, reason", [
    ("LATE", "late_read"), ("NEWEST", "newly_estimated"), ("REPLACED", "estimate_replaced"),
    ("SAME-VALUE-REPLACED", "estimate_replaced"), ("REVISED", "estimate_revised"), ("DROPPED", "estimate_dropped"),
    ("CORRECTED", "correction"), ("WITHDRAWN", "withdrawn"),
])
def test_each_change_gets_its_reason(changes, meter, reason):
    assert changes[meter].reason == reason


def test_unchanged_half_hours_are_not_listed(changes):
    assert "UNCHANGED" not in changes and "UNCHANGED-ESTIMATE" not in changes
    assert len(changes) == 8


def test_a_change_carries_both_values_and_the_new_reads_lineage(changes):
    r = changes["CORRECTED"]
    assert (r.from_kwh, r.to_kwh, r.delta_kwh, r.from_source_version, r.to_source_version, r.to_source_file) == (
        0.5, 0.55, pytest.approx(0.05), 100, 101, "file-1")
    late = changes["LATE"]
    assert (late.from_kwh, late.to_kwh, late.delta_kwh, late.from_run, late.to_run) == (None, 0.4, 0.4, "SF", "R1")
