"""What the jobs that touch Cassandra share: a session with the Spark Cassandra Connector, the event store's tables
as DataFrames, and writes through the connector.

Only three jobs read or write Cassandra: ``backfill`` (the lake rebuilt from the store), ``reconcile`` (the store
and the lake compared) and ``serve`` (aggregates the applications read, written into the store's keyspace). Every
other job reads the lake only and builds its session without the connector (:func:`jobs.lakeio.session`).

The store's tables are described in :mod:`meterlake.keyspace`. A half-hourly row (``hh_sets``) holds per
period the latest value written, each map cell written ``USING TIMESTAMP source_version``: the cells' write times
(``writetime(values)``, a list in key order, Cassandra 5.0 and later, through the connector's SQL extensions) are
the per-period source versions.
"""
from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from jobs import lakeio

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from meterlake.config import Settings

FORMAT = "org.apache.spark.sql.cassandra"


def connector_conf(settings: Settings) -> dict[str, str]:
    """The connector's connection settings (:func:`meterlake.spark.cassandra_conf`) and the tuning ones of
    ``[cassandra]`` (``connector_*``: read split size, write batching and throughput)."""
    from meterlake.spark import cassandra_conf

    c = settings.cassandra
    conf = cassandra_conf(settings)
    if not conf:
        from meterlake.errors import UsageError

        raise UsageError("no Cassandra to connect to: set cassandra.contact_points, or start the local stack "
                         "(`meterlake stack up --services cassandra`)")
    conf.update({
        "spark.cassandra.input.split.sizeInMB": str(c.connector_split_size_mb),
        "spark.cassandra.output.batch.size.rows": str(c.connector_batch_rows),
        "spark.cassandra.input.fetch.sizeInRows": str(c.connector_fetch_rows),
        "spark.cassandra.output.batch.grouping.key": c.connector_batch_grouping_key,
        "spark.cassandra.output.concurrent.writes": str(c.connector_concurrent_writes),
        "spark.cassandra.output.throughputMBPerSec": str(c.connector_throughput_mb_s),
    })
    return conf


def session(settings: Settings, app: str, spark: SparkSession | None = None, master: str | None = None):
    """A job's session with the connector: ``spark`` when given (it must carry the connector's jars and
    extensions, as :func:`meterlake.spark.build_spark` makes them), else one built with them and stopped at the
    end. The connection settings are set on it (:func:`connector_conf`), with :data:`jobs.lakeio.JOB_CONF`."""
    return lakeio.session(settings, app, spark, master, connector_conf=connector_conf(settings))


#: how long :func:`table` waits for the connector's session to learn of a table made a moment ago
SCHEMA_WAIT_S = 30.0


def table(spark: SparkSession, keyspace: str, name: str, *, within_s: float = SCHEMA_WAIT_S) -> DataFrame:
    """The table through the connector. A connector session opened before the table was made (one cached in a
    caller's long-lived Spark session; a job's own session opens after) learns of it from a debounced schema event
    about a second later, and until then answers "Couldn't find": wait for it, bounded by ``within_s``."""
    import time

    from pyspark.errors import AnalysisException

    deadline = time.monotonic() + within_s
    while True:
        try:
            return spark.read.format(FORMAT).options(keyspace=keyspace, table=name).load()
        except AnalysisException as exc:
            if "Couldn't find" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def months(first: date, last: date) -> list[str]:
    """The ``month`` partition keys (``YYYY-MM``) of the dates ``first`` to ``last``."""
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def hh_sets(spark: SparkSession, keyspace: str, first: date, last: date,
            meter_point: str | None = None) -> DataFrame:
    """The half-hourly rows of the settlement dates ``first`` to ``last`` (of one meter point when given), with
    ``versions``: the write times of the ``values`` cells, in key (period) order.

    The date range is pushed down to Cassandra (the first clustering column); one meter point's rows are read
    from its month partitions only."""
    from pyspark.sql import functions as F

    df = table(spark, keyspace, "hh_sets")
    if meter_point is not None:
        df = df.filter((F.col("meter_point") == meter_point) & F.col("month").isin(months(first, last)))
    df = df.filter((F.col("settlement_date") >= F.lit(first)) & (F.col("settlement_date") <= F.lit(last)))
    return df.select("meter_point", "settlement_date", "register_id", "meter_serial", "unit", "fuel", "periods",
                     "values", "qualities", "source_version", "source_file", "file_id", "batch_id",
                     F.expr("writetime(values)").alias("versions"))


def register_reads(spark: SparkSession, keyspace: str, first: date, last: date,
                   meter_point: str | None = None) -> DataFrame:
    """The register reads of the years of ``first`` to ``last`` (the caller keeps those of its dates: a
    register read's settlement date comes from its instant, :mod:`meterlake.calendar`)."""
    from pyspark.sql import functions as F

    df = table(spark, keyspace, "register_reads")
    years = list(range(first.year, last.year + 1))
    if meter_point is not None:
        df = df.filter(F.col("meter_point") == meter_point)
    return df.filter(F.col("year").isin(years))
