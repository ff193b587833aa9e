"""What the lake buys over reading Cassandra, and the connector's write rate.

1. The settlement aggregate (kWh per settlement date and period over every meter's live half-hours) computed by
   Spark from the Parquet lake, against the same aggregate read through the Spark Cassandra Connector from the
   event store's ``hh_sets``: the same rows (checked), one run each after a warm-up, as a ratio (goal: the lake at
   least 10 times faster).
2. The serving table ``daily_consumption`` written through the connector, against the Python driver's concurrent
   inserts of the same rows (``execute_concurrent_with_args``, as the store writes): rows/s, as a ratio.

Starts its own single-node Cassandra (state dir METERLAKE_BENCH_STATE_DIR, default build/bench-stack; port offset
METERLAKE_BENCH_PORT_OFFSET, default 2000) and stops it at the end. The store is filled by the store's own writer,
the lake with the mirror's rows (identifiers left in clear here, so both sides' rows compare). Scale: small 96k
reads (2,000 meter-days), full 2.4M (50,000); ``METERLAKE_BENCH_CONNECTOR_METER_DAYS`` overrides the meter-days. The
connector's settings are the configuration's (``[cassandra] connector_*``, or METERLAKE_CASSANDRA__CONNECTOR_…).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.bench_mirror import _sets
from benchmarks.harness import Report
from meterlake import config

ROOT = Path(__file__).resolve().parents[1]


def _settings(lake: Path) -> config.Settings:
    base = config.load(None)
    state = Path(os.environ.get("METERLAKE_BENCH_STATE_DIR", ROOT / "build" / "bench-stack"))
    offset = int(os.environ.get("METERLAKE_BENCH_PORT_OFFSET", "2000"))
    return base.model_copy(update={
        "paths": base.paths.model_copy(update={"state_dir": state, "lake": str(lake)}),
        "stack": base.stack.model_copy(update={"port_offset": offset, "services": ["cassandra"],
                                               "cassandra_nodes": 1}),
        "cassandra": base.cassandra.model_copy(update={"keyspace": f"bench_{uuid.uuid4().hex[:8]}"}),
        "spark": base.spark.model_copy(update={"shuffle_partitions": 4}),
    })


def _fill(settings, sets) -> float:
    """The sets into the store (its writer, concurrent driver writes) and into the lake (the mirror's rows, one
    part file per date); returns the store's write seconds."""
    import pyarrow as pa

    from meterlake import clients, keyspace, schema
    from meterlake.lake import layout
    from meterlake.lake.files import open_lake
    from streaming.mirror.convert import split_by_date, with_kafka
    from streaming.store.writer import Writer

    session = clients.cassandra_session(settings)
    try:
        keyspace.ensure(session, settings.cassandra.keyspace, 1)
        started = time.perf_counter()
        Writer(session, settings.cassandra.keyspace, concurrency=64).write(sets)
        seconds = time.perf_counter() - started
    finally:
        session.cluster.shutdown()
    lake = open_lake(settings)
    rows = with_kafka(schema.unpack(sets), settings.kafka.reads_topic, 0, 0)
    for day, part in split_by_date(pa.Table.from_batches(rows.to_batches())):
        lake.write_parquet(f"{layout.date_dir(day)}/{layout.part_name(settings.kafka.reads_topic, 0, 0, 0)}", part)
    return seconds


def _from_lake(spark, settings, days):
    from pyspark.sql import functions as F

    from jobs import lakeio
    from jobs.clean import vee

    jl = lakeio.open_job_lake(settings)
    reads = lakeio.read_lake_days(spark, jl, {d: frozenset({"interval"}) for d in days})
    return (vee.live_reads(reads).groupBy("settlement_date", "settlement_period")
            .agg(F.round(F.sum("value"), 6).alias("kwh"), F.count("*").alias("reads")))


def _from_store(spark, settings, days):
    from pyspark.sql import functions as F

    from jobs import storeio

    sets = storeio.table(spark, settings.cassandra.keyspace, "hh_sets").filter(
        F.col("settlement_date").between(min(days), max(days)))
    cells = sets.select("settlement_date", F.explode("values").alias("settlement_period", "value"))
    return (cells.groupBy("settlement_date", F.col("settlement_period").cast("byte").alias("settlement_period"))
            .agg(F.round(F.sum("value"), 6).alias("kwh"), F.count("*").alias("reads")))


