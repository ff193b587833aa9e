"""Data quality per meter and settlement date: completeness, lateness, estimated share, quarantined and flagged reads.

Run: ``meterlake job quality [--date D …] [--json]`` after ``meterlake job clean`` (it reads ``clean_reads``).
Default: every date of ``clean_reads`` whose clean output changed since the last run.

Grain of the output (``quality/settlement_date=D/part-*.parquet``): one row per (settlement_date, meter_point) of
the meters expected that day: those with half-hourly reads in ``clean_reads``, and the registry's electricity
meters registered that day. Columns (see docs/jobs.md):

- ``expected_periods``: the calendar's periods (46, 48 or 50); ``received_periods``: periods with a usable read
  from the source (actual or the source's estimate); ``estimated_periods``: periods we estimated;
  ``missing_periods``: the rest; ``completeness`` = received / expected; ``estimated_share`` = (source and our
  estimates) / expected.
- lateness, from each usable read's source version (when its source was created) to the end of the settlement
  date: ``first_arrival_h``, ``last_arrival_h`` (hours), ``late_reads`` (created after the date's SF cut-off).
- ``quarantined_reads`` (off-grid or future reads: kept, not used), ``flagged_reads`` and ``flag_counts`` (per
  validation flag), ``register_reads``.
- ``ingest_quarantined_lines``: lines of the meter-day that ingest rejected (:mod:`jobs.quality.quarantine`, from
  ``kafka.quarantine_topic``); every rejected line, with or without a meter-day, is counted per file and reason in
  ``quality_ingest/ingest_quarantine.parquet``.
"""
from __future__ import annotations

import sys
from datetime import date
from typing import TYPE_CHECKING

import pyarrow.compute as pc

from jobs import lakeio
from jobs.clean import vee
from jobs.clean.job import output_dir as clean_dir
from jobs.clean.job import output_schema as clean_schema
from jobs.clean.job import output_state as clean_state
from jobs.quality import quarantine
from jobs.registry import job as registry_job
from meterlake import jobruns
from meterlake import settlement_runs as runs
from meterlake.errors import MeterlakeError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

JOB = "quality"
JOB_VERSION = 1
OUTPUT = "quality/settlement_date={day}"


def extract(spark: SparkSession, jl: lakeio.JobLake, days: list[date]) -> tuple[DataFrame, DataFrame, DataFrame]:
    urls = [jl.spark_url(lakeio.current(jl.lake, clean_dir(d))) for d in days
            if lakeio.output_exists(jl.lake, clean_dir(d))]
    return (lakeio.read_files(spark, urls, clean_schema()), lakeio.calendar_frame(spark, days),
            registry_job.read_spark(spark, jl))


def sf_cutoffs(spark: SparkSession, days: list[date]) -> DataFrame:
    return lakeio.small_frame(spark, [(d, runs.cutoff_version(d, "SF"), lakeio.day_end_utc(d)) for d in days],
                              "settlement_date date, sf_cutoff_version long, day_end_utc timestamp")


