"""Settlement spares Cassandra: while `meterlake job settle` runs, the event store's tables serve zero reads,
measured from Cassandra's own table metrics (`nodetool tablestats`, "Local read count"), and the node coordinates
no read request of them while the store keeps writing: the JMX ``ClientRequest`` ``Read`` (and ``RangeSlice``) counts
grow only by reads of Cassandra's system keyspaces (its auth caches refreshing for the writer's connections).

The event store holds the same meter-day as the lake, so a job that read Cassandra instead of the lake would be
seen. A control read afterwards shows that the metric does count reads.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pyarrow as pa
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


def settle_as_a_user(settings) -> dict:
    """``meterlake job settle --date DAY --run SF --json`` in a process of its own with ``settings``' stack, lake
    and keyspace (so it could reach Cassandra); its answer."""
    env = {**os.environ, "METERLAKE_PATHS__STATE_DIR": str(settings.state_dir),
           "METERLAKE_STACK__PORT_OFFSET": str(settings.stack.port_offset),
           "METERLAKE_CASSANDRA__KEYSPACE": settings.cassandra.keyspace, "METERLAKE_PATHS__LAKE": settings.paths.lake,
           "METERLAKE_SPARK__MASTER": "local[2]", "METERLAKE_SPARK__SHUFFLE_PARTITIONS": "2"}
    cli = str(Path(sys.executable).with_name("meterlake"))
    out = subprocess.run([cli, "job", "settle", "--date", DAY.isoformat(), "--run", "SF", "--json"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


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
    assert settle_as_a_user(lake_settings)["totals"]["consumption_kwh"] == pytest.approx(25.0)

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


def request_counts(ctx) -> dict[str, int]:
    """One snapshot of node 1's request metrics (JMX, ``nodetool sjk mxdump``): ``read``, ``range`` and ``write``,
    the ``ClientRequest`` Read, RangeSlice (scans, as the connector reads) and Write latency counts (every request
    it coordinated), and per keyspace the reads and scans it coordinated for that keyspace's tables (``Table``
    ``CoordinatorReadLatency`` and ``CoordinatorScanLatency``)."""
    from infra.local.cassandra import nodetool

    beans = json.loads(nodetool(ctx, 1, "sjk", "mxdump", "-q", "org.apache.cassandra.metrics:*"))["beans"]
    counts = {"read": 0, "range": 0, "write": 0}
    scopes = {"Read": "read", "RangeSlice": "range", "Write": "write"}
    for bean in beans:
        name = bean["name"].split(":", 1)[1]
        attrs = dict(part.split("=", 1) for part in name.split(","))
        if attrs.get("type") == "ClientRequest" and attrs.get("name") == "Latency" and attrs.get("scope") in scopes:
            counts[scopes[attrs["scope"]]] = int(bean["Count"])
        elif attrs.get("type") == "Table" and attrs.get("name") in ("CoordinatorReadLatency",
                                                                    "CoordinatorScanLatency"):
            counts[attrs["keyspace"]] = counts.get(attrs["keyspace"], 0) + int(bean["Count"])
    return counts


def test_settlement_sends_cassandra_no_read_request_while_the_store_writes(cassandra_stack, tmp_path):
    import threading

    from meterlake import keyspace
    from streaming.store.writer import Writer

    settings = stack_mod.remembered(cassandra_stack)
    settings = settings.model_copy(update={"cassandra": settings.cassandra.model_copy(update={
        "keyspace": "t_untouched_busy"})})
    ctx = stack_mod.context(settings)
    ks = settings.cassandra.keyspace
    reads = day_of(METER, DAY, 0.5, version=after(DAY, 2))
    lake_settings = settings.model_copy(update={"paths": settings.paths.model_copy(update={
        "lake": str(tmp_path / "lake")})})
    write_lake_reads(open_lake(lake_settings), reads, offset=0)
    sets = schema.pack_table(reads.select(list(schema.READ_COLUMNS)).cast(schema.READ_SCHEMA))
    # GIVEN the store busy writing: the store's writer rewrites the meter-day, version after version
    session = clients.cassandra_session(settings)
    keyspace.ensure(session, ks, 1)
    writer, stop, written = Writer(session, ks), threading.Event(), []
    writing = threading.Lock()

    def busy():
        version = after(DAY, 3)
        while not stop.is_set():
            version += 1
            column = sets.schema.get_field_index("source_version")
            with writing:
                writer.write(sets.set_column(column, sets.schema.field(column), pa.array([version], pa.int64())))
            written.append(version)

    def quiet_counts() -> dict[str, int]:
        """The counts with the writer paused for a moment: the metrics are read one by one, and a request (or an
        auth cache refresh it caused) in flight would be in some and not others."""
        with writing:
            time.sleep(1.0)
            return request_counts(ctx)

    thread = threading.Thread(target=busy, daemon=True)
    thread.start()
    try:
        while len(written) < 10:
            time.sleep(0.1)
        before = quiet_counts()

        # WHEN settlement runs as a user runs it, with the stack's settings (it could reach Cassandra)
        settled = settle_as_a_user(lake_settings)
        after_run = quiet_counts()
    finally:
        stop.set()
        thread.join(timeout=60)
        session.cluster.shutdown()

    # THEN the node coordinated no read of the store's tables during it, while the store's writes went on
    assert settled["totals"]["consumption_kwh"] == pytest.approx(25.0)
    assert after_run["write"] > before["write"]
    assert after_run.get(ks, 0) == before.get(ks, 0), "settlement read the store's tables"
    # and every read request it coordinated meanwhile was of Cassandra's own system keyspaces (mostly its role and
    # permission caches refreshing for the writer's connections, system_auth at auth_read_consistency_level): no
    # request read a keyspace of data
    delta = {k: after_run.get(k, 0) - before.get(k, 0) for k in after_run}
    assert delta["read"] + delta["range"] == sum(n for k, n in delta.items() if k.startswith("system")), delta
    assert all(n == 0 for k, n in delta.items() if k not in ("read", "range", "write") and not k.startswith(
        "system")), delta

    # and the metrics do count reads: one query of the meter's partition shows up in both
    session = clients.cassandra_session(settings, consistency="ONE")
    try:
        session.execute(f"SELECT settlement_date FROM {ks}.hh_sets WHERE meter_point = %s AND month = %s",
                        (METER, "2024-10")).all()
    finally:
        session.cluster.shutdown()
    control = request_counts(ctx)
    assert control["read"] > after_run["read"] and control[ks] == after_run.get(ks, 0) + 1
