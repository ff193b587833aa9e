"""Serving aggregates: what the customer-facing applications read, computed off the lake and written into Cassandra
through the Spark Cassandra Connector.

Run: ``meterlake job serve --from 2024-10-26 --to 2024-10-28 [--json]``
(or ``spark-submit jobs/serve/job.py --from … --to …``; the tables must exist: the CLI creates them with the
store's keyspace migration, :mod:`meterlake.keyspace`).

``daily_consumption``: per meter point, settlement date, register and unit, the day's consumption from the lake's
live reads (the latest version of each half-hourly read, docs/lake.md; a ``withdrawn`` read counts for nothing), the
periods read, those the source estimated, the estimated share (estimated / read), the day's expected periods (46,
48 or 50) and the highest source version among the day's reads. Partition ``(meter_point, month)``, clustered by
date (newest first), register, unit: "a meter's days of a month / of a bill period" reads one or two partitions
(docs/jobs.md has the queries). The lake holds pseudonyms; the applications know meter points: the job maps them
back through the store's own meter points (``hh_sets``' partition keys, pseudonymised on the driver with the
lake's key), and a meter the store does not know is left out (and counted).

Writes are upserts at ``cassandra.write_consistency``, each cell written ``USING TIMESTAMP`` the day's highest
source version: a re-run with the same reads writes the same cells with the same timestamps (nothing changes), and
an older computation never overwrites a newer one. Batching and throughput: ``[cassandra] connector_*``.

``bill_summaries``: per account and meter point, the latest of the lake's bills (the current version of every
``meterlake job bill`` run's ``billing/bills``; latest: the greatest ``bill_to``, then ``bill_from``, then the
run's ``--to`` and ``--from``), whatever ``--from``/``--to``: its tariff, period, status and money. Partition
``account``: "an account's latest bill" is one partition. Written without an explicit write time: the rows are
chosen from every bill in the lake, so any run writes the same rows, and a re-billed (corrected) period replaces
the old values.

Grain of ``daily_consumption``: one row per (meter_point, settlement_date, register_id, unit); of
``bill_summaries``: one row per (account, meter_point).
"""
from __future__ import annotations

import sys
import time
from datetime import date
from typing import TYPE_CHECKING

from jobs import lakeio, storeio
from jobs.backfill.job import dates
from jobs.clean import vee
from meterlake import jobruns

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

JOB = "serve"
TABLES = ("daily_consumption", "bill_summaries")
SUMMARY_COLUMNS = ("tariff", "kind", "bill_from", "bill_to", "days", "status", "energy_kwh", "estimated_kwh",
                   "energy_p", "standing_p", "net_p", "vat_rate", "vat_p", "total_p", "unpriced_periods")


# ------------------------------------------------------------------------------------------------- extract


def extract(spark: SparkSession, jl: lakeio.JobLake, days: list[date]) -> DataFrame:
    """The live interval reads of the lake on ``days``."""
    reads = lakeio.read_lake_days(spark, jl, {d: frozenset({"interval"}) for d in days})
    return vee.live_reads(reads).drop("versions", "duplicate_conflict")


def bills(spark: SparkSession, jl: lakeio.JobLake) -> DataFrame:
    """Every bill of the lake: the current version of each bill run's ``billing/bills`` file."""
    from jobs.bill import job as bill
    from meterlake.lake import outputs

    urls = [jl.spark_url_of(p) for p in outputs.view_files(jl.lake, ["bills"])["bills"]]
    return lakeio.read_files(spark, urls, lakeio.spark_schema(bill.BILLS_SCHEMA))


def meter_points(spark: SparkSession, keyspace: str, first: date, last: date, pseudonyms) -> DataFrame:
    """``pseudonym, identifier`` of the store's meter points with half-hourly rows in the months of the dates."""
    from pyspark.sql import functions as F

    keys = (storeio.table(spark, keyspace, "hh_sets").select("meter_point", "month")
            .filter(F.col("month").isin(storeio.months(first, last))).select("meter_point").distinct())
    rows = [(pseudonyms.one(r[0]), r[0]) for r in keys.collect()]
    return lakeio.small_frame(spark, rows, "pseudonym string, identifier string")


# ----------------------------------------------------------------------------------------------- transform


