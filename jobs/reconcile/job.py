"""Reconcile the Cassandra event store with the lake, per meter and settlement date.

Run: ``meterlake job reconcile --from 2024-10-26 --to 2024-10-28 [--json]``
(or ``spark-submit jobs/reconcile/job.py --from … --to …``).

Both sides are taken as reads of the lake's shape: the store's through the connector, as the back-fill rebuilds
them (:mod:`jobs.backfill.job`: per half-hour the latest version, register reads), the lake's as the live version of
each read (:func:`jobs.clean.vee.live_reads`). Device reads are left out (the store keeps them 90 days only).
Reads are matched on the read key (docs/lake.md); per meter-day the report counts reads and kWh on each side, the
highest source version on each, the reads on one side only and the reads whose live value, quality or version
differ.

Kafka's lag: the store and the mirror consume the same topic, each at its own pace, and every read of a meter is
on one partition. A meter-day on a partition where the mirror (or the store) has not yet consumed every message
may differ only because of it: its differences are counted as ``pending``, not as differences, and the answer
says how far each consumer had got (committed offsets against the end of each partition).

Grain of the output (``reconciliation/settlement_date=D/part-*.parquet``, the ``reconciliation`` view of
``meterlake lake sql``): one row per (settlement_date, meter_point) with a read on either side.
"""
from __future__ import annotations

import sys
import time
from datetime import date
from typing import TYPE_CHECKING

from jobs import lakeio, storeio
from jobs.backfill import job as backfill
from jobs.clean import vee
from jobs.options import STORE_GROUP  # streaming.store.consumer's consumer group
from meterlake import jobruns

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

JOB = "reconcile"
OUTPUT = "reconciliation/settlement_date={day}"
KEY = ("meter_point", "meter_serial", "register_id", "read_kind", "interval_start_utc", "device_id", "unit")


def output_dir(day: date) -> str:
    return OUTPUT.format(day=day.isoformat())


# ----------------------------------------------------------------------------------------------- Kafka's lag


def kafka_partition(identifier: str, partitions: int) -> int:
    """The partition of a meter point's reads: Kafka's default partitioner (murmur2) of its UTF-8 bytes, as the
    ingest publishes them."""
    from kafka.partitioner.default import murmur2

    return (murmur2(identifier.encode()) & 0x7FFFFFFF) % partitions


def consumer_positions(settings, groups: dict[str, str], timeout_s: float = 15.0) -> dict | None:
    """Per partition of the reads topic: its end offset and, per group, ``{"committed": offset or None,
    "behind": bool}``; None when Kafka cannot be asked.

    A group is behind on a partition when a committed record lies at or after its committed offset. Not
    ``committed < end``: the ingest publishes in transactions, and a transaction's commit marker takes an offset
    that no consumer ever reads, so a caught-up consumer commits below the end."""
    try:
        from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

        from meterlake import clients

        options = clients.kafka_options(settings)
        topic = settings.kafka.reads_topic
        consumer = KafkaConsumer(**options, enable_auto_commit=False, isolation_level="read_committed")
        admin = KafkaAdminClient(**options, request_timeout_ms=15000)
        try:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            ends = consumer.end_offsets(tps)
            out = {tp.partition: {"end": ends[tp]} for tp in tps}
            for name, group in groups.items():
                committed = admin.list_group_offsets({group: tps}).get(group, {})
                for tp in tps:
                    at = committed.get(tp)
                    offset = None if at is None or at.offset < 0 else at.offset
                    out[tp.partition][name] = {"committed": offset,
                                               "behind": _unread(consumer, tp, offset or 0, ends[tp], timeout_s)}
            return out
        finally:
            consumer.close()
            admin.close()
    except Exception:  # noqa: BLE001 (no Kafka: the lag is unknown, and said so)
        return None


def _unread(consumer, tp, committed: int, end: int, timeout_s: float) -> bool:
    """Is there a committed record at or after ``committed`` (before ``end``)? Undecided within the time: yes."""
    if committed >= end:
        return False
    consumer.assign([tp])
    consumer.seek(tp, committed)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if consumer.poll(timeout_ms=500, max_records=1).get(tp):
            return True
        if consumer.position(tp) >= end:  # only transaction markers (or aborted records) were left
            return False
    return True