def transform(clean: DataFrame, calendar: DataFrame, registry: DataFrame, cutoffs: DataFrame, *,
              days: list[date], ingest: DataFrame | None = None) -> DataFrame:
    """The quality rows of ``days``; ``ingest``: ingest's quarantined lines per meter-day
    (:func:`jobs.quality.quarantine.per_meter_day`; None: none)."""
    from pyspark.sql import functions as F

    interval = F.col("read_kind") == "interval"
    ours = F.coalesce(F.col("estimation_method").isin(*vee.ESTIMATION_METHODS), F.lit(False))
    usable = interval & ~F.col("is_quarantined") & ~ours & (F.col("quality") != "withdrawn")
    c = clean.filter(F.col("settlement_date").isin(sorted(days))).join(cutoffs, "settlement_date")
    hours = (F.col("source_version") - F.unix_micros("day_end_utc")) / 3.6e9
    per_meter = c.groupBy("settlement_date", "meter_point").agg(
        F.countDistinct(F.when(usable, F.col("settlement_period"))).cast("int").alias("received_periods"),
        F.countDistinct(F.when(interval & ours, F.col("settlement_period"))).cast("int").alias("estimated_periods"),
        F.countDistinct(F.when(usable & F.col("is_estimated"), F.col("settlement_period")))
        .cast("int").alias("source_estimated_periods"),
        F.min(F.when(usable, hours)).alias("first_arrival_h"), F.max(F.when(usable, hours)).alias("last_arrival_h"),
        F.count(F.when(usable & (F.col("source_version") > F.col("sf_cutoff_version")), 1)).cast("int")
        .alias("late_reads"),
        F.count(F.when(F.col("is_quarantined"), 1)).cast("int").alias("quarantined_reads"),
        F.count(F.when(F.size("flags") > 0, 1)).cast("int").alias("flagged_reads"),
        F.count(F.when(F.col("read_kind") == "register", 1)).cast("int").alias("register_reads"),
        F.max(interval).alias("_half_hourly"))
    flag_counts = (c.select("settlement_date", "meter_point", F.explode("flags").alias("flag"))
                   .groupBy("settlement_date", "meter_point", "flag").count()
                   .groupBy("settlement_date", "meter_point")
                   .agg(F.map_from_entries(F.array_sort(F.collect_list(F.struct("flag", F.col("count").cast("int")))))
                        .alias("flag_counts")))
    registered = vee.registered_electricity(vee.registry_as_of(registry, days))
    expected = (per_meter.filter("_half_hourly").select("settlement_date", "meter_point")
                .unionByName(registered.select("settlement_date", "meter_point")).distinct())
    periods = calendar.groupBy("settlement_date").agg(F.max("periods").cast("int").alias("expected_periods"))
    out = (expected.join(periods, "settlement_date")
           .join(per_meter.drop("_half_hourly"), ["settlement_date", "meter_point"], "left")
           .join(flag_counts, ["settlement_date", "meter_point"], "left"))
    if ingest is not None:
        out = out.join(ingest, ["settlement_date", "meter_point"], "left").fillna(0, ["ingest_quarantined_lines"])
    else:  # not counted (Kafka did not answer): unknown, not zero
        out = out.withColumn("ingest_quarantined_lines", F.lit(None).cast("int"))
    zero = ("received_periods", "estimated_periods", "source_estimated_periods", "late_reads", "quarantined_reads",
            "flagged_reads", "register_reads")
    out = out.fillna(0, subset=list(zero))
    return out.select(
        "settlement_date", "meter_point", "expected_periods", "received_periods", "estimated_periods",
        (F.greatest(F.lit(0), F.col("expected_periods") - F.col("received_periods") - F.col("estimated_periods")))
        .cast("int").alias("missing_periods"),
        (F.col("received_periods") / F.col("expected_periods")).alias("completeness"),
        ((F.col("estimated_periods") + F.col("source_estimated_periods")) / F.col("expected_periods"))
        .alias("estimated_share"),
        "source_estimated_periods", "first_arrival_h", "last_arrival_h", "late_reads", "quarantined_reads",
        "flagged_reads", F.coalesce("flag_counts", F.create_map().cast("map<string,int>")).alias("flag_counts"),
        "register_reads", F.col("ingest_quarantined_lines").cast("int"))


def output_dir(day: date) -> str:
    return OUTPUT.format(day=day.isoformat())


def load(result: DataFrame, jl: lakeio.JobLake, days: list[date]) -> list[dict]:
    """Write each day's rows; per day, a summary for the answer."""
    from pyspark.sql import functions as F

    result = vee.materialize(result)
    summary = {r.settlement_date: r.asDict() for r in result.groupBy("settlement_date").agg(
        F.count(F.lit(1)).alias("meters"), F.round(F.avg("completeness"), 4).alias("mean_completeness"),
        F.round(F.avg("estimated_share"), 4).alias("mean_estimated_share"),
        F.sum("missing_periods").alias("missing_periods"), F.sum("late_reads").alias("late_reads"),
        F.sum("quarantined_reads").alias("quarantined_reads"), F.sum("flagged_reads").alias("flagged_reads"),
        F.sum("ingest_quarantined_lines").alias("ingest_quarantined_lines"),
        F.round(F.max("last_arrival_h"), 2).alias("max_arrival_h")).collect()}
    for day in days:
        part = result.filter(F.col("settlement_date") == F.lit(day)).repartition(1).sortWithinPartitions("meter_point")
        lakeio.write_spark_dir(part, jl, output_dir(day))
    return [summary.get(d, {"settlement_date": d, "meters": 0}) for d in days]