def daily_consumption(reads: DataFrame, calendar: DataFrame, meters: DataFrame) -> DataFrame:
    """The ``daily_consumption`` rows of the live interval reads (see the module docstring), meter points as the
    store knows them (``meters``: ``pseudonym, identifier``; a meter without one is dropped)."""
    from pyspark.sql import functions as F

    counted = F.col("quality") != "withdrawn"
    estimated = F.col("quality") == "estimated"
    expected = calendar.groupBy("settlement_date").agg(F.max("periods").cast("short").alias("expected_periods"))
    day = (reads.groupBy("meter_point", "settlement_date", "register_id", "unit")
           .agg(F.max("fuel").alias("fuel"),
                F.round(F.coalesce(F.sum(F.when(counted, F.col("value"))), F.lit(0.0)), 6).alias("consumption"),
                F.count(F.when(counted, 1)).cast("short").alias("periods"),
                F.count(F.when(counted & estimated, 1)).cast("short").alias("estimated_periods"),
                F.max("source_version").alias("source_version")))
    return (day.join(F.broadcast(meters).withColumnRenamed("pseudonym", "meter_point"), "meter_point")
            .join(F.broadcast(expected), "settlement_date")
            .select(F.col("identifier").alias("meter_point"),
                    F.date_format("settlement_date", "yyyy-MM").alias("month"), "settlement_date",
                    F.coalesce("register_id", F.lit("")).alias("register_id"), "unit", "fuel", "consumption",
                    "periods", "estimated_periods",
                    F.when(F.col("periods") > 0, F.round(F.col("estimated_periods") / F.col("periods"), 6))
                    .otherwise(F.lit(0.0)).alias("estimated_share"),
                    "expected_periods", "source_version"))


def bill_summaries(bills: DataFrame, meters: DataFrame) -> DataFrame:
    """The ``bill_summaries`` rows: per account and meter point its latest bill (the module docstring), meter
    points as the store knows them (``meters``: ``pseudonym, identifier``; a meter without one is dropped)."""
    from pyspark.sql import functions as F

    order = [F.col(c).alias(f"order_{c}") for c in ("bill_to", "bill_from", "run_to", "run_from")]
    latest = (bills.groupBy("account", "meter_point")
              .agg(F.max(F.struct(*order, *SUMMARY_COLUMNS)).alias("b"))
              .select("account", "meter_point", *(F.col(f"b.{c}").alias(c) for c in SUMMARY_COLUMNS)))
    return (latest.join(F.broadcast(meters).withColumnRenamed("pseudonym", "meter_point"), "meter_point")
            .select("account", F.col("identifier").alias("meter_point"), *SUMMARY_COLUMNS))


# ---------------------------------------------------------------------------------------------------- load


PARTITION_KEYS = {"daily_consumption": ("meter_point", "month"), "bill_summaries": ("account",)}


def load(rows: DataFrame, keyspace: str, table: str, writetime: str | None = "source_version") -> None:
    """Upsert ``rows`` through the connector, each row's cells written at its ``writetime`` column (None: the
    connector's time of writing). The rows of one Cassandra partition are brought together, one after another,
    first: the connector batches rows of the same partition (``[cassandra] connector_batch_grouping_key``) only
    among those it holds at once, so rows in the aggregate's order go one a batch."""
    keys = PARTITION_KEYS[table]
    storeio.table(rows.sparkSession, keyspace, table)  # the connector's session knows the table (made a moment ago?)
    rows = rows.repartition(*keys).sortWithinPartitions(*keys)
    writer = rows.write.format(storeio.FORMAT).options(keyspace=keyspace, table=table)
    if writetime is not None:
        writer = writer.option("writetime", writetime)
    writer.mode("append").save()


def missing_tables(settings) -> list[str]:
    """The serving tables absent from the keyspace (the store's keyspace migration creates them)."""
    from meterlake import clients

    session = clients.cassandra_session(settings, consistency=settings.cassandra.read_consistency)
    try:
        present = {r.table_name for r in session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (settings.cassandra.keyspace,))}
    finally:
        session.cluster.shutdown()
    return [t for t in TABLES if t not in present]


# ----------------------------------------------------------------------------------------------------- run


@jobruns.recorded("serve")
def run(settings, first: date, last: date, *, spark: SparkSession | None = None, master: str | None = None,
        force: bool = False) -> dict:
    """Write the serving tables for the dates ``first`` to ``last``; the answer (``force`` is accepted for the
    jobs' common options: upserts of the same rows change nothing)."""
    from meterlake import pseudonym
    from meterlake.errors import UsageError

    started = time.monotonic()
    days = dates(first, last)
    keyspace = settings.cassandra.keyspace
    missing = missing_tables(settings)
    if missing:
        raise UsageError(f"the serving tables {missing} are not in keyspace {keyspace}: create them with the "
                         "store's keyspace migration (`meterlake job serve` runs it; so does `meterlake store run`)",
                         keyspace=keyspace, tables=missing)
    jl = lakeio.open_job_lake(settings)
    with storeio.session(settings, f"meterlake-serve-{first}-{last}", spark, master) as s:
        meters = meter_points(s, keyspace, first, last, pseudonym.for_settings(settings))
        rows = vee.materialize(daily_consumption(extract(s, jl, days), lakeio.calendar_frame(s, days), meters))
        written = rows.count()
        load(rows, keyspace, "daily_consumption")
        summaries = vee.materialize(bill_summaries(bills(s, jl), meters))
        summarised = summaries.count()
        load(summaries, keyspace, "bill_summaries", writetime=None)
    return {"status": "served", "tables": {"daily_consumption": written, "bill_summaries": summarised},
            "from": first, "to": last,
            "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    return lakeio.job_main(argv, "serve", __doc__, lambda settings, a, **kw: run(
        settings, a.first, a.last, **kw))


if __name__ == "__main__":
    sys.exit(main())
