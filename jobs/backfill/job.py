"""Rebuild lake partitions from the Cassandra event store, through the Spark Cassandra Connector: for when the lake
is lost, damaged, or needs a column it never had.

Run: ``meterlake job backfill --from 2024-10-26 --to 2024-10-28 [--meter-point M] [--json]``
(or ``spark-submit jobs/backfill/job.py --from … --to …``).

What it writes is what the mirror writes (docs/lake.md): the lake's columns, one row per read, identifiers as
the lake's pseudonyms (:mod:`meterlake.pseudonym`), settlement date and period from :mod:`meterlake.calendar`.
Per half-hour the store keeps the latest version written (a cell per period, written ``USING TIMESTAMP
source_version``): its write time is the read's ``source_version``, and the row's lineage (``source_file``,
``file_id``, ``batch_id``) is that of the latest version that wrote to the meter-day, so a period last written
by an older version of a partly restated day gets null lineage. Register reads come from ``register_reads``.
Superseded versions are not in the store: a rebuilt date holds the latest version of each read only (as a
compaction past the settlement horizon leaves it). Device reads are not rebuilt (the store keeps them for 90 days,
without their lineage): the ones in the date's files that can still be read are carried over as they are.
``kafka_topic`` of a rebuilt row is ``backfill:<keyspace>`` (no Kafka topic can have a ``:``), partition and
offset 0.

The swap: the rebuilt rows are written as compacted files of the date's next manifest generation (names no reader
takes as live), then the manifest is replaced in one atomic rename, retiring every file that was live (and every
part file of the date, damaged or not): a reader sees the old partition or the new one, never half of it (the
same swap as ``meterlake lake compact``; run it while no compaction runs: a manifest changed meanwhile fails the
date, which is then left as it was). A part file the mirror writes later
is above the new watermarks and stays live. Each run is recorded in ``_jobs/backfill/<time>.json``.

With ``--meter-point M`` only that meter's reads are rebuilt: the date's other rows are carried over from its
live files, which must then all be readable.

Grain of the output: per settlement date, one row per read (its latest version in the store) plus the date's
device reads carried over.
"""
from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from jobs import lakeio, storeio
from jobs.lakeio import layout
from meterlake import jobruns

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

JOB = "backfill"
RECORD_DIR = "_jobs/backfill"
KINDS = ("interval", "register")  # the read kinds rebuilt from the store


def topic_of(keyspace: str) -> str:
    """``kafka_topic`` of a rebuilt row: where it came from (``:`` is not allowed in a Kafka topic name)."""
    return f"backfill:{keyspace}"


def dates(first: date, last: date) -> list[date]:
    if last < first:
        from meterlake.errors import UsageError

        raise UsageError(f"--to {last} is before --from {first}")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# ------------------------------------------------------------------------------------------------- extract


def extract(spark: SparkSession, keyspace: str, first: date, last: date,
            meter_point: str | None = None) -> tuple[DataFrame, DataFrame]:
    """(half-hourly rows, register reads) of the store for the dates, identifiers in clear."""
    return (storeio.hh_sets(spark, keyspace, first, last, meter_point),
            storeio.register_reads(spark, keyspace, first, last, meter_point))


def pseudonym_frame(spark: SparkSession, sets: DataFrame, registers: DataFrame, pseudonyms) -> DataFrame:
    """``identifier, pseudonym`` of every meter point and serial of the extracted rows (each hashed once, on the
    driver, with the lake's key: the key never goes to the executors)."""
    ids = (sets.select("meter_point").union(sets.select("meter_serial"))
           .union(registers.select("meter_point")).union(registers.select("meter_serial")).distinct())
    rows = [(r[0], pseudonyms.one(r[0])) for r in ids.collect() if r[0]]
    return lakeio.small_frame(spark, rows, "identifier string, pseudonym string")


# ----------------------------------------------------------------------------------------------- transform


def _clear(column: str):
    """The store's ``''`` for an absent clustering value (register, serial) back to null."""
    from pyspark.sql import functions as F

    return F.when(F.col(column) == "", F.lit(None).cast("string")).otherwise(F.col(column))