@jobruns.recorded("quality")
def run(settings, days: list[date] | None = None, *, spark: SparkSession | None = None, master: str | None = None,
        force: bool = False) -> dict:
    jl = lakeio.open_job_lake(settings)
    if days:
        targets = sorted(set(days))
    else:
        found = (lakeio.parse_date_dir(i.base_name) for i in jl.lake.list_dir("clean_reads"))
        targets = sorted(d for d in found if d is not None)
    registry = registry_job.stored(jl).digest
    try:
        records = quarantine.read(settings)
    except MeterlakeError as exc:  # the lake's measures stand; the ingest counts are unknown, and said so
        records, unavailable = None, exc.message
    ingest_state = _ingest_output(jl, records) if records is not None else {
        "lines": None, "meter_day_lines": None, "files": None, "path": quarantine.OUTPUT, "unavailable": unavailable}
    named = quarantine.per_meter_day(records if records is not None else quarantine.empty())
    # rows as tuples (dict views do not order), ordered by their text (a None beside a value does not order either)
    by_day = {d: sorted((tuple(r.values()) for r in named.filter(pc.equal(named.column("settlement_date"), d))
                         .to_pylist()), key=repr) for d in targets}
    fps = {d.isoformat(): lakeio.fingerprint({"job": JOB, "version": JOB_VERSION, "registry": registry,
                                              "clean": clean_state(jl, d), "ingest": by_day[d]})
           for d in targets}
    checkpoint = lakeio.read_checkpoint(jl.lake, JOB)
    changed, unchanged = lakeio.changed_dates(jl.lake, checkpoint, fps, targets, output_dir, force)
    if not changed:
        return {"status": "unchanged", "dates": [], "unchanged": unchanged, "ingest_quarantine": ingest_state,
                "message": f"{len(unchanged)} settlement date(s) unchanged since the last run; nothing to do"}
    with lakeio.session(settings, "meterlake-quality", spark, master) as s:
        clean, calendar, registry_df = extract(s, jl, changed)
        ingest = None if records is None else lakeio.small_frame(
            s, [tuple(r.values()) for r in named.to_pylist()],
            "settlement_date date, meter_point string, ingest_quarantined_lines int")
        summaries = load(transform(clean, calendar, registry_df, sf_cutoffs(s, changed), days=changed,
                                   ingest=ingest), jl, changed)
    now = lakeio.stamp()
    lakeio.write_checkpoint(jl.lake, JOB, {d.isoformat(): {"fingerprint": fps[d.isoformat()], "at": now}
                                           for d in changed})
    lines = [f"{s['settlement_date']}: {s['meters']} meters, completeness {s.get('mean_completeness')}, estimated "
             f"{s.get('mean_estimated_share')}, {s.get('quarantined_reads', 0)} quarantined, "
             f"{s.get('ingest_quarantined_lines') or 0} line(s) rejected at ingest" for s in summaries]
    return {"status": "measured", "dates": summaries, "unchanged": unchanged, "ingest_quarantine": ingest_state,
            "message": "\n".join(lines + [f"{len(unchanged)} date(s) unchanged", _ingest_line(ingest_state)])}


def _ingest_output(jl: lakeio.JobLake, records) -> dict:
    """Write the ingest quarantine's counts per file and reason when they changed; what they hold."""
    table = quarantine.per_file(records)
    if not (lakeio.output_exists(jl.lake, quarantine.OUTPUT)
            and lakeio.read_output(jl.lake, quarantine.OUTPUT).equals(table)):
        lakeio.write_deterministic(jl.lake, quarantine.OUTPUT, table)
    return {"lines": int(pc.sum(table.column("lines")).as_py() or 0),
            "meter_day_lines": int(pc.sum(table.column("meter_day_lines")).as_py() or 0),
            "files": len(pc.unique(table.column("source_file"))), "path": quarantine.OUTPUT}


def _ingest_line(state: dict) -> str:
    if state["lines"] is None:
        return f"lines rejected at ingest not counted: {state['unavailable']}"
    return (f"{state['lines']} line(s) rejected at ingest in {state['files']} file(s), {state['meter_day_lines']} "
            f"of them counted per meter-day ({state['path']})")


def main(argv: list[str] | None = None) -> int:
    return lakeio.dates_job_main(argv, "quality", __doc__, run)


if __name__ == "__main__":
    sys.exit(main())