def _once(frame) -> tuple[float, list]:
    started = time.perf_counter()
    rows = sorted(tuple(r) for r in frame().collect())
    return time.perf_counter() - started, rows


def _driver_inserts(settings, rows: list[tuple]) -> float:
    from cassandra.concurrent import execute_concurrent_with_args

    from meterlake import clients

    session = clients.cassandra_session(settings)
    try:
        insert = session.prepare(
            f"INSERT INTO {settings.cassandra.keyspace}.daily_consumption (meter_point, month, settlement_date, "
            "register_id, unit, fuel, consumption, periods, estimated_periods, estimated_share, expected_periods, "
            "source_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?")
        started = time.perf_counter()
        results = execute_concurrent_with_args(session, insert, [(*r, r[-1]) for r in rows], concurrency=64,
                                               raise_on_first_error=True)
        seconds = time.perf_counter() - started
        assert all(ok for ok, _ in results)
        return seconds
    finally:
        session.cluster.shutdown()


def run(report: Report, scale: str) -> None:
    from infra.local import stack
    from infra.local.discover import discover
    from jobs import lakeio, storeio
    from jobs.serve import job as serve
    from meterlake.spark import build_spark

    meter_days = int(os.environ.get("METERLAKE_BENCH_CONNECTOR_METER_DAYS", 50_000 if scale == "full" else 2_000))
    work = Path(tempfile.mkdtemp(prefix="bench-connector-"))
    settings = _settings(work / "lake")
    spark = None
    try:
        stack.up(settings)
        settings = discover(stack.remembered(settings))
        sets = _sets(meter_days * 48, meters_per_day=min(meter_days, 2_000))
        reads = meter_days * 48
        seconds = _fill(settings, sets)
        report.figure("store writer into hh_sets (driver, 64 in flight)", sets.num_rows / seconds, "rows/s",
                      rows=sets.num_rows)
        days = sorted(set(sets.column("settlement_date").to_pylist()))
        spark = build_spark("meterlake-bench-connector", settings, master="local[2]",
                            conf={**lakeio.JOB_CONF, **storeio.connector_conf(settings)})
        spark.sparkContext.setLogLevel("WARN")
        # warm-up: the JVM's compilation and the connector's session, outside the figures
        _once(lambda: _from_lake(spark, settings, days[:1]))
        _once(lambda: _from_store(spark, settings, days[:1]))
        lake_s, lake_rows = _once(lambda: _from_lake(spark, settings, days))
        store_s, store_rows = _once(lambda: _from_store(spark, settings, days))
        assert lake_rows == store_rows, "the lake's and the store's aggregates differ"
        report.figure("settlement aggregate from the lake (Spark)", reads / lake_s, "reads/s", reads=reads,
                      seconds=round(lake_s, 2), rows=len(lake_rows))
        report.figure("same aggregate from Cassandra (connector)", reads / store_s, "reads/s", reads=reads,
                      seconds=round(store_s, 2))
        report.ratio("lake / Cassandra through the connector", store_s, lake_s, goal=">= 10")

        # the serving table: the day's consumption per meter, written both ways
        meters = lakeio.small_frame(spark, [(m, m) for m in set(sets.column("meter_point").to_pylist())],
                                    "pseudonym string, identifier string")
        live = serve.extract(spark, lakeio.open_job_lake(settings), days)
        daily = serve.daily_consumption(live, lakeio.calendar_frame(spark, days), meters)
        daily = daily.localCheckpoint(eager=True)
        n = daily.count()
        started = time.perf_counter()
        serve.load(daily, settings.cassandra.keyspace, "daily_consumption")
        connector_s = time.perf_counter() - started
        rows = [tuple(r) for r in daily.collect()]
        driver_s = _driver_inserts(settings, rows)
        report.figure("daily_consumption through the connector", n / connector_s, "rows/s", rows=n)
        report.figure("daily_consumption by driver concurrent inserts", n / driver_s, "rows/s", rows=n)
        report.ratio("connector / driver write rate", n / connector_s, n / driver_s)
    finally:
        if spark is not None:
            spark.stop()
        stack.down(settings)
        shutil.rmtree(work, ignore_errors=True)

