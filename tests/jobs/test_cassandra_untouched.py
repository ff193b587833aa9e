"""Settlement spares Cassandra: while `meterlake job settle` runs, the event store's tables serve zero reads,
measured from Cassandra's own table metrics (`nodetool tablestats`, "Local read count").

The event store holds the same meter-day as the lake, so a job that read Cassandra instead of the lake would be
seen. A control read afterwards shows that the metric does count reads.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from infra.local import stack as stack_mod
from infra.local.cassandra import nodetool  # a project import: a broken one fails the test, never skips it
from meterlake import clients, schema
from meterlake.lake.files import open_lake
from tests.jobs.helpers import after, day_of, write_lake_reads

pytestmark = [pytest.mark.stack, pytest.mark.slow]

DAY = date(2024, 10, 27)
METER = "1200000000014"


def read_counts(ctx, keyspace: str) -> dict[str, int]:
    """Local read count of every table of ``keyspace``, from `nodetool tablestats` of node 1."""
    out = nodetool(ctx, 1, "tablestats", keyspace)
    counts, table = {}, None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Table: "):
            table = line.removeprefix("Table: ")
        elif line.startswith("Local read count: ") and table is not None:
            counts[table] = int(line.removeprefix("Local read count: "))
    return counts


def test_settlement_serves_no_reads_from_cassandra(cassandra_stack, tmp_path):
    from meterlake import keyspace
    from streaming.store.writer import Writer

    settings = stack_mod.remembered(cassandra_stack)
    ctx = stack_mod.context(settings)
    ks = settings.cassandra.keyspace
    reads = day_of(METER, DAY, 0.5, version=after(DAY, 2))
    # GIVEN the meter-day in the event store and in a lake
    session = clients.cassandra_session(settings)
    try:
        keyspace.ensure(session, ks, 1)
        lake_columns = reads.select(list(schema.READ_COLUMNS)).cast(schema.READ_SCHEMA)
        Writer(session, ks).write(schema.pack_table(lake_columns))
    finally:
        session.cluster.shutdown()
    lake_settings = settings.model_copy(update={"paths": settings.paths.model_copy(update={
        "lake": str(tmp_path / "lake")})})
    write_lake_reads(open_lake(lake_settings), reads, offset=0)
    before = read_counts(ctx, ks)
    assert "hh_sets" in before

    # WHEN settlement runs as a user runs it, with the stack's settings (it could reach Cassandra)
    env = {**os.environ, "METERLAKE_PATHS__STATE_DIR": str(settings.state_dir),
           "METERLAKE_STACK__PORT_OFFSET": str(settings.stack.port_offset),
           "METERLAKE_PATHS__LAKE": lake_settings.paths.lake, "METERLAKE_SPARK__MASTER": "local[2]",
           "METERLAKE_SPARK__SHUFFLE_PARTITIONS": "2"}
    cli = str(Path(sys.executable).with_name("meterlake"))
    out = subprocess.run([cli, "job", "settle", "--date", DAY.isoformat(), "--run", "SF", "--json"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout)["totals"]["consumption_kwh"] == pytest.approx(25.0)

    # THEN no table of the event store served a read during it
    after_run = read_counts(ctx, ks)
    assert after_run == before, "settlement read from Cassandra"

    # and the metric does count reads: one read of the meter's partition shows up
    session = clients.cassandra_session(settings, consistency="ONE")
    try:
        rows = session.execute(f"SELECT settlement_date FROM {ks}.hh_sets WHERE meter_point = %s AND month = %s",
                               (METER, "2024-10")).all()
    finally:
        session.cluster.shutdown()
    assert len(rows) == 1
    control = read_counts(ctx, ks)
    assert control["hh_sets"] > before["hh_sets"]
    assert {t: n for t, n in control.items() if t != "hh_sets"} == {t: n for t, n in before.items() if t != "hh_sets"}
