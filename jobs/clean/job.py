"""Clean reads: the live version of every read, validated (flags), with each missing half-hour estimated.

Run: ``meterlake job clean [--date D …] [--json]`` (or ``spark-submit jobs/clean/job.py``). Default: every settlement
date in the lake whose inputs changed since the last run.

The rules are :mod:`jobs.clean.vee`'s. A date is judged with the dates around it loaded (previous days for the
meter's baseline and register spans, the same weekday of previous weeks for profiles, register reads either side
for proration), so the output of a date depends on those partitions too, and it is recomputed when any of them
changes.

Grain of the output (``clean_reads/settlement_date=D/part-*.parquet``): one row per read key's live version
(interval and register reads; device events are not cleaned) plus one row per estimated half-hour (register
``NULL``, quality ``estimated``, ``estimation_method`` set, no source lineage). Columns: the read model's
(:data:`meterlake.schema.READ_SCHEMA`) and ``versions``, ``flags``, ``is_quarantined``, ``is_estimated``,
``estimation_method`` (see docs/jobs.md).
"""
from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import date
from typing import TYPE_CHECKING

from jobs import lakeio
from jobs.clean import vee
from jobs.registry import job as registry_job
from meterlake import jobruns
from meterlake.schema import READ_COLUMNS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

JOB = "clean"
JOB_VERSION = 1
OUTPUT = "clean_reads/settlement_date={day}"
EXTRA_COLUMNS = ("versions", "flags", "is_quarantined", "is_estimated", "estimation_method")
COLUMNS = READ_COLUMNS + EXTRA_COLUMNS
BATCH_DAYS = 7  # settlement dates cleaned together
ROWS_PER_FILE = 4_000_000


def output_schema():
    """The Spark schema of ``clean_reads`` (what a job reading them declares): the read model's, then
    :data:`EXTRA_COLUMNS`."""
    from pyspark.sql import types as T

    from meterlake.schema import READ_SCHEMA

    base = lakeio.spark_schema(READ_SCHEMA)
    extra = [T.StructField("versions", T.IntegerType()), T.StructField("flags", T.ArrayType(T.StringType())),
             T.StructField("is_quarantined", T.BooleanType()), T.StructField("is_estimated", T.BooleanType()),
             T.StructField("estimation_method", T.StringType())]
    schema = T.StructType(list(base.fields) + extra)
    assert tuple(schema.names) == COLUMNS
    return schema


def input_days(targets: list[date], params: vee.VeeParams) -> dict[date, frozenset[str] | None]:
    """The partitions cleaning ``targets`` reads, and which read kinds of each (None: all): what settlement's
    estimation reads, and the interval reads of the ``proration_days`` before (baselines, zero runs and register
    spans) and of the day after (the neighbour after a gap at the end of the day)."""
    validation = [(-j, "interval") for j in range(1, params.proration_days + 1)] + [(1, "interval")]
    return lakeio.kinds_by_day(targets, validation + vee.estimation_days(params))


def extract(spark: SparkSession, jl: lakeio.JobLake, targets: list[date],
            params: vee.VeeParams) -> tuple[DataFrame, DataFrame, DataFrame]:
    days = input_days(targets, params)
    return (lakeio.read_lake_days(spark, jl, days), lakeio.calendar_frame(spark, days),
            registry_job.read_spark(spark, jl))


def transform(reads: DataFrame, calendar: DataFrame, registry: DataFrame, *, days: list[date],
              params: vee.VeeParams = vee.DEFAULT_PARAMS, as_of_us: int | None = None) -> DataFrame:
    """The clean reads of ``days`` (see the module docstring)."""
    from pyspark.sql import functions as F

    live = vee.materialize(vee.live_reads(reads))
    flagged = vee.materialize(vee.flag_reads(live, params=params, as_of_us=as_of_us))
    periods = vee.materialize(vee.meter_periods(flagged))
    registered = vee.registered_electricity(vee.registry_as_of(registry, days))
    expected = vee.expected_meters(periods, registered, days)
    missing = vee.materialize(vee.find_gaps(expected, periods, calendar))
    estimates = vee.estimate(missing, periods, vee.register_reads(flagged), calendar, params=params)

    source_estimate = F.col("quality") == "estimated"
    reads_out = (flagged.filter(F.col("settlement_date").isin(sorted(days))
                                & F.col("read_kind").isin("interval", "register"))
                 .withColumn("is_estimated", source_estimate)
                 .withColumn("estimation_method", F.when(source_estimate, F.lit("source")))
                 .select(*COLUMNS))
    meter = (periods.groupBy("meter_point").agg(vee.max_tuple("slot", "meter_serial", "fuel").alias("_m"))
             .select("meter_point", *vee.tuple_fields("_m", "slot", "meter_serial", "fuel")[1:]))
    null = {name: F.lit(None).cast(t) for name, t in (
        ("register_id", "string"), ("source_file", "string"), ("source_line", "long"), ("device_id", "string"),
        ("source_version", "long"), ("file_id", "string"), ("batch_id", "string"))}
    estimated_out = (estimates.join(meter, "meter_point", "left")
                     .withColumn("read_kind", F.lit("interval"))
                     .withColumn("interval_start_utc", F.timestamp_seconds(F.col("slot") * 1800))
                     .withColumn("settlement_period", F.col("settlement_period").cast("byte"))
                     .withColumn("value", F.col("value_wh") / 1000.0)
                     .withColumn("unit", F.lit("kWh"))
                     .withColumn("quality", F.lit("estimated"))
                     .withColumn("fuel", F.coalesce("fuel", F.lit("electricity")))
                     .withColumn("versions", F.lit(0))
                     .withColumn("flags", F.array().cast("array<string>"))
                     .withColumn("is_quarantined", F.lit(False))
                     .withColumn("is_estimated", F.lit(True))
                     .withColumn("estimation_method", F.col("method")))
    for name, col in null.items():
        estimated_out = estimated_out.withColumn(name, col)
    return reads_out.unionByName(estimated_out.select(*COLUMNS))


