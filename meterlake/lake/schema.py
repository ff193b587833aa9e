"""The lake's columns: the read model's (:data:`meterlake.schema.READ_SCHEMA`) plus where each read came from on
Kafka, and the key that names one read (its versions share it)."""
from __future__ import annotations

import pyarrow as pa

from meterlake import schema

KAFKA_FIELDS = [
    pa.field("kafka_topic", pa.string(), nullable=False),
    pa.field("kafka_partition", pa.int32(), nullable=False),
    pa.field("kafka_offset", pa.int64(), nullable=False),
]
#: The columns of every lake file: the read model's, then where each read came from on Kafka.
LAKE_SCHEMA = pa.schema(list(schema.READ_SCHEMA) + KAFKA_FIELDS,
                        metadata={**schema.READ_SCHEMA.metadata, b"meterlake.schema": b"lake"})
LAKE_COLUMNS = tuple(LAKE_SCHEMA.names)

#: What identifies a read: two rows with the same key are versions of the same read (docs/lake.md).
READ_KEY = ("meter_point", "meter_serial", "register_id", "read_kind", "interval_start_utc", "device_id", "unit")

#: Which copy of a read's version is kept: the lowest Kafka position, then source position (nulls last).
FIRST_COPY = ("kafka_topic", "kafka_partition", "kafka_offset", "source_file", "source_line")
#: Which row of a read (:data:`READ_KEY`) is its live one: the highest ``source_version``, then its first copy
#: (:data:`FIRST_COPY`); nulls last. The ``reads`` view's SQL (streaming.mirror.query), the clean job's Spark
#: window (jobs.clean.vee.live_reads) and compaction's sort are built from it, so they all pick the same row,
#: before and after compaction.
LIVE_VERSION_ORDER = (("source_version", "descending"),) + tuple((name, "ascending") for name in FIRST_COPY)
