"""What changed between two settlement runs of a date, per meter and period, and why.

Run: ``meterlake job settle-diff --date 2024-10-27 --from SF --to R1 [--limit N] [--json]``.

Both runs are recomputed from the lake as of their cut-offs (the same rules as ``job settle``; runs are
reproducible), and their settled half-hours compared. A row is listed where the energy differs, or where it is the
same but its kind changed (an estimate replaced by a read of the same value).

Reasons (``reason``), from the kind of value each run had (none, a read from the source, or an estimate of ours):

=================  ===============================================================================================
late_read          the earlier run had nothing for the half-hour; the later run has a read that arrived after the
                   earlier cut-off
newly_estimated    the earlier run had nothing; the later run estimates it (new data to estimate from)
estimate_replaced  the earlier run estimated the half-hour; the later run has a read
estimate_revised   both runs estimated it, differently (more data around the gap)
estimate_dropped   the earlier run estimated it; the later run has nothing
correction         both runs have a read, of different values: a later version replaced the earlier one
withdrawn          the earlier run had a read; the later run has none (the read was withdrawn) or an estimate
=================  ===============================================================================================

Grain of the output (``settlement_diff/settlement_date=D/from_run=A/to_run=B/part-*.parquet``): one row per
(meter_point, settlement_period) that changed.
"""
from __future__ import annotations

import sys
from datetime import date
from typing import TYPE_CHECKING

import pyarrow as pa

from jobs import lakeio
from jobs.clean import vee
from jobs.settle import job as settle
from meterlake import jobruns
from meterlake import settlement_runs as runs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

JOB = "settle-diff"
JOB_VERSION = 1
OUTPUT = "settlement_diff/settlement_date={day}/from_run={a}/to_run={b}"
REASONS = ("late_read", "newly_estimated", "estimate_replaced", "estimate_revised", "estimate_dropped", "correction",
           "withdrawn")
COLUMNS = ("settlement_date", "settlement_period", "meter_point", "from_run", "to_run", "reason", "from_kwh", "to_kwh",
           "delta_kwh", "from_method", "to_method", "from_source_version", "to_source_version", "to_source_file")


def diff(a: DataFrame, b: DataFrame, *, from_run: str, to_run: str) -> DataFrame:
    """The changed half-hours between two settled-period frames (:func:`jobs.settle.job.settled_day`)."""
    from pyspark.sql import functions as F

    keys = ["meter_point", "settlement_date", "settlement_period"]

    def side(df, prefix):
        return df.select(*keys, *[F.col(c).alias(f"{prefix}_{c}") for c in ("value_wh", "method", "source_version",
                                                                             "source_file")])

    j = side(a, "a").join(side(b, "b"), keys, "full_outer")

    def kind(prefix):
        method = F.col(f"{prefix}_method")
        return (F.when(F.col(f"{prefix}_value_wh").isNull(), F.lit("none"))
                .when(method.isin("actual", "source_estimate"), F.lit("read")).otherwise(F.lit("estimate")))

    j = j.withColumn("_ka", kind("a")).withColumn("_kb", kind("b"))
    changed = (~F.col("a_value_wh").eqNullSafe(F.col("b_value_wh"))) | (F.col("_ka") != F.col("_kb"))
    pair = F.concat_ws(">", "_ka", "_kb")
    reason = (F.when(pair == "none>read", "late_read").when(pair == "none>estimate", "newly_estimated")
              .when(pair == "estimate>read", "estimate_replaced").when(pair == "estimate>estimate", "estimate_revised")
              .when(pair == "estimate>none", "estimate_dropped").when(pair == "read>read", "correction")
              .otherwise("withdrawn"))
    return (j.filter(changed)
            .select("settlement_date", F.col("settlement_period").cast("byte"), "meter_point",
                    F.lit(from_run).alias("from_run"), F.lit(to_run).alias("to_run"), reason.alias("reason"),
                    (F.col("a_value_wh") / 1000.0).alias("from_kwh"), (F.col("b_value_wh") / 1000.0).alias("to_kwh"),
                    ((F.coalesce("b_value_wh", F.lit(0)) - F.coalesce("a_value_wh", F.lit(0))) / 1000.0)
                    .alias("delta_kwh"),
                    F.col("a_method").alias("from_method"), F.col("b_method").alias("to_method"),
                    F.col("a_source_version").alias("from_source_version"),
                    F.col("b_source_version").alias("to_source_version"),
                    F.col("b_source_file").alias("to_source_file")))


