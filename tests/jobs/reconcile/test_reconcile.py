"""Reconciliation on the real stack: the Cassandra store and the lake agree after ingest; a read only in the store
(written there alone, or removed from the lake) is reported with its meter and date; after a back-fill of those
dates the two agree again."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from jobs.backfill import job as backfill
from jobs.reconcile import job as reconcile
from meterlake import clients, pseudonym, schema
from meterlake.lake.files import open_lake
from streaming.mirror.query import connect
from tests.jobs.helpers import utc
from tests.jobs.storehelp import START, stored  # noqa: F401 (the session's portfolio through the stack)
from tests.streaming import stackhelp

pytestmark = [pytest.mark.stack, pytest.mark.slow]

LAST = START + timedelta(days=2)
EXTRA_METER = "1900000000016"  # a meter the portfolio does not have


def _reconcile(settings, spark) -> dict:
    return reconcile.run(settings, START, LAST, store_group=f"store-{settings.cassandra.keyspace}", spark=spark)


def _write_to_store_only(settings) -> None:
    """A register read of a new meter on the first date, written to Cassandra and nowhere else."""
    from streaming.store.writer import Writer

    read = schema.build_reads(meter_point=EXTRA_METER, meter_serial="S1", fuel="electricity", register_id="01",
                              read_kind="register", interval_start_utc=[utc(2024, 10, 26, 9, 0)], value=[1234.5],
                              unit="kWh", quality="actual", source_file="only-in-cassandra.uff", source_line=[3],
                              source_version=schema.epoch_us(utc(2024, 10, 26, 12)))
    session = clients.cassandra_session(settings)
    try:
        Writer(session, settings.cassandra.keyspace).write(schema.READ_SCHEMA.empty_table().from_batches([read]))
    finally:
        session.cluster.shutdown()


def _remove_from_lake(settings):
    """One interval read of the last date (one with a single version) removed from its lake file, which is
    rewritten without it: its meter."""
    from collections import Counter

    lake = open_lake(settings)
    key = ("meter_point", "meter_serial", "register_id", "interval_start_utc", "unit")
    tables = {f.path: lake.read_parquet(f.path[len(lake.root) + 1:]) for f in lake.live_files(LAST)}
    counts = Counter(k for t in tables.values() for k in zip(*[t.column(c).to_pylist() for c in key], strict=True))
    for path, table in tables.items():
        rows = list(zip(*[table.column(c).to_pylist() for c in key], strict=True))
        kinds = table.column("read_kind").to_pylist()
        drop = next((i for i, k in enumerate(rows) if counts[k] == 1 and kinds[i] == "interval"), None)
        if drop is not None:
            lake.write_parquet(path[len(lake.root) + 1:], table.take([i for i in range(table.num_rows) if i != drop]))
            return table.column("meter_point")[drop].as_py()
    raise AssertionError("no read with a single version on the last date")


def test_reads_in_one_side_only_are_reported_then_clean_after_backfill(stored, spark):  # noqa: F811
    # GIVEN the store and the mirror's lake after ingest: they agree, every consumer caught up
    first = _reconcile(stored, spark)
    assert first["status"] == "clean", first
    assert set(first) == {"status", "dates", "differences", "message"}
    assert [d["settlement_date"] for d in first["dates"]] == [START, START + timedelta(days=1), LAST]
    assert all(d["lake_reads"] == d["store_reads"] > 0 and d["lake_kwh"] == d["store_kwh"] for d in first["dates"])
    assert "the mirror had consumed every message of all but 0, the store of all but 0" in first["message"]

    # WHEN a read is written only to Cassandra, and another removed from the lake
    _write_to_store_only(stored)
    removed_meter = _remove_from_lake(stored)
    out = _reconcile(stored, spark)

    # THEN both are reported, each with its meter (as the lake's pseudonym) and date
    assert out["status"] == "differences" and out["differences"] == 2
    by_date = {d["settlement_date"]: d for d in out["dates"]}
    assert by_date[START]["differences"] == 1 and by_date[LAST]["differences"] == 1
    assert by_date[LAST]["store_reads"] == by_date[LAST]["lake_reads"] + 1
    con = connect(open_lake(stored), pseudonyms=pseudonym.for_settings(stored))
    rows = con.execute("SELECT settlement_date, meter_point, only_in_lake, only_in_store, different "
                       "FROM reconciliation WHERE is_difference ORDER BY settlement_date").fetchall()
    extra = pseudonym.for_settings(stored).one(EXTRA_METER)
    assert rows == [(START, extra, 0, 1, 0), (LAST, removed_meter, 0, 1, 0)]

    # AND after a back-fill of those dates, the CLI finds the two sides equal
    backfill.run(stored, START, LAST, spark=spark)
    env = {**stackhelp.env(stored), "METERLAKE_SPARK__MASTER": "local[2]", "METERLAKE_SPARK__SHUFFLE_PARTITIONS": "2"}
    cli = str(Path(sys.executable).with_name("meterlake"))
    done = subprocess.run([cli, "job", "reconcile", "--from", START.isoformat(), "--to", LAST.isoformat(),
                           "--store-group", f"store-{stored.cassandra.keyspace}", "--json"],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    assert (answer["status"], answer["differences"]) == ("clean", 0)