def output_dir(day: date) -> str:
    return OUTPUT.format(day=day.isoformat())


def output_state(jl: lakeio.JobLake, day: date) -> list:
    """The date's clean output as ``[name, size]`` pairs (what a job reading it fingerprints; empty when absent)."""
    listing = jl.lake.list_dir(lakeio.current(jl.lake, output_dir(day)))
    return sorted([i.base_name, i.size] for i in listing if i.base_name.endswith(".parquet"))


def load(result: DataFrame, jl: lakeio.JobLake, days: list[date]) -> dict[date, int]:
    """Write each day's clean reads (replacing the previous ones); rows written per day."""
    from pyspark.sql import functions as F

    result = vee.materialize(result)
    counts = {r.settlement_date: r["count"] for r in result.groupBy("settlement_date").count().collect()}
    for day in days:
        files = max(1, -(-int(counts.get(day, 0)) // ROWS_PER_FILE))
        part = (result.filter(F.col("settlement_date") == F.lit(day)).repartition(files, "meter_point")
                .sortWithinPartitions("meter_point", "read_kind", "interval_start_utc"))
        lakeio.write_spark_dir(part, jl, output_dir(day))
    return {d: int(counts.get(d, 0)) for d in days}


def _fingerprints(jl: lakeio.JobLake, targets: list[date], params: vee.VeeParams) -> dict[str, str]:
    needs = {d: input_days([d], params) for d in targets}
    state = lakeio.partition_state(jl, {day for need in needs.values() for day in need})
    registry = registry_job.stored(jl).digest
    return {d.isoformat(): lakeio.fingerprint({"job": JOB, "version": JOB_VERSION, "params": asdict(params),
                                               "registry": registry,
                                               "inputs": {k.isoformat(): state[k.isoformat()] for k in need}})
            for d, need in needs.items()}


@jobruns.recorded("clean")
def run(settings, days: list[date] | None = None, *, spark: SparkSession | None = None, master: str | None = None,
        force: bool = False) -> dict:
    """Clean the dates (default: every date of the lake) whose inputs changed; the answer."""
    params = vee.VeeParams.from_config(settings.jobs)
    jl = lakeio.open_job_lake(settings)
    targets = sorted(set(days)) if days else jl.lake.dates()
    checkpoint = lakeio.read_checkpoint(jl.lake, JOB)
    fps = _fingerprints(jl, targets, params)
    changed, unchanged = lakeio.changed_dates(jl.lake, checkpoint, fps, targets, output_dir, force)
    if not changed:
        return {"status": "unchanged", "cleaned": [], "unchanged": unchanged,
                "message": f"{len(unchanged)} settlement date(s) unchanged since the last run; nothing to do"}
    counts: dict[date, int] = {}
    with lakeio.session(settings, "meterlake-clean", spark, master) as s:
        # a batch of dates shares its loaded window; the checkpoint is saved after each batch
        for at in range(0, len(changed), BATCH_DAYS):
            batch = changed[at:at + BATCH_DAYS]
            reads, calendar, registry = extract(s, jl, batch, params)
            counts.update(load(transform(reads, calendar, registry, days=batch, params=params), jl, batch))
            now = lakeio.stamp()
            lakeio.write_checkpoint(jl.lake, JOB, {d.isoformat(): {"fingerprint": fps[d.isoformat()],
                                                                   "rows": counts[d], "at": now} for d in batch})
    return {"status": "cleaned", "cleaned": [{"settlement_date": d, "rows": counts[d]} for d in changed],
            "unchanged": unchanged,
            "message": f"{len(changed)} settlement date(s) cleaned ({sum(counts.values()):,} rows), "
                       f"{len(unchanged)} unchanged"}


def main(argv: list[str] | None = None) -> int:
    return lakeio.dates_job_main(argv, "clean", __doc__, run)


if __name__ == "__main__":
    sys.exit(main())
