"""A three-node ring takes QUORUM writes and reads with a node killed, and the node catches up on return.

The ring has its own state dir (``<test state dir>-ring``, new for each run) and ports (test offset + 500),
and is stopped at the end of the module.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from infra.local import cassandra, stack
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


def _wait_until_node_sees_ring_up(ctx, node: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        out = cassandra.nodetool(ctx, node, "status")
        if sum(line.startswith("UN ") for line in out.splitlines()) == 3:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"cassandra-{node} does not see three nodes up:\n{out}")
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
