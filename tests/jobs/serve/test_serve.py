"""Serving aggregates on the real stack: daily consumption written through the connector, read back with the
Cassandra driver, equal to the lake's own aggregate (DuckDB over the live reads); a re-run changes nothing."""
from __future__ import annotations

from datetime import timedelta

import pytest

from jobs.serve import job as serve
from meterlake import calendar, clients, pseudonym
from meterlake.lake.files import open_lake
from streaming.mirror.query import connect
from tests.jobs.storehelp import START, stored  # noqa: F401 (the session's portfolio through the stack)

pytestmark = [pytest.mark.stack, pytest.mark.slow]

LAST = START + timedelta(days=2)


def _served(settings) -> dict:
    session = clients.cassandra_session(settings, consistency="ONE")
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
    assert out["tables"] == {"daily_consumption": len(expected)} and len(served) == len(expected) > 0
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
