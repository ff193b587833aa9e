"""Helpers for tests on the real stack: settings with topics and a keyspace of their own, Kafka read back."""
from __future__ import annotations

import itertools
import os
import time

from meterlake import clients, config

_counter = itertools.count(1)


def isolated(settings: config.Settings, name: str, **ingest) -> config.Settings:
    """``settings`` with topics, a keyspace and a lake of their own (tests share one stack)."""
    tag = f"{name}_{os.getpid()}_{next(_counter)}"
    kafka = settings.kafka.model_copy(update={
        "reads_topic": f"reads-{tag}", "files_topic": f"files-{tag}", "devices_topic": f"devices-{tag}",
        "quarantine_topic": f"quarantine-{tag}", "partitions": 3})
    cassandra = settings.cassandra.model_copy(update={"keyspace": f"t_{tag}".lower()})
    return settings.model_copy(update={
        "kafka": kafka, "cassandra": cassandra,
        "paths": settings.paths.model_copy(update={"lake": str(settings.state_dir / "lakes" / tag)}),
        "ingest": settings.ingest.model_copy(update={"archive_dir": str(settings.state_dir / "archives" / tag),
                                                     **ingest}),
    })


def env(settings: config.Settings) -> dict[str, str]:
    """Environment variables that make a ``meterlake`` subprocess use ``settings``."""
    k, c, i = settings.kafka, settings.cassandra, settings.ingest
    out = {
        "METERLAKE_PATHS__STATE_DIR": str(settings.state_dir), "METERLAKE_PATHS__LAKE": settings.lake_url,
        "METERLAKE_STACK__PORT_OFFSET": str(settings.stack.port_offset),
        "METERLAKE_KAFKA__READS_TOPIC": k.reads_topic, "METERLAKE_KAFKA__FILES_TOPIC": k.files_topic,
        "METERLAKE_KAFKA__DEVICES_TOPIC": k.devices_topic, "METERLAKE_KAFKA__QUARANTINE_TOPIC": k.quarantine_topic,
        "METERLAKE_KAFKA__PARTITIONS": str(k.partitions), "METERLAKE_CASSANDRA__KEYSPACE": c.keyspace,
        "METERLAKE_INGEST__LEASE_S": str(i.lease_s), "METERLAKE_INGEST__CLAIM_CHECK_BYTES": str(i.claim_check_bytes),
        "METERLAKE_INGEST__BATCH_ROWS": str(i.batch_rows), "METERLAKE_INGEST__ARCHIVE_DIR": i.archive_dir,
    }
    return {**os.environ, **out}


def consume(settings: config.Settings, topic: str, *, committed: bool = True, timeout_s: float = 30.0) -> list:
    """Every record of ``topic`` (read_committed unless ``committed`` is False), from the beginning to the end."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**clients.kafka_options(settings), enable_auto_commit=False,
                             isolation_level="read_committed" if committed else "read_uncommitted",
                             fetch_max_bytes=32 << 20, max_partition_fetch_bytes=16 << 20)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        records = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not at the end after {timeout_s}s")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def meterlake(settings: config.Settings, *args: str) -> dict:
    """Run ``meterlake ARGS... --json`` in-process with ``settings``; the JSON object it printed."""
    import json

    from click.testing import CliRunner

    from meterlake.cli import cli

    result = CliRunner().invoke(cli, [*args, "--json"], env=env(settings), prog_name="meterlake")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def store(settings: config.Settings) -> dict:
    """Drain the topics into the keyspace (a consumer group of the keyspace's own)."""
    from streaming.store import consumer

    return consumer.run(settings, until_caught_up=True, group=f"store-{settings.cassandra.keyspace}",
                        max_seconds=300).as_dict()


TABLES = ("hh_sets", "register_reads", "device_reads", "quarantine")


def dump(settings: config.Settings, tables=TABLES) -> dict[str, list[tuple]]:
    """Every row of the store's tables, sorted, maps as sorted item tuples: for comparing two states."""
    session = clients.cassandra_session(settings, consistency=settings.cassandra.read_consistency)
    try:
        out = {}
        for table in tables:
            rows = []
            for row in session.execute(f"SELECT * FROM {settings.cassandra.keyspace}.{table}", timeout=120):
                rows.append(tuple(tuple(sorted(v.items())) if isinstance(v, dict) else v for v in row))
            out[table] = sorted(rows, key=repr)
        return out
    finally:
        session.cluster.shutdown()


def query(settings: config.Settings, cql: str, *params) -> list:
    session = clients.cassandra_session(settings, consistency=settings.cassandra.read_consistency)
    try:
        return list(session.execute(cql.format(ks=settings.cassandra.keyspace), params, timeout=60))
    finally:
        session.cluster.shutdown()


def broker_pid(settings: config.Settings) -> int:
    """The PID of the stack's (first) Kafka broker, to pause it (SIGSTOP) or resume it (SIGCONT)."""
    from infra.local import process, stack

    pid = process.pid(stack.find(stack.context(stack.remembered(settings)), "kafka-1"))
    assert pid is not None, "kafka-1 is not running"
    return pid


def at_first_call(monkeypatch, owner, name: str, fault) -> None:
    """Run ``fault()`` once, at the first call of ``owner.name`` (from any thread), before the call itself."""
    import threading

    real = getattr(owner, name)
    once, done = threading.Lock(), []

    def wrapper(*args, **kwargs):
        with once:
            if not done:
                done.append(True)
                fault()
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
