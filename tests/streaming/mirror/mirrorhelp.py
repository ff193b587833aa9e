"""Helpers for the mirror tests: literal reads, generated meter-days, a producer that records what it is sent."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa

from meterlake import calendar as cal
from meterlake import schema

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
