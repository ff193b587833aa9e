"""A three-node ring takes QUORUM writes and reads with a node killed, and the node catches up on return; the
serve job writes its tables on it at RF 3 and QUORUM, also with a node killed.

The ring has its own state dir (``<test state dir>-ring``, new for each run) and ports (test offset + 500),
and is stopped at the end of the module (its tests share it: a ring takes about 70 s to start).
"""
from __future__ import annotations

import shutil
import time
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from infra.local import cassandra, stack
from infra.local.discover import discover
from jobs.serve import job as serve
from meterlake import clients, keyspace, pseudonym, schema
from meterlake.lake import layout
from meterlake.lake.files import open_lake
from streaming.mirror.convert import split_by_date
from streaming.store.writer import Writer
from tests.conftest import _test_settings

pytestmark = [pytest.mark.multinode, pytest.mark.slow, pytest.mark.stack]

KEYSPACE = "ring"


@pytest.fixture(scope="module")
def ring(stack_settings):
    settings = _test_settings(Path(f"{stack_settings.state_dir}-ring"),
                              stack_settings.stack.port_offset + 500,
                              cassandra_nodes=3, services=["cassandra"])
    stack.down(settings)  # a run interrupted before its teardown
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    try:
        stack.up(settings)
        yield stack.remembered(settings)
    finally:
        stack.down(settings)


def _write(session, ids):
    insert = session.prepare(f"INSERT INTO {KEYSPACE}.reads (meter_id, energy_kwh) VALUES (?, ?)")
    for i in ids:
        session.execute(insert, (f"M-{i:03d}", i / 10))


def _read(session, ids) -> dict[str, float]:
    select = session.prepare(f"SELECT meter_id, energy_kwh FROM {KEYSPACE}.reads WHERE meter_id = ?")
    found = {}
    for i in ids:
        row = session.execute(select, (f"M-{i:03d}",)).one()
        if row is not None:
            found[row.meter_id] = row.energy_kwh
    return found


def _wait_until_node_sees_ring_up(ctx, node: int, timeout_s: float = 60, up: int = 3) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        out = cassandra.nodetool(ctx, node, "status")
        if sum(line.startswith("UN ") for line in out.splitlines()) == up:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"cassandra-{node} does not see {up} nodes up:\n{out}")
        time.sleep(2)


def test_status_finds_the_three_nodes_one_ring(ring):
    assert [(r["name"], r["state"]) for r in stack.status(ring)] == [
        ("cassandra-1", "ready"), ("cassandra-2", "ready"), ("cassandra-3", "ready")]
    ctx = stack.context(ring)
    assert {cassandra.view(ctx, n) for n in (1, 2, 3)} == {("meterlake", frozenset(cassandra.contact_points(ctx)))}


def test_a_killed_node_catches_up_after_repair(ring):
    ctx = stack.context(ring)
    # GIVEN a keyspace with a replica on each of the three nodes and 50 rows written at QUORUM
    session = cassandra.session(ctx, consistency="QUORUM")
    try:
        session.execute(f"CREATE KEYSPACE {KEYSPACE} WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 3}")
        # Until the ring notices a replica is dead, a coordinator may ask it for a QUORUM read; after 50 ms
        # it asks another replica instead of timing out.
        session.execute(f"CREATE TABLE {KEYSPACE}.reads (meter_id text PRIMARY KEY, energy_kwh double) "
                        "WITH speculative_retry = '50ms'")
        _write(session, range(0, 50))

        # WHEN cassandra-3 is killed
        assert stack.kill(ring, "cassandra-3")["state"] == "killed"
        states = {row["name"]: row["state"] for row in stack.status(ring)}
        assert states["cassandra-3"] in ("dead", "stopped")

        # THEN writes and reads at QUORUM go on
        _write(session, range(50, 100))
        assert len(_read(session, range(0, 100))) == 100
    finally:
        session.cluster.shutdown()

    # WHEN cassandra-3 is started again and repaired
    assert stack.start(ring, "cassandra-3")["state"] == "ready"
    _wait_until_node_sees_ring_up(ctx, 3)
    cassandra.nodetool(ctx, 3, "repair", "-full", KEYSPACE)

    # THEN cassandra-3 alone holds every row: a read at ONE through it reads its own replica (its coordinator
    # prefers itself and does not speculate to another replica)
    admin = cassandra.session(ctx, consistency="QUORUM")
    try:
        admin.execute(f"ALTER TABLE {KEYSPACE}.reads WITH speculative_retry = 'NONE'")
    finally:
        admin.cluster.shutdown()
    node3 = cassandra.session(ctx, consistency="ONE", node=3)
    try:
        found = _read(node3, range(0, 100))
        traced = node3.execute(f"SELECT energy_kwh FROM {KEYSPACE}.reads WHERE meter_id = 'M-075'",
                               trace=True)
        sources = {str(event.source) for event in traced.get_query_trace(max_wait_sec=10).events}
    finally:
        node3.cluster.shutdown()
    assert sources == {"127.0.0.3"}
    assert len(found) == 100
    assert found["M-000"] == 0.0
    assert found["M-075"] == 7.5
    assert found["M-099"] == 9.9


