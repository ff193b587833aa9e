"""Helpers for the mirror tests: literal reads, generated meter-days, a producer that records what it is sent."""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from meterlake import calendar as cal
from meterlake import clients, schema
from meterlake.lake.files import Lake
from streaming import kafka_io
from streaming.mirror.query import sql

VERSION = 1_700_000_000_000_000  # a source version (2023-11-14T22:13:20Z)


def interval_reads(meter: str, starts: list[datetime], values: list[float], *, version: int = VERSION,
                   source_file: str = "test.csv") -> pa.Table:
    """Interval reads (kWh) of one meter, register S."""
    batch = schema.build_reads(meter_point=meter, fuel="electricity", register_id="S", read_kind="interval",
                               interval_start_utc=starts, value=values, unit="kWh", quality="actual",
                               source_file=source_file, source_version=version)
    return pa.Table.from_batches([batch])


def day_of_reads(meter: str, day: date, *, value: float = 0.5, version: int = VERSION) -> pa.Table:
    """One read in every settlement period of ``day``."""
    starts = [start for _, start in cal.periods(day)]
    return interval_reads(meter, starts, [value] * len(starts), version=version)


def meter_days(meters: int, days: int, start: date, *, seed: int = 7, version: int = VERSION,
               prefix: str = "MAC") -> pa.Table:
    """A :data:`~meterlake.schema.SET_SCHEMA` table: every meter, every day, every period; values in Wh steps."""
    rng = np.random.default_rng(seed)
    cols = {"meter_point": [], "settlement_date": [], "periods": [], "values": []}
    for d in range(days):
        day = start + timedelta(days=d)
        n = cal.periods_in_day(day)
        for m in range(meters):
            cols["meter_point"].append(f"{prefix}{m:06d}")
            cols["settlement_date"].append(day)
            cols["periods"].append(n)
            cols["values"].append((rng.integers(0, 2000, n) / 1000).tolist())
    k = len(cols["periods"])
    return pa.Table.from_pydict({
        **cols, "meter_serial": [None] * k, "fuel": ["electricity"] * k, "register_id": ["S"] * k,
        "unit": ["kWh"] * k, "source_version": [version] * k,
        "qualities": [["actual"] * p for p in cols["periods"]], "source_file": ["generated"] * k,
        "file_id": [None] * k, "batch_id": [None] * k,
    }, schema=schema.SET_SCHEMA)


@dataclass
class Sent:
    topic: str
    key: bytes
    value: bytes
    partition: int


class _Done:
    def get(self, timeout=None):
        return None


@dataclass
class RecordingProducer:
    """Stands in for KafkaProducer where only the messages matter (no broker involved)."""

    sent: list[Sent] = field(default_factory=list)

    def send(self, topic, key=None, value=None, partition=None):
        self.sent.append(Sent(topic, key, value, partition))
        return _Done()

    def flush(self):
        pass


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ------------------------------------------------------------------------------------ with the real broker

def mirror_settings(base, lake_dir: Path, **mirror):
    """``base`` with topics, group and lake of one test's own."""
    tag = uuid.uuid4().hex[:8]
    kafka = base.kafka.model_copy(update={"reads_topic": f"reads-{tag}", "devices_topic": f"devices-{tag}",
                                          "files_topic": f"files-{tag}", "quarantine_topic": f"quarantine-{tag}",
                                          "partitions": 3})
    opts = base.mirror.model_copy(update={"group_id": f"mirror-{tag}", "idle_flush_s": 0.5, **mirror})
    paths = base.paths.model_copy(update={"lake": str(lake_dir)})
    return base.model_copy(update={"kafka": kafka, "mirror": opts, "paths": paths})


def env_of(settings) -> dict[str, str]:
    """The environment that gives a subprocess these settings."""
    k, m = settings.kafka, settings.mirror
    env = dict(os.environ)
    env.update({
        "METERLAKE_PATHS__STATE_DIR": str(settings.state_dir), "METERLAKE_PATHS__LAKE": settings.paths.lake,
        "METERLAKE_STACK__PORT_OFFSET": str(settings.stack.port_offset),
        "METERLAKE_KAFKA__READS_TOPIC": k.reads_topic, "METERLAKE_KAFKA__DEVICES_TOPIC": k.devices_topic,
        "METERLAKE_KAFKA__FILES_TOPIC": k.files_topic, "METERLAKE_KAFKA__QUARANTINE_TOPIC": k.quarantine_topic,
        "METERLAKE_KAFKA__PARTITIONS": str(k.partitions),
    })
    for key, value in m.model_dump().items():
        if value is not None:
            env[f"METERLAKE_MIRROR__{key.upper()}"] = str(value)
    return env


def producer_for(settings):
    from kafka import KafkaProducer

    return KafkaProducer(**clients.kafka_options(settings), acks="all", enable_idempotence=True,
                         max_request_size=16 << 20)


def publish(settings, table: pa.Table, topic: str | None = None) -> None:
    clients.ensure_topics(settings)
    producer = producer_for(settings)
    try:
        kafka_io.publish_reads(producer, topic or settings.kafka.reads_topic, table, settings.kafka.partitions,
                               target_bytes=64 << 10)
    finally:
        producer.close()


def lake_counts(lake: Lake) -> list:
    return sql(lake, "SELECT count(*), count(DISTINCT (meter_point, interval_start_utc)), sum(value) "
                     "FROM reads_all")["rows"][0]
