"""Serving aggregates on the real stack: daily consumption written through the connector, read back with the
Cassandra driver, equal to the lake's own aggregate (DuckDB over the live reads); a re-run changes nothing."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from jobs import lakeio
from jobs.bill import job as bill
from jobs.serve import job as serve
from meterlake import calendar, clients, pseudonym
from meterlake.lake.files import open_lake
from streaming.mirror.query import connect
from tests.jobs.storehelp import START, stored  # noqa: F401 (the session's portfolio through the stack)

pytestmark = [pytest.mark.stack, pytest.mark.slow]

LAST = START + timedelta(days=2)


def _served(settings, consistency: str = "ONE") -> dict:
    session = clients.cassandra_session(settings, consistency=consistency)
    try:
        rows = session.execute(f"SELECT meter_point, settlement_date, register_id, unit, consumption, periods, "
                               f"estimated_periods, estimated_share, expected_periods, writetime(consumption) AS wt "
                               f"FROM {settings.cassandra.keyspace}.daily_consumption").all()
    finally:
        session.cluster.shutdown()
    return {(r.meter_point, r.settlement_date.date(), r.register_id, r.unit): r for r in rows}


def _lake_aggregate(settings) -> dict:
    con = connect(open_lake(settings))
    rows = con.execute(f"""
        SELECT meter_point, settlement_date, coalesce(register_id, '') AS register_id, unit,
               coalesce(sum(value) FILTER (WHERE quality <> 'withdrawn'), 0) AS consumption,
               count(*) FILTER (WHERE quality <> 'withdrawn') AS periods,
               count(*) FILTER (WHERE quality = 'estimated') AS estimated_periods,
               max(source_version) AS source_version
        FROM reads WHERE read_kind = 'interval' AND settlement_date BETWEEN '{START}' AND '{LAST}'
        GROUP BY ALL""").fetchall()
    return {r[:4]: r[4:] for r in rows}


def test_daily_consumption_is_served_equal_to_the_lake_and_a_rerun_changes_nothing(stored, spark):  # noqa: F811
    # WHEN the dates are served
    out = serve.run(stored, START, LAST, spark=spark)
    assert set(out) == {"status", "tables", "from", "to", "seconds"}

    # THEN the rows read back with the driver are the lake's aggregate, meter points as the store knows them
    served = _served(stored)
    expected = _lake_aggregate(stored)
    assert out["tables"]["daily_consumption"] == len(expected) and len(served) == len(expected) > 0
    names = pseudonym.for_settings(stored)
    for (meter, day, register, unit), row in served.items():
        consumption, periods, estimated, version = expected[(names.one(meter), day, register, unit)]
        assert row.consumption == pytest.approx(consumption, abs=1e-6)
        assert (row.periods, row.estimated_periods) == (periods, estimated)
        assert row.estimated_share == pytest.approx(estimated / periods if periods else 0.0, abs=1e-6)
        assert row.expected_periods == calendar.periods_in_day(day)
        assert row.wt == version  # written at the day's highest source version
    assert {r.expected_periods for r in served.values()} == {48, 50}  # the autumn clock change is served

    # AND a re-run changes nothing: the same cells, written at the same times
    serve.run(stored, START, LAST, spark=spark)
    assert _served(stored) == served


def _bill(account: str, meter: str, bill_from, bill_to, total_p: str, run: tuple) -> dict:
    net = Decimal(total_p) / Decimal("1.05")
    return {"account": account, "meter_point": meter, "tariff": "flat-20", "kind": "flat", "ssc": None,
            "bill_from": bill_from, "bill_to": bill_to, "days": (bill_to - bill_from).days, "status": "complete",
            "energy_kwh": 12.5, "estimated_kwh": 0.5, "energy_p": Decimal("250.00"),
            "standing_p_per_day": Decimal("50"), "standing_p": Decimal("100.00"), "net_p": round(net, 2),
            "vat_rate": Decimal("0.05"), "vat_p": Decimal(total_p) - round(net, 2), "total_p": Decimal(total_p),
            "unpriced_periods": 0, "unpriced": [], "run_from": run[0], "run_to": run[1], "run_account": None}


def _summaries(settings) -> dict:
    session = clients.cassandra_session(settings, consistency="ONE")
    try:
        rows = session.execute(f"SELECT account, meter_point, bill_from, bill_to, total_p, status "
                               f"FROM {settings.cassandra.keyspace}.bill_summaries").all()
    finally:
        session.cluster.shutdown()
    return {(r.account, r.meter_point): (r.bill_from.date(), r.bill_to.date(), r.total_p, r.status) for r in rows}


def test_the_latest_bill_of_each_account_is_served_by_account(stored, spark):  # noqa: F811
    # GIVEN two bill runs in the lake: ACC-1's meter billed in both (the second period is the latest), ACC-2's in
    # the second, and a meter the store does not know
    session = clients.cassandra_session(stored, consistency="ONE")
    try:
        m1, m2 = sorted({r.meter_point for r in session.execute(
            f"SELECT DISTINCT meter_point, month FROM {stored.cassandra.keyspace}.hh_sets")})[:2]
    finally:
        session.cluster.shutdown()
    names, jl = pseudonym.for_settings(stored), lakeio.open_job_lake(stored)
    before, mid, after = START - timedelta(days=20), START, START + timedelta(days=2)
    runs = [(before, mid, [_bill("ACC-1", names.one(m1), before, mid, "315.00", (before, mid))]),
            (mid, after, [_bill("ACC-1", names.one(m1), mid, after, "42.00", (mid, after)),
                          _bill("ACC-2", names.one(m2), mid, after, "21.00", (mid, after)),
                          _bill("ACC-3", names.one("1999999999999"), mid, after, "1.00", (mid, after))])]
    for start, end, heads in runs:
        bill.load(pa.Table.from_pylist(heads, schema=bill.BILLS_SCHEMA), bill.LINES_SCHEMA.empty_table(), jl,
                  start, end, None)

    # WHEN the dates are served
    out = serve.run(stored, START, LAST, spark=spark)

    # THEN each account's latest bill is in its partition, meter points as the store knows them
    expected = {("ACC-1", m1): (mid, after, Decimal("42.00"), "complete"),
                ("ACC-2", m2): (mid, after, Decimal("21.00"), "complete")}
    assert out["tables"]["bill_summaries"] == 2 and _summaries(stored) == expected

    # AND a re-run changes nothing
    serve.run(stored, START, LAST, spark=spark)
    assert _summaries(stored) == expected
