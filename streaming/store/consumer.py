"""``meterlake store run``: consume ``meter-reads`` (and the quarantine topic) into Cassandra.

Loop: poll a batch; decode each message (Arrow IPC, :mod:`meterlake.schema`); write every row at the configured
consistency level and wait for all acknowledgements; only then commit the batch's offsets. A crash between the
writes and the commit replays the batch, which changes nothing (writes carry ``USING TIMESTAMP source_version``).
``until_caught_up`` drains what the topics hold at start and returns.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from meterlake import clients, schema
from meterlake.config import Settings
from streaming.store import keyspace
from streaming.store.writer import Writer

log = logging.getLogger(__name__)
GROUP = "meterlake-store"


@dataclass
class StoreResult:
    messages: int = 0
    rows: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"messages": self.messages, "rows": dict(self.rows), "seconds": round(self.seconds, 3)}


def _caught_up(consumer, end_offsets: dict) -> bool:
    return all(consumer.position(tp) >= end for tp, end in end_offsets.items())


def run(settings: Settings, *, until_caught_up: bool = False, group: str = GROUP, max_seconds: float | None = None,
        poll_records: int = 200) -> StoreResult:
    from kafka import KafkaConsumer

    topics = [settings.kafka.reads_topic, settings.kafka.quarantine_topic]
    session = clients.cassandra_session(settings, consistency=settings.cassandra.write_consistency)
    result = StoreResult()
    start = time.monotonic()
    try:
        keyspace.ensure(session, settings.cassandra.keyspace, settings.cassandra.replication_factor)
        writer = Writer(session, settings.cassandra.keyspace)
        consumer = KafkaConsumer(**clients.kafka_options(settings), group_id=group, enable_auto_commit=False,
                                 auto_offset_reset="earliest", max_poll_records=poll_records,
                                 fetch_max_bytes=32 * 1024 * 1024, max_partition_fetch_bytes=16 * 1024 * 1024)
        try:
            consumer.subscribe(topics)
            end_offsets = None
            while True:
                batch = consumer.poll(timeout_ms=1000)
                if until_caught_up and end_offsets is None and consumer.assignment():
                    end_offsets = consumer.end_offsets(list(consumer.assignment()))
                for records in batch.values():
                    for record in records:
                        result.rows.update(writer.write(schema.from_ipc_bytes(record.value)))
                        result.messages += 1
                if batch:
                    consumer.commit()  # every write of the batch is acknowledged by now
                if until_caught_up and end_offsets is not None and not batch and _caught_up(consumer, end_offsets):
                    break
                if max_seconds is not None and time.monotonic() - start > max_seconds:
                    break
        finally:
            consumer.close(autocommit=False)
    finally:
        session.cluster.shutdown()
    result.seconds = time.monotonic() - start
    return result