# ------------------------------------------------------------------------------------ the serve job on the ring

SERVE_KEYSPACE = "serve_ring"
D1, D2 = date(2024, 10, 26), date(2024, 10, 27)  # 48 periods; 50 (the autumn clock change)


def _serve_settings(ring, lake: Path):
    """The ring's settings as production has them (docs/deploy.md): RF 3, reads and writes at QUORUM."""
    settings = discover(ring)
    return settings.model_copy(update={
        "cassandra": settings.cassandra.model_copy(update={
            "keyspace": SERVE_KEYSPACE, "replication_factor": 3, "write_consistency": "QUORUM",
            "read_consistency": "QUORUM"}),
        "paths": settings.paths.model_copy(update={"lake": str(lake)})})


def _lake_part(settings, reads: pa.Table, offset: int) -> None:
    """``reads`` into the lake as the mirror writes them: identifiers pseudonymised, one part file per date."""
    rows = pseudonym.for_settings(settings).table(reads)
    lake = open_lake(settings)
    for day, part in split_by_date(rows):
        lake.write_parquet(f"{layout.date_dir(day)}/{layout.part_name('meter-reads', 0, offset, offset)}", part)


def _served_at_quorum(settings) -> dict:
    from tests.jobs.serve.test_serve import _served

    return {(mp, day): (round(r.consumption, 6), r.periods, r.estimated_periods, r.expected_periods, r.wt)
            for (mp, day, _, _), r in _served(settings, "QUORUM").items()}


def test_serve_writes_at_quorum_on_the_ring_and_with_a_node_killed(ring, spark, tmp_path):
    """The module's last test: it leaves cassandra-2 killed (the module's end stops the ring)."""
    from tests.jobs.helpers import MP, MP2, V1, day_of, reads, starts

    settings = _serve_settings(ring, tmp_path / "lake")
    # GIVEN two meters' reads of two days in the store (RF 3, its writer at QUORUM) and in the lake: MP reads
    # 0.5 kWh every half-hour of the 26th and 0.25 of the 27th (periods 3 and 4 estimated by the source); MP2
    # 1.0 on the 26th but periods 1 and 2, and 0.1 on the 27th
    estimated = [3, 4]
    lake_reads = pa.concat_tables([
        day_of(MP, D1, 0.5), day_of(MP, D2, 0.25, skip=tuple(estimated)),
        reads(MP, starts(D2, estimated), 0.25, quality="estimated"),
        day_of(MP2, D1, 1.0, skip=(1, 2)), day_of(MP2, D2, 0.1)])
    session = clients.cassandra_session(settings, consistency="QUORUM")
    try:
        keyspace.ensure(session, SERVE_KEYSPACE, 3)
        Writer(session, SERVE_KEYSPACE).write(schema.pack_table(lake_reads.select(list(schema.READ_COLUMNS))))
    finally:
        session.cluster.shutdown()
    _lake_part(settings, lake_reads, 0)

    # WHEN the dates are served
    out = serve.run(settings, D1, D2, spark=spark)

    # THEN every meter-day is read back at QUORUM, written at its source version
    expected = {(MP, D1): (24.0, 48, 0, 48, V1), (MP, D2): (12.5, 50, 2, 50, V1),
                (MP2, D1): (46.0, 46, 0, 48, V1), (MP2, D2): (5.0, 50, 0, 50, V1)}
    assert out["tables"]["daily_consumption"] == 4
    assert _served_at_quorum(settings) == expected

    # WHEN cassandra-2 is killed, MP2's 27th is read again (0.2 kWh a half-hour, a newer version) and the dates
    # are served again
    assert stack.kill(ring, "cassandra-2")["state"] == "killed"
    ctx = stack.context(ring)
    for node in (1, 3):  # until the coordinators know, they may wait on it for a QUORUM
        _wait_until_node_sees_ring_up(ctx, node, up=2)
    _lake_part(settings, day_of(MP2, D2, 0.2, version=V1 + 1), 1)
    serve.run(settings, D1, D2, spark=spark)

    # THEN the write went through at QUORUM on the two nodes left: the new value is read back at QUORUM, and the
    # re-run changed nothing else (the same values, written at the same times)
    assert _served_at_quorum(settings) == {**expected, (MP2, D2): (10.0, 50, 0, 50, V1 + 1)}
