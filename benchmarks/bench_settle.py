"""Settlement off the lake: Spark against DuckDB over the same files, and one day with a year of history against
one day alone.

1. A lake of one settlement date (``meters`` x 48 half-hours, 1% of meters with a 6-half-hour gap, 1% with a
   single missing half-hour, a registry of every other meter): the settle job (live versions, gaps, estimation,
   registry, aggregation; Spark local[2]) and the same aggregate without gap-filling in Spark and in DuckDB
   (live versions at the cut-off, registry join, sum per period and group), whose rows must be equal. Ratios:
   Spark aggregate / DuckDB (issue goal: <= 2x at 48M reads) and the whole settle job / DuckDB; and, for scale,
   what Spark takes only to read the reads and bring each read key together (a shuffle and a sort of every
   column, nothing computed), the least any live-version rule asks of it.
2. The same date settled in a lake that holds only it, and in one that also holds the 365 days before it
   (``history_meters`` meters): the ratio (goal <= 1.2x). Settling reads the date, the same weekday of the
   previous weeks (profiles) and register reads around it (proration), so it grows with the lookback, not with
   the lake's age.

Scale: small 2,000 meters (96k reads) and 200 meters of history; full 50,000 meters (2.4M reads) and 1,000
meters of history (17.5M reads in the year). For larger runs, ``METERLAKE_BENCH_SETTLE_METERS`` sets the meters
of part 1 (250,000 is 12M reads: about eight minutes here; 1,000,000 is 48M), ``METERLAKE_BENCH_SETTLE_REPEAT``
the runs of each figure and ``METERLAKE_BENCH_SETTLE_MEMORY`` Spark's memory (2g). No services: a local lake
under a temporary directory, Spark local[2]. Each figure is the best of ``repeat`` runs (``force``: the
checkpoint would otherwise skip them; part 2 at least five, in turns), after one untimed warm-up of the aggregate
and the job on the small lake (the JVM's compilation of Spark's hot paths, a fixed cost of a session's first
queries).
"""
from __future__ import annotations

import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks.harness import Report, duckdb_floor
from meterlake import calendar as cal
from meterlake import config, schema

DAY = date(2024, 11, 20)  # an ordinary Wednesday
SCALES = {"small": {"meters": 2_000, "history_meters": 200, "repeat": 2},
          "full": {"meters": 50_000, "history_meters": 1_000, "repeat": 2}}


def _mpan(i: int) -> str:
    from meterlake import ids

    return ids.make_mpan_core(12, 10_000_000 + i)


#: meters per lake file: a date of many meters is many files, as the mirror writes it
FILE_METERS = 100_000


