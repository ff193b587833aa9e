"""A rolling upgrade: a message of the next schema version goes through the mirror and the store, which decode it
with the one decoder (streaming.kafka_io.decode_table) and so agree: an added optional column is read by both; a
change this version cannot read stops both, and neither commits past it."""
from __future__ import annotations

import uuid
from datetime import date

import pyarrow as pa
import pytest

from meterlake import calendar as cal
from meterlake import clients, schema
from meterlake.lake.files import open_lake
from streaming import kafka_io
from streaming.mirror.consumer import Mirror
from streaming.mirror.query import sql
from tests.streaming.mirror.mirrorhelp import interval_reads, producer_for
from tests.streaming.stackhelp import consume, isolated, query, store

pytestmark = pytest.mark.stack

DAY = date(2024, 1, 10)


def _next_version(extra: pa.Field, meter: str) -> bytes:
    """A set message of schema version SCHEMA_VERSION + 1 with one more column (null or not, by the field)."""
    starts = [start for _, start in cal.periods(DAY)][:2]
    sets = schema.pack_table(interval_reads(meter, starts, [0.25, 0.5]))
    sets = sets.append_column(extra, pa.array(["T1"] * sets.num_rows, extra.type))
    sets = sets.replace_schema_metadata({b"meterlake.schema": b"set",
                                         b"meterlake.schema_version": str(schema.SCHEMA_VERSION + 1).encode()})
    return schema.to_ipc_bytes(sets)


def _send(settings, meter: str, value: bytes) -> None:
    clients.ensure_topics(settings)
    producer = producer_for(settings)
    try:
        partition = kafka_io.partition_for(meter, settings.kafka.partitions)
        producer.send(settings.kafka.reads_topic, key=meter.encode(), value=value, partition=partition).get(30)
    finally:
        producer.close()


@pytest.fixture
def settings(kafka_stack, cassandra_stack):
    base = isolated(cassandra_stack, "upgrade")
    return base.model_copy(update={"mirror": base.mirror.model_copy(update={
        "group_id": f"mirror-{uuid.uuid4().hex[:8]}", "idle_flush_s": 0.2})})


def test_the_next_versions_message_reaches_the_lake_and_the_store_or_stops_both(settings):
    # GIVEN a message of the next schema version that only adds an optional column
    _send(settings, "MAC000001", _next_version(pa.field("tariff", pa.string()), "MAC000001"))
    # WHEN the mirror and the store consume it
    Mirror(settings).run(until_caught_up=True)
    stored = store(settings)
    # THEN both hold its two reads, and neither quarantined it
    lake = open_lake(settings)
    assert sql(lake, "SELECT count(*), sum(value) FROM reads_all")["rows"] == [[2, 0.75]]
    assert stored["incompatible_messages"] == 0 and stored["rows"].get("hh_sets") == 1
    assert len(query(settings, "SELECT meter_point FROM {ks}.hh_sets")) == 1
    # GIVEN then a message of the next version that this one cannot read (a required column added)
    _send(settings, "MAC000002", _next_version(pa.field("tariff", pa.string(), nullable=False), "MAC000002"))
    # THEN both stop on it, and a second run stops again: neither committed past it
    for _ in range(2):
        with pytest.raises(kafka_io.UpgradeRequired, match="schema version 2"):
            Mirror(settings).run(until_caught_up=True)
        with pytest.raises(kafka_io.UpgradeRequired, match="schema version 2"):
            store(settings)
    assert sql(lake, "SELECT count(*) FROM reads_all")["rows"] == [[2]]
    assert len(query(settings, "SELECT meter_point FROM {ks}.hh_sets")) == 1
    assert consume(settings, settings.kafka.quarantine_topic) == []