def transform(reads: DataFrame, calendar: DataFrame, registry: DataFrame, *, day: date, from_run: str, to_run: str,
              params: vee.VeeParams = vee.DEFAULT_PARAMS) -> DataFrame:
    registration = vee.materialize(vee.registry_as_of(registry, [day]))  # computed once for both runs
    a = settle.settled_day(reads, calendar, registration, day=day,
                           cutoff_version=runs.cutoff_version(day, from_run), params=params)
    b = settle.settled_day(reads, calendar, registration, day=day, cutoff_version=runs.cutoff_version(day, to_run),
                           params=params)
    return diff(a, b, from_run=from_run, to_run=to_run)


def output_dir(day: date, a: str, b: str) -> str:
    return OUTPUT.format(day=day.isoformat(), a=a, b=b)


def load(result: DataFrame, jl: lakeio.JobLake, day: date, a: str, b: str) -> None:
    lakeio.write_spark_dir(result.repartition(1).sortWithinPartitions("settlement_period", "meter_point"), jl,
                           output_dir(day, a, b))


def summary(table: pa.Table, limit: int) -> tuple[dict[str, int], float, list[dict]]:
    """(changes per reason, total delta kWh, the first ``limit`` rows by period and meter) of a written diff."""
    import pyarrow.compute as pc

    reasons = {r["values"]: r["counts"] for r in pc.value_counts(table.column("reason")).to_pylist()}
    delta = pc.sum(table.column("delta_kwh")).as_py() or 0.0
    first = table.sort_by([("settlement_period", "ascending"), ("meter_point", "ascending")]).slice(0, limit)
    return reasons, delta, first.select(list(COLUMNS)).to_pylist()


@jobruns.recorded("settle-diff")
def run(settings, day: date, from_run: str, to_run: str, *, limit: int = 100, spark: SparkSession | None = None,
        master: str | None = None, force: bool = False) -> dict:
    from meterlake.errors import UsageError

    a, b = runs.check_run(from_run), runs.check_run(to_run)
    if a == b:
        raise UsageError("--from and --to name the same run", run=a)
    params = vee.VeeParams.from_config(settings.jobs)
    jl = lakeio.open_job_lake(settings)
    key = f"{day.isoformat()}/{a}/{b}"
    fp = lakeio.fingerprint({"job": JOB, "version": JOB_VERSION, "runs": [a, b], **settle.input_state(jl, day, params)})
    checkpoint = lakeio.read_checkpoint(jl.lake, JOB)
    previous = checkpoint.get(key)
    answer = {"settlement_date": day, "from_run": a, "to_run": b, "path": output_dir(day, a, b)}
    if not force and previous and previous["fingerprint"] == fp \
            and lakeio.output_exists(jl.lake, output_dir(day, a, b)):
        status = "unchanged"  # listed from the last comparison's output, without Spark
    else:
        with lakeio.session(settings, f"meterlake-settle-diff-{day}", spark, master) as s:
            reads, calendar, registry, _ = settle.extract(s, jl, day, params)
            load(transform(reads, calendar, registry, day=day, from_run=a, to_run=b, params=params), jl, day, a, b)
        status = "compared"
    reasons, delta, rows = summary(lakeio.read_output(jl.lake, output_dir(day, a, b)), limit)
    total = sum(reasons.values())
    if status == "compared":
        lakeio.write_checkpoint(jl.lake, JOB, {key: {"fingerprint": fp, "changes": total, "at": lakeio.stamp()}})
    message = (f"{day} {a} -> {b}: {total} half-hour(s) changed, {delta:+,.3f} kWh"
               + (" (inputs unchanged; listed from the last comparison)" if status == "unchanged" else "")
               + "".join(f"\n  {k}: {v}" for k, v in sorted(reasons.items())))
    return {**answer, "path": lakeio.current(jl.lake, output_dir(day, a, b)), "status": status, "changes": total,
            "delta_kwh": round(delta, 3),
            "reasons": {k: reasons.get(k, 0) for k in REASONS}, "rows": rows, "rows_listed": len(rows),
            "message": message}


def main(argv: list[str] | None = None) -> int:
    return lakeio.job_main(argv, "settle-diff", __doc__,
                           lambda settings, a, **kw: run(settings, a.date, a.from_run, a.to_run, limit=a.limit, **kw))


if __name__ == "__main__":
    sys.exit(main())