def day_table(day: date, meters: range, seed: int, pseudonyms) -> pa.Table:
    """Lake rows of one day for ``meters`` (numbers): every meter every half-hour (1% of meters miss 6
    half-hours, 1% miss one), meter points pseudonymised as the mirror writes them."""
    from meterlake.lake.schema import LAKE_SCHEMA

    rng = np.random.default_rng(seed)
    starts = np.array([int(s.timestamp()) * 1_000_000 for _, s in cal.periods(day)], dtype=np.int64)
    p = len(starts)
    keep = np.ones((len(meters), p), dtype=bool)
    long_gaps = rng.choice(len(meters), max(1, len(meters) // 100), replace=False)
    keep[long_gaps, 20:26] = False
    short_gaps = rng.choice(len(meters), max(1, len(meters) // 100), replace=False)
    keep[short_gaps, 30] = False
    mi, pi = np.nonzero(keep)
    n = len(mi)
    names = np.array([pseudonyms.one(_mpan(i)) for i in meters], dtype=object)
    version = schema.epoch_us(cal.day_bounds(day)[1]) + 2 * 3_600_000_000
    columns = {
        "meter_point": pa.array(names[mi], pa.string()), "meter_serial": pa.array(np.full(n, "E1", object)),
        "fuel": pa.array(np.full(n, "electricity", object)), "register_id": pa.array(np.full(n, "S", object)),
        "read_kind": pa.array(np.full(n, "interval", object)),
        "interval_start_utc": pa.array(starts[pi]).view(schema.TIMESTAMP),
        "settlement_date": pa.array(np.full(n, (day - date(1970, 1, 1)).days, np.int32)).view(pa.date32()),
        "settlement_period": pa.array((pi + 1).astype(np.int8)),
        "value": pa.array(np.round(rng.gamma(2.0, 0.15, n), 3)), "unit": pa.array(np.full(n, "kWh", object)),
        "quality": pa.array(np.full(n, "actual", object)), "source_file": pa.array(np.full(n, "bench", object)),
        "source_line": pa.nulls(n, pa.int64()), "device_id": pa.nulls(n, pa.string()),
        "source_version": pa.array(np.full(n, version, np.int64)), "file_id": pa.nulls(n, pa.string()),
        "batch_id": pa.nulls(n, pa.string()), "kafka_topic": pa.array(np.full(n, "meter-reads", object)),
        "kafka_partition": pa.array(np.zeros(n, np.int32)), "kafka_offset": pa.array(np.full(n, seed, np.int64)),
    }
    return pa.Table.from_pydict(columns, schema=LAKE_SCHEMA)


def write_lake(root: Path, days: list[date], meters: int, registry_every: int = 2) -> config.Settings:
    from jobs.registry import job as registry
    from meterlake import pseudonym
    from meterlake.lake import layout
    from meterlake.lake.files import open_lake

    base = config.load(None)
    root.mkdir(parents=True, exist_ok=True)
    (root / "lake.key").write_text(os.urandom(32).hex())
    settings = base.model_copy(update={"paths": base.paths.model_copy(update={"lake": str(root),
                                                                             "state_dir": root / "state"}),
                                       "lake": base.lake.model_copy(update={"pseudonym_key_file":
                                                                            str(root / "lake.key")})})
    lake = open_lake(settings)
    pseudonyms = pseudonym.for_settings(settings)
    for k, d in enumerate(days):
        for first in range(0, meters, FILE_METERS):
            chunk = range(first, min(meters, first + FILE_METERS))
            seed = k * 1_000 + first // FILE_METERS
            lake.write_parquet(f"{layout.date_dir(d)}/{layout.part_name('meter-reads', 0, seed, seed)}",
                               day_table(d, chunk, seed, pseudonyms))
    csv = root / "registry.csv"
    lines = ["meter_point,gsp_group,supplier,profile_class,ssc,llfc,effective_from"]
    lines += [f"{_mpan(i)},_C,SUP{'AB'[i % 2]},1,0393,1,2024-01-01" for i in range(0, meters, registry_every)]
    csv.write_text("\n".join(lines) + "\n")
    registry.run(settings, csv)
    return settings


def _in_order(rows) -> list[tuple]:
    """Rows as tuples, sorted with nulls first (the engines' own null orders differ)."""
    return sorted((tuple(r) for r in rows), key=lambda r: tuple((x is not None, x) for x in r))


def duckdb_aggregate(settings: config.Settings, day: date) -> list[tuple]:
    """The settlement aggregate without gap-filling, in DuckDB over the date's live files: (period, group...,
    consumption_kwh, actual_kwh, meters) rows in order."""
    from jobs.lakeio import current
    from jobs.registry.job import PATH
    from meterlake import settlement_runs as runs
    from meterlake.lake.files import open_lake

    lake = open_lake(settings)
    files = ", ".join(f"'{f.path}'" for f in lake.live_files(day))
    cutoff = runs.cutoff_version(day, "SF")
    sql = f"""
        WITH live AS (
          SELECT * FROM read_parquet([{files}], hive_partitioning = false)
          WHERE source_version <= {cutoff} AND read_kind = 'interval' AND unit = 'kWh' AND quality <> 'withdrawn'
          QUALIFY row_number() OVER (PARTITION BY meter_point, meter_serial, register_id, read_kind,
                                     interval_start_utc, device_id, unit
                                     ORDER BY source_version DESC, kafka_topic, kafka_partition, kafka_offset) = 1),
        reg AS (
          SELECT * FROM read_parquet('{lake.path(current(lake, PATH))}')
          WHERE effective_from <= DATE '{day}' AND (effective_to IS NULL OR DATE '{day}' < effective_to)
          QUALIFY row_number() OVER (PARTITION BY meter_point ORDER BY effective_from DESC) = 1)
        SELECT settlement_period, coalesce(gsp_group, 'UNREGISTERED') AS gsp_group,
               coalesce(supplier, 'UNREGISTERED') AS supplier, profile_class, measurement_class,
               sum(CAST(round(value * 1000) AS BIGINT)) / 1000.0 AS consumption_kwh,
               sum(CAST(round(value * 1000) AS BIGINT)) FILTER (WHERE quality = 'actual') / 1000.0 AS actual_kwh,
               count(DISTINCT meter_point) AS meters
        FROM live LEFT JOIN reg USING (meter_point)
        GROUP BY ALL ORDER BY ALL"""
    con = duckdb_floor()
    try:
        return _in_order(con.execute(sql).fetchall())
    finally:
        con.close()


def spark_aggregate(spark, settings: config.Settings, day: date) -> list[tuple]:
    """The same aggregate in Spark (the job's own functions and registry join, without gap-filling); the same
    rows as :func:`duckdb_aggregate`. Meter periods are one row per meter and period, so meters are counted
    without a distinct (as the settle job counts them)."""
    from pyspark.sql import functions as F

    from jobs import lakeio
    from jobs.clean import vee
    from jobs.registry import job as registry_job
    from jobs.settle import job as settle
    from meterlake import settlement_runs as runs

    jl = lakeio.open_job_lake(settings)
    reads = lakeio.read_lake_days(spark, jl, {day: frozenset({"interval"})})
    live = vee.quarantine_reads(vee.live_reads(reads, cutoff_version=runs.cutoff_version(day, "SF")))
    periods = vee.meter_periods(live)
    reg = vee.registry_as_of(registry_job.read_spark(spark, jl), [day]).select("meter_point", "settlement_date",
                                                                                 *settle.GROUP)
    if registry_job.fits_broadcast(jl, settings.jobs.registry_broadcast_rows):
        reg = F.broadcast(reg)
    out = (periods.join(reg, ["meter_point", "settlement_date"], "left")
           .withColumn("gsp_group", F.coalesce("gsp_group", F.lit("UNREGISTERED")))
           .withColumn("supplier", F.coalesce("supplier", F.lit("UNREGISTERED")))
           .groupBy("settlement_period", *settle.GROUP)
           .agg((F.sum("value_wh") / 1000.0).alias("consumption_kwh"),
                (F.sum(F.when(~F.col("is_source_estimate"), F.col("value_wh"))) / 1000.0).alias("actual_kwh"),
                F.count("meter_point").alias("meters")))
    return _in_order(out.collect())


def spark_floor(spark, settings: config.Settings, day: date) -> int:
    """The least work a live-version rule asks of Spark: the date's reads read, shuffled by meter point and
    sorted by read key, every column carried; nothing computed. Rows out."""
    from pyspark.sql import functions as F

    from jobs import lakeio
    from jobs.clean import vee

    reads = lakeio.read_lake_days(spark, lakeio.open_job_lake(settings), {day: frozenset({"interval"})})
    ordered = reads.repartition("meter_point").sortWithinPartitions(*vee.LIVE_ORDER)
    every = ordered.groupBy(F.spark_partition_id()).agg(*[F.count(c).alias(c) for c in ordered.columns])
    return sum(r["meter_point"] for r in every.collect())


def _best(fn, repeat: int) -> tuple[float, object]:
    [(best, result)] = _best_in_turns([fn], repeat)
    return best, result


def _best_in_turns(fns, repeat: int) -> list[tuple[float, object]]:
    """The best time and last result of each of ``fns`` over ``repeat`` rounds, each round running every one of
    them in turn (so a drift of the machine's speed falls on all of them alike)."""
    best = [(float("inf"), None)] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            result = fn()
            best[k] = (min(best[k][0], time.perf_counter() - start), result)
    return best


def run(report: Report, scale: str) -> None:
    from jobs import lakeio
    from jobs.settle import job as settle
    from meterlake.spark import build_spark

    s = dict(SCALES[scale])
    s["meters"] = int(os.environ.get("METERLAKE_BENCH_SETTLE_METERS", s["meters"]))
    s["repeat"] = int(os.environ.get("METERLAKE_BENCH_SETTLE_REPEAT", s["repeat"]))
    base = config.load(None)
    lean = base.model_copy(update={"spark": base.spark.model_copy(update={
        # 16 shuffle partitions: at 48M reads 4 would sort 12M reads a task and spill (10% slower); at 2.4M
        # adaptive execution coalesces the small ones
        "with_cassandra_connector": False, "shuffle_partitions": 16,
        "driver_memory": os.environ.get("METERLAKE_BENCH_SETTLE_MEMORY", "2g")}),
        "paths": base.paths.model_copy(update={"state_dir": Path(tempfile.gettempdir()) / "meterlake-bench-none"})})
    spark = build_spark("meterlake-bench-settle", lean, master="local[2]", conf=lakeio.JOB_CONF)
    spark.sparkContext.setLogLevel("ERROR")
    try:
        with tempfile.TemporaryDirectory(prefix="meterlake-bench-settle-") as tmp:
            tmp = Path(tmp)
            m = s["history_meters"]
            alone = write_lake(tmp / "alone", [DAY], m)
            # warm-up, untimed: the JVM compiles Spark's hot paths on the first queries of a session (about ten
            # seconds, whatever the data), which a long-running cluster has long done; at 48M reads one run is
            # all the time allows, so without this the first figure would carry the compilation
            spark_aggregate(spark, alone, DAY)
            settle.run(alone, DAY, "SF", spark=spark, force=True)

            # 1. Spark against DuckDB over one date
            one = write_lake(tmp / "one", [DAY], s["meters"])
            reads = s["meters"] * 48
            duck, rows_duck = _best(lambda: duckdb_aggregate(one, DAY), s["repeat"])
            spark_agg, rows_spark = _best(lambda: spark_aggregate(spark, one, DAY), s["repeat"])
            floor, floor_rows = _best(lambda: spark_floor(spark, one, DAY), s["repeat"])
            job, answer = _best(lambda: settle.run(one, DAY, "SF", spark=spark, force=True), s["repeat"])
            if rows_duck != rows_spark:  # the same answer, or the timings mean nothing
                differ = [(a, b) for a, b in zip(rows_spark, rows_duck, strict=False) if a != b][:1]
                raise AssertionError(f"Spark and DuckDB disagree: {len(rows_spark)} and {len(rows_duck)} rows, "
                                     f"first difference (Spark, DuckDB): {differ}")
            assert floor_rows == sum(r[-1] for r in rows_spark), floor_rows
            report.figure("duckdb aggregate", duck, "s", reads=reads, groups=len(rows_duck))
            report.figure("spark aggregate (same rows)", spark_agg, "s", reads=reads)
            report.figure("spark read + shuffle + sort only", floor, "s", reads=reads)
            report.figure("spark settle job (with VEE)", job, "s", reads=reads,
                          estimated_kwh=answer["totals"]["estimated_kwh"])
            report.ratio("spark aggregate / duckdb", spark_agg, duck, goal="<= 2x at 48M reads")
            report.ratio("spark read + shuffle + sort only / duckdb aggregate", floor, duck)
            report.ratio("spark settle job / duckdb aggregate", job, duck)

            # 2. one date alone against the same date after a year of history
            year = write_lake(tmp / "year", [DAY - timedelta(days=k) for k in range(365, -1, -1)], m)
            # the best of at least five runs each, whatever the repeat of part 1, taken in turns: these are
            # seconds, this VM's speed drifts from one minute to the next, and a first run on the year's lake
            # compiles the estimation stages that the one-day lake (no history) never runs
            (t_alone, _), (t_year, _) = _best_in_turns(
                [lambda: settle.run(alone, DAY, "SF", spark=spark, force=True),
                 lambda: settle.run(year, DAY, "SF", spark=spark, force=True)], max(s["repeat"], 5))
            report.figure("settle one day, lake of 1 day", t_alone, "s", reads=m * 48)
            report.figure("settle one day, lake of 366 days", t_year, "s", reads_in_lake=m * 48 * 366)
            report.ratio("a year of history / one day", t_year, t_alone, goal="<= 1.2x")
    finally:
        spark.stop()