def lagging(positions: dict | None) -> list[int]:
    """The partitions where the mirror or the store has not consumed every message."""
    if positions is None:
        return []
    return sorted(p for p, at in positions.items() if at["mirror"]["behind"] or at["store"]["behind"])


# ------------------------------------------------------------------------------------------------- extract


def lake_reads(spark: SparkSession, jl: lakeio.JobLake, days: list[date]) -> DataFrame:
    """The live version of every interval and register read of the lake on ``days``."""
    reads = lakeio.read_lake_days(spark, jl, {d: frozenset(backfill.KINDS) for d in days})
    return vee.live_reads(reads).drop("versions", "duplicate_conflict")


# ----------------------------------------------------------------------------------------------- transform


def _side(df: DataFrame, prefix: str) -> DataFrame:
    from pyspark.sql import functions as F

    return df.select(*KEY, *[F.col(c).alias(f"{prefix}_{c}") for c in (
        "settlement_date", "value", "quality", "source_version")])


def transform(lake: DataFrame, store: DataFrame, meters: DataFrame, *, lagging_partitions: list[int]) -> DataFrame:
    """Per (settlement_date, meter_point): each side's reads, kWh and highest version, the reads on one side
    only, the reads whose value, quality or version differ, and whether the meter-day is a difference or
    ``pending`` (its partition in Kafka's lag). ``meters``: ``meter_point, kafka_partition`` of the store's
    meters (pseudonyms); a meter only in the lake takes its partition from its rows."""
    from pyspark.sql import functions as F

    on = [F.col(f"l.{k}").eqNullSafe(F.col(f"s.{k}")) for k in KEY]
    joined = (_side(lake, "lake").alias("l").join(_side(store, "store").alias("s"), on, "full_outer")
              .select(*[F.coalesce(F.col(f"l.{k}"), F.col(f"s.{k}")).alias(k) for k in KEY],
                      F.coalesce("lake_settlement_date", "store_settlement_date").alias("settlement_date"),
                      *[F.col(f"{side}_{c}") for side in ("lake", "store")
                        for c in ("value", "quality", "source_version")]))
    in_lake, in_store = F.col("lake_source_version").isNotNull(), F.col("store_source_version").isNotNull()
    kwh = (F.col("read_kind") == "interval") & (F.col("unit") == "kWh")

    def count(condition):
        return F.count(F.when(condition, F.lit(1))).cast("long")

    differs = in_lake & in_store & ((F.col("lake_source_version") != F.col("store_source_version"))
                                    | ~F.col("lake_value").eqNullSafe(F.col("store_value"))
                                    | ~F.col("lake_quality").eqNullSafe(F.col("store_quality")))
    per_day = joined.groupBy("settlement_date", "meter_point").agg(
        count(in_lake).alias("lake_reads"), count(in_store).alias("store_reads"),
        F.round(F.coalesce(F.sum(F.when(kwh, F.col("lake_value"))), F.lit(0.0)), 6).alias("lake_kwh"),
        F.round(F.coalesce(F.sum(F.when(kwh, F.col("store_value"))), F.lit(0.0)), 6).alias("store_kwh"),
        F.max("lake_source_version").alias("lake_max_version"),
        F.max("store_source_version").alias("store_max_version"),
        count(in_lake & ~in_store).alias("only_in_lake"), count(in_store & ~in_lake).alias("only_in_store"),
        count(differs).alias("different"))
    lake_partitions = lake.groupBy("meter_point").agg(F.min("kafka_partition").alias("lake_partition"))
    out = (per_day.join(F.broadcast(meters), "meter_point", "left").join(lake_partitions, "meter_point", "left")
           .withColumn("kafka_partition", F.coalesce("kafka_partition", "lake_partition").cast("int")))
    unequal = (F.col("only_in_lake") + F.col("only_in_store") + F.col("different")) > 0
    pending = unequal & F.col("kafka_partition").isin(lagging_partitions or [-1])
    return (out.withColumn("is_pending", pending).withColumn("is_difference", unequal & ~pending)
            .select("settlement_date", "meter_point", "kafka_partition", "lake_reads", "store_reads", "lake_kwh",
                    "store_kwh", "lake_max_version", "store_max_version", "only_in_lake", "only_in_store",
                    "different", "is_difference", "is_pending")
            .orderBy("settlement_date", "meter_point"))


# ----------------------------------------------------------------------------------------------------- run


