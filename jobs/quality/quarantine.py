"""Ingest-time quarantine for the data-quality job: the lines ingest rejected, read from ``kafka.quarantine_topic``.

The job counts them beside VEE's quarantine (:mod:`jobs.quality.job`): per meter-day where the record names a
meter point and a settlement date (``ingest_quarantined_lines``), and per file and reason for all of them (the
output ``quality_ingest/ingest_quarantine.parquet``), so a line with no usable meter or time is counted too.

Only what is counted leaves Kafka: the file, the reason, and the meter point (pseudonymised, as everything in the
lake) and date; a record's raw line and detail keep identifiers in clear and stay in the topic and the store.
Grain of :func:`read`: one row per quarantine record on the topic (read_committed, from its beginning).
"""
from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.compute as pc

from meterlake import clients, privacy, pseudonym, schema
from meterlake.errors import MeterlakeError

COLUMNS = ("source_file", "reason", "meter_point", "settlement_date")
BY_FILE = pa.schema([pa.field("source_file", pa.string()), pa.field("reason", pa.string()),
                     pa.field("lines", pa.int64()), pa.field("meter_day_lines", pa.int64())])
OUTPUT = "quality_ingest/ingest_quarantine.parquet"


def empty() -> pa.Table:
    return schema.QUARANTINE_SCHEMA.empty_table().select(list(COLUMNS))


def conform(table: pa.Table) -> pa.Table:
    """The counted columns of a quarantine table of any schema version (a column it lacks: nulls)."""
    types = {name: schema.QUARANTINE_SCHEMA.field(name).type for name in COLUMNS}
    return pa.table({name: table.column(name).cast(types[name]) if name in table.column_names
                     else pa.nulls(table.num_rows, types[name]) for name in COLUMNS})


def read(settings) -> pa.Table:
    """Every quarantine record on the topic, its meter points pseudonymised (:data:`COLUMNS`); empty when no
    Kafka is configured. A broker that does not answer within ``kafka.wait_timeout_s`` (each request, and the
    whole read within ten of them) is an error, not a silent zero."""
    if not settings.kafka.bootstrap_servers:
        return empty()
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    topic = settings.kafka.quarantine_topic
    wait_ms = max(int(settings.kafka.wait_timeout_s * 1000), 1000)
    within_s = 10 * wait_ms / 1000
    deadline = time.monotonic() + within_s
    tables = []
    try:
        consumer = KafkaConsumer(**clients.kafka_options(settings), group_id=None, enable_auto_commit=False,
                                 isolation_level="read_committed", bootstrap_timeout_ms=wait_ms,
                                 request_timeout_ms=wait_ms)
        try:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = consumer.end_offsets(tps, timeout_ms=wait_ms)
            while any(consumer.position(tp, timeout_ms=wait_ms) < ends[tp] for tp in tps):
                if time.monotonic() > deadline:
                    raise MeterlakeError(f"{topic}: not read to its end within {within_s:g}s; data quality "
                                         "counts ingest quarantine from it", topic=topic)
                for records in consumer.poll(timeout_ms=500).values():
                    tables += [_decode(r.value) for r in records]
        finally:
            consumer.close()
    except KafkaError as exc:
        raise MeterlakeError(f"cannot read {topic} for the ingest quarantine: {exc}", topic=topic) from None
    tables = [t for t in tables if t is not None]
    if not tables:
        return empty()
    # an erased meter's lines stay in the topic until its retention; they are not counted (docs/privacy.md)
    out = privacy.without_erased(privacy.erasure_list(settings), pa.concat_tables(tables))
    at = out.schema.get_field_index("meter_point")
    return out.set_column(at, "meter_point", pseudonym.for_settings(settings).array(out.column(at)))


def _decode(value: bytes) -> pa.Table | None:
    try:
        table = pa.ipc.open_stream(pa.py_buffer(value)).read_all()
    except (pa.ArrowInvalid, OSError):
        return None  # not ours: the store quarantines such a message itself
    return conform(table) if schema.schema_name(table.schema) == "quarantine" else None


def per_meter_day(records: pa.Table) -> pa.Table:
    """(settlement_date, meter_point, ingest_quarantined_lines) of the records naming both."""
    named = records.filter(pc.and_(pc.is_valid(records.column("meter_point")),
                                   pc.is_valid(records.column("settlement_date"))))
    counted = named.group_by(["settlement_date", "meter_point"]).aggregate([("reason", "count")])
    return pa.table({"settlement_date": counted.column("settlement_date"),
                     "meter_point": counted.column("meter_point"),
                     "ingest_quarantined_lines": counted.column("reason_count").cast(pa.int32())})


def per_file(records: pa.Table) -> pa.Table:
    """Every record counted by (source_file, reason): ``lines``, and of them ``meter_day_lines`` (counted per
    meter-day too). Sorted, so the same records give the same bytes."""
    named = pc.and_(pc.is_valid(records.column("meter_point")), pc.is_valid(records.column("settlement_date")))
    flagged = pa.table({"source_file": records.column("source_file"), "reason": records.column("reason"),
                        "named": pc.cast(named, pa.int64())})
    counted = flagged.group_by(["source_file", "reason"]).aggregate([("named", "count"), ("named", "sum")])
    out = pa.table({"source_file": counted.column("source_file"), "reason": counted.column("reason"),
                    "lines": counted.column("named_count"), "meter_day_lines": counted.column("named_sum")},
                   schema=BY_FILE)
    return out.sort_by([("source_file", "ascending"), ("reason", "ascending")])