def _pseudonymised(df: DataFrame, ids: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    names = F.broadcast(ids)
    out = (df.join(names.withColumnRenamed("identifier", "meter_point").withColumnRenamed("pseudonym", "_mp"),
                   "meter_point", "left")
           .join(names.withColumnRenamed("identifier", "meter_serial").withColumnRenamed("pseudonym", "_ms"),
                 "meter_serial", "left"))
    return out.withColumn("meter_point", F.col("_mp")).withColumn("meter_serial", F.col("_ms")).drop("_mp", "_ms")


def interval_rows(sets: DataFrame, calendar: DataFrame) -> DataFrame:
    """One row per period of each half-hourly row: value, quality, and the cell's write time as its version.
    Lineage is the row's where the period was written by the row's latest version, else null."""
    from pyspark.sql import functions as F

    periods = F.arrays_zip(F.array_sort(F.map_keys("values")).alias("period"), F.col("versions").alias("version"))
    cells = sets.select("*", F.explode(periods).alias("_cell")).select(
        "*", F.col("_cell.period").alias("settlement_period"), F.col("_cell.version").alias("_version"))
    latest = F.col("_version") == F.col("source_version")

    def lineage(name):
        return F.when(latest, F.col(name)).otherwise(F.lit(None).cast("string")).alias(name)

    cal = F.broadcast(calendar.select("settlement_date", "settlement_period", "start_utc"))
    return (cells.withColumn("settlement_period", F.col("settlement_period").cast("int"))
            .join(cal, ["settlement_date", "settlement_period"])
            .select("meter_point", _clear("meter_serial").alias("meter_serial"), "fuel",
                    _clear("register_id").alias("register_id"), F.lit("interval").alias("read_kind"),
                    F.col("start_utc").alias("interval_start_utc"), "settlement_date", "settlement_period",
                    F.element_at("values", F.col("settlement_period").cast("byte")).alias("value"), "unit",
                    F.element_at("qualities", F.col("settlement_period").cast("byte")).alias("quality"),
                    lineage("source_file"), F.lit(None).cast("long").alias("source_line"),
                    F.lit(None).cast("string").alias("device_id"), F.col("_version").alias("source_version"),
                    lineage("file_id"), lineage("batch_id")))


def register_rows(registers: DataFrame, calendar: DataFrame) -> DataFrame:
    """Register reads on the calendar's dates, each in the settlement period its instant falls in."""
    from pyspark.sql import functions as F

    cal = F.broadcast(calendar.select("settlement_date", "settlement_period", "slot"))
    slot = F.floor(F.unix_micros("read_at") / F.lit(1_800_000_000)).cast("long")
    return (registers.withColumn("slot", slot).join(cal, "slot")
            .select("meter_point", _clear("meter_serial").alias("meter_serial"), "fuel",
                    _clear("register_id").alias("register_id"), F.lit("register").alias("read_kind"),
                    F.col("read_at").alias("interval_start_utc"), "settlement_date", "settlement_period", "value",
                    "unit", "quality", "source_file", "source_line", F.lit(None).cast("string").alias("device_id"),
                    "source_version", "file_id", "batch_id"))


def transform(sets: DataFrame, registers: DataFrame, calendar: DataFrame, pseudonyms: DataFrame, *,
              topic: str) -> DataFrame:
    """The lake rows (the lake's columns, in order) of the store's reads on the calendar's dates.
    ``pseudonyms``: ``identifier, pseudonym`` of every meter point and serial (:func:`pseudonym_frame`)."""
    from pyspark.sql import functions as F

    rows = interval_rows(sets, calendar).unionByName(register_rows(registers, calendar))
    rows = _pseudonymised(rows, pseudonyms)
    schema = lakeio.lake_spark_schema()
    kafka = {"kafka_topic": F.lit(topic), "kafka_partition": F.lit(0), "kafka_offset": F.lit(0)}
    return rows.select(*[(kafka[f.name] if f.name in kafka else F.col(f.name)).cast(f.dataType).alias(f.name)
                         for f in schema.fields])


# ---------------------------------------------------------------------------------------------------- load


def _readable(lake, path: str) -> pa.Table | None:
    """The rows of a live file, or None when it cannot be read (damaged)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, filesystem=lake.fs)
    except (OSError, pa.ArrowException):
        return None


def _live(lake, day: date, manifest, listing: list[str]) -> list[str]:
    """The date's live files present in ``listing`` (a compacted file the manifest lists may be gone)."""
    present = set(listing)
    parts = sorted(p for p in map(layout.parse_part, listing) if p is not None and not manifest.is_retired(p))
    return [n for n in manifest.compacted_names if n in present] + [p.name for p in parts]


def carried_rows(lake, day: date, live: list[str], meter_point: str | None) -> tuple[pa.Table, list[str]]:
    """(rows of the date's live files that are not rebuilt, names of the files that could not be read).

    Raises MeterlakeError when one meter is rebuilt and a file cannot be read (its other meters' rows would be
    lost): rebuild the whole date then."""
    from meterlake.errors import MeterlakeError

    kept, damaged = [], []
    for name in live:
        table = _readable(lake, f"{lake.path(layout.date_dir(day))}/{name}")
        if table is None:
            damaged.append(name)
            continue
        table = table.select(list(lakeio.LAKE_SCHEMA.names)).cast(lakeio.LAKE_SCHEMA)
        rebuilt = pc.is_in(table.column("read_kind"), value_set=pa.array(KINDS))
        if meter_point is not None:
            rebuilt = pc.and_(rebuilt, pc.equal(table.column("meter_point"), meter_point))
        kept.append(table.filter(pc.invert(rebuilt)))
    if damaged and meter_point is not None:
        raise MeterlakeError(f"{day}: {len(damaged)} live file(s) cannot be read ({', '.join(damaged)}); a "
                             "back-fill of one meter keeps the other meters' rows from them: back-fill the whole "
                             "date instead (without --meter-point)", settlement_date=day.isoformat(), files=damaged)
    table = pa.concat_tables(kept) if kept else lakeio.LAKE_SCHEMA.empty_table()
    return table, damaged


def stage(rebuilt: DataFrame, jl: lakeio.JobLake, rows_per_file: int) -> str:
    """Write the rebuilt rows with Spark under a hidden staging directory, one subdirectory per date
    (``_date=YYYY-MM-DD``), sorted as compaction sorts; returns the staging directory (relative)."""
    from pyspark.sql import functions as F

    relative = f"{RECORD_DIR}/.staging-{uuid.uuid4().hex[:12]}"
    spark = rebuilt.sparkSession
    before = spark.conf.get("spark.sql.files.maxRecordsPerFile", None)
    spark.conf.set("spark.sql.files.maxRecordsPerFile", str(rows_per_file))
    try:
        (rebuilt.withColumn("_date", F.col("settlement_date")).repartition("_date")
         .sortWithinPartitions("meter_point", "interval_start_utc", "meter_serial", "register_id", "read_kind",
                               "unit")
         .write.partitionBy("_date").option("compression", "zstd").parquet(jl.spark_url(relative)))
    finally:
        spark.conf.unset("spark.sql.files.maxRecordsPerFile") if before is None else spark.conf.set(
            "spark.sql.files.maxRecordsPerFile", before)
    return relative


def staged_tables(lake, staging: str, day: date):
    """The staged files of ``day``, each as a table of the lake's schema (as the mirror writes them)."""
    import pyarrow.parquet as pq

    selector = pafs.FileSelector(lake.path(f"{staging}/_date={day.isoformat()}"), allow_not_found=True)
    for info in sorted(lake.fs.get_file_info(selector), key=lambda i: i.base_name):
        if info.type == pafs.FileType.File and info.base_name.endswith(".parquet"):
            yield pq.read_table(info.path, filesystem=lake.fs).select(
                list(lakeio.LAKE_SCHEMA.names)).cast(lakeio.LAKE_SCHEMA)


def replace_date(lake, day: date, tables, meter_point: str | None, now: float) -> dict:
    """Write ``tables`` (and the rows carried over) as the date's next generation and swap the manifest."""
    from meterlake.errors import MeterlakeError

    manifest = lake.manifest(day)
    listing = [i.base_name for i in lake.date_listing(day)]
    live = _live(lake, day, manifest, listing)
    carried, damaged = carried_rows(lake, day, live, meter_point)
    generation = manifest.generation + 1
    token = uuid.uuid4().hex[:12]  # unique names: a concurrent compaction of the same generation never collides
    outputs, reads = [], 0
    for table in [*tables, carried]:
        if table.num_rows == 0:
            continue
        name = layout.compacted_name(generation, len(outputs), token)
        size = lake.write_parquet(f"{layout.date_dir(day)}/{name}", table)
        outputs.append({"name": name, "rows": table.num_rows, "bytes": size})
        reads += table.num_rows if table is not carried else 0
    retired = layout.retire(manifest, live, outputs, now, superseded=0)
    # every part file of the date, live or not, is now below its topic partition's watermark
    for part in filter(None, map(layout.parse_part, listing)):
        retired.retired_through[part.topic_partition] = max(retired.retired_through.get(part.topic_partition, -1),
                                                             part.last)
    if lake.manifest(day).generation != manifest.generation:
        raise MeterlakeError(f"{day}: the manifest changed while the date was rebuilt (a compaction ran); run the "
                             "back-fill again", settlement_date=day.isoformat())
    lake.write_manifest(retired)  # the swap
    return {"settlement_date": day, "reads": reads, "files": len(outputs), "replaced": len(live),
            "carried": carried.num_rows, "damaged": damaged, "generation": generation}


# ----------------------------------------------------------------------------------------------------- run


@jobruns.recorded("backfill")
def run(settings, first: date, last: date, *, meter_point: str | None = None, spark: SparkSession | None = None,
        master: str | None = None, force: bool = False) -> dict:
    """Rebuild the dates ``first`` to ``last`` from the store; the answer (``force`` is accepted for the jobs'
    common options: a back-fill always runs)."""
    from meterlake import pseudonym

    started = time.monotonic()
    days = dates(first, last)
    keyspace = settings.cassandra.keyspace
    pseudonyms = pseudonym.for_settings(settings)
    jl = lakeio.open_job_lake(settings)
    with storeio.session(settings, f"meterlake-backfill-{first}-{last}", spark, master) as s:
        sets, registers = extract(s, keyspace, first, last, meter_point)
        sets, registers = sets.persist(), registers.persist()  # read from Cassandra once
        try:
            ids = pseudonym_frame(s, sets, registers, pseudonyms)
            rebuilt = transform(sets, registers, lakeio.calendar_frame(s, days), ids, topic=topic_of(keyspace))
            counts = {r["settlement_date"]: r["n"] for r in rebuilt.groupBy("settlement_date").count()
                      .withColumnRenamed("count", "n").collect()}
            staging = stage(rebuilt, jl, settings.mirror.max_file_rows)
        finally:
            sets.unpersist()
            registers.unpersist()
    try:
        now = time.time()
        out = []
        for day in days:
            if not counts.get(day):  # nothing in the store: the lake's partition is left as it is
                out.append({"settlement_date": day, "reads": 0, "files": 0, "replaced": 0, "carried": 0,
                            "damaged": [], "generation": None})
                continue
            out.append(replace_date(jl.lake, day, staged_tables(jl.lake, staging, day), pseudonyms.one(meter_point)
                                    if meter_point else None, now))
    finally:
        try:
            jl.lake.fs.delete_dir(jl.lake.path(staging))
        except OSError:
            pass
    seconds = round(time.monotonic() - started, 1)
    record = {"job": JOB, "at": lakeio.stamp(), "from": first, "to": last, "keyspace": keyspace,
              "meter_point": pseudonyms.one(meter_point) if meter_point else None, "dates": out, "seconds": seconds}
    jl.lake.write_text(f"{RECORD_DIR}/{lakeio.stamp().replace(':', '')}.json",
                       json.dumps(record, indent=1, default=lambda o: o.isoformat()))
    return {"status": "rebuilt" if any(d["files"] for d in out) else "nothing",
            "dates": [{k: d[k] for k in ("settlement_date", "reads", "files", "replaced")} for d in out],
            "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    return lakeio.job_main(argv, "backfill", __doc__, lambda settings, a, **kw: run(
        settings, a.first, a.last, meter_point=a.meter_point, **kw))


if __name__ == "__main__":
    sys.exit(main())
