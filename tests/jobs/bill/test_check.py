"""Register reconciliation on literal rows: an Economy 7 meter whose registers agree with its half-hours, and one
whose registers do not (as a meter wired to the wrong SSC would)."""
from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import lakeio
from jobs.bill import check
from meterlake import mdd
from tests.jobs.helpers import MP, MP2, day_of, frame, reads

TINY = Path(__file__).resolve().parents[2] / "meterlake" / "data" / "mdd_tiny"
D1, D2, D3 = date(2024, 1, 15), date(2024, 1, 16), date(2024, 1, 17)
T1, T2 = datetime(2024, 1, 15, tzinfo=UTC), datetime(2024, 1, 17, tzinfo=UTC)


def _registers(mp, dy, nt):
    return [reads(mp, [T1, T2], dy, kind="register", register="DY"),
            reads(mp, [T1, T2], nt, kind="register", register="NT")]


@pytest.fixture(scope="module")
def checks(spark):
    # GIVEN two SSC 0151 meters reading 0.5 kWh every half-hour of 15 and 16 January (GMT): per register span
    # the night (00:30-07:30) has 2 x 14 x 0.5 = 14 kWh and the day 2 x 34 x 0.5 = 34 kWh
    tables = [day_of(mp, d, 0.5) for mp in (MP, MP2) for d in (D1, D2)]
    tables += _registers(MP, [5000.0, 5034.0], [1000.0, 1014.0])  # agrees
    tables += _registers(MP2, [5000.0, 5028.0], [1000.0, 1020.0])  # 6 kWh moved from day to night
    clean = frame(spark, *tables).withColumn("is_quarantined", F.lit(False))
    registry = lakeio.small_frame(spark, [(MP, "0151", D1, None), (MP2, "0151", D1, None)],
                                  "meter_point string, ssc string, effective_from date, effective_to date")
    rules = mdd.Mdd.from_tables(mdd.read_dir(TINY))
    bands = lakeio.small_frame(spark, check.band_rows(rules, ["0151"], D1, D3), "ssc string, slot long, band string")
    mapping = lakeio.small_frame(spark, check.register_rows({"0151": {"DY": "00043", "NT": "00210"}}),
                                 "ssc string, register_id string, tpr string")
    # WHEN reconciled
    out = check.transform(clean, registry, bands, mapping, start=D1, end=D3, tolerance_kwh=1.0, tolerance_share=0.02)
    return [(r.meter_point, r.register, r.tpr, r.register_kwh, r.hh_kwh, r.difference_kwh, r.hh_periods,
             r.span_periods, r.status) for r in out.collect()]


def test_registers_that_agree_with_the_half_hours(checks):
    assert [c for c in checks if c[0] == MP] == [
        (MP, "DY", "00043", 34.0, 34.0, 0.0, 96, 96, "ok"), (MP, "NT", "00210", 14.0, 14.0, 0.0, 96, 96, "ok")]


def test_registers_that_do_not(checks):
    assert [c for c in checks if c[0] == MP2] == [
        (MP2, "DY", "00043", 28.0, 34.0, -6.0, 96, 96, "mismatch"),
        (MP2, "NT", "00210", 20.0, 14.0, 6.0, 96, 96, "mismatch")]