@jobruns.recorded("reconcile")
def run(settings, first: date, last: date, *, store_group: str = STORE_GROUP, spark: SparkSession | None = None,
        master: str | None = None, force: bool = False) -> dict:
    """Compare the dates ``first`` to ``last``; write the report; the answer (``force`` is accepted for the
    jobs' common options: a reconciliation always runs)."""
    from pyspark.sql import functions as F

    from meterlake import pseudonym

    started = time.monotonic()
    days = backfill.dates(first, last)
    keyspace = settings.cassandra.keyspace
    pseudonyms = pseudonym.for_settings(settings)
    jl = lakeio.open_job_lake(settings)
    # the consumers' positions first: a read either consumer had by then is in its table when we read it
    positions = consumer_positions(settings, {"mirror": settings.mirror.group_id, "store": store_group})
    behind = lagging(positions)
    with storeio.session(settings, f"meterlake-reconcile-{first}-{last}", spark, master) as s:
        sets, registers = backfill.extract(s, keyspace, first, last)
        sets, registers = sets.persist(), registers.persist()
        try:
            ids = backfill.pseudonym_frame(s, sets, registers, pseudonyms)
            partitions = settings.kafka.partitions if positions is None else len(positions)
            clear = {r[0] for r in sets.select("meter_point").union(registers.select("meter_point")).collect()}
            meters = lakeio.small_frame(s, [(pseudonyms.one(m), kafka_partition(m, partitions)) for m in clear],
                                        "meter_point string, kafka_partition int")
            store = backfill.transform(sets, registers, lakeio.calendar_frame(s, days), ids,
                                       topic=backfill.topic_of(keyspace))
            report = vee.materialize(transform(lake_reads(s, jl, days), store, meters, lagging_partitions=behind)
                                     .withColumn("reconciled_at", F.lit(lakeio.now_utc()).cast("timestamp")))
            totals = {r["settlement_date"]: r.asDict() for r in report.groupBy("settlement_date").agg(
                F.count("*").alias("meters"), F.sum("lake_reads").alias("lake_reads"),
                F.sum("store_reads").alias("store_reads"), F.sum("lake_kwh").alias("lake_kwh"),
                F.sum("store_kwh").alias("store_kwh"),
                F.count(F.when(F.col("is_difference"), 1)).alias("differences"),
                F.count(F.when(F.col("is_pending"), 1)).alias("pending")).collect()}
            for day in days:
                lakeio.write_spark_dir(report.filter(F.col("settlement_date") == F.lit(day)).coalesce(1), jl,
                                       output_dir(day))
        finally:
            sets.unpersist()
            registers.unpersist()
    out = []
    for day in days:
        t = totals.get(day, {})
        out.append({"settlement_date": day, "meters": t.get("meters", 0), "lake_reads": t.get("lake_reads", 0),
                    "store_reads": t.get("store_reads", 0), "lake_kwh": round(t.get("lake_kwh") or 0.0, 3),
                    "store_kwh": round(t.get("store_kwh") or 0.0, 3), "differences": t.get("differences", 0)})
    differences = sum(d["differences"] for d in out)
    pending = sum(t.get("pending", 0) for t in totals.values())
    return {"status": "differences" if differences else "clean", "dates": out, "differences": differences,
            "message": _message(out, differences, pending, positions, time.monotonic() - started)}


def _message(out: list[dict], differences: int, pending: int, positions: dict | None, seconds: float) -> str:
    if positions is None:
        lag = "Kafka's lag unknown (Kafka could not be asked): every difference is counted"
    else:
        def behind(side):
            return sum(at[side]["behind"] for at in positions.values())

        lag = (f"Kafka's lag: of the reads topic's {len(positions)} partitions, the mirror had consumed every "
               f"message of all but {behind('mirror')}, the store of all but {behind('store')}")
        if pending:
            lag += f"; {pending} meter-day(s) differ on partitions still in that lag (pending, not differences)"
    return (f"{len(out)} date(s), {sum(d['meters'] for d in out)} meter-days compared: {differences} "
            f"difference(s); {lag} ({seconds:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    return lakeio.job_main(argv, "reconcile", __doc__, lambda settings, a, **kw: run(
        settings, a.first, a.last, store_group=a.store_group, **kw))


if __name__ == "__main__":
    sys.exit(main())
