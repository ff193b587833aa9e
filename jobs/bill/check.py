"""Register reconciliation (Economy 7 and other multi-rate meters): each register's advance between two register
reads against the half-hourly energy in that register's windows over the same span.

Run: ``meterlake job bill-check --from 2024-01-01 --to 2024-02-01 [--json]`` after ``meterlake job clean`` and
``meterlake mdd load`` (or ``spark-submit jobs/bill/check.py --from … --to …``).

A meter's register reads (D0010: ``DY``, ``NT``, …) are mapped to Time Pattern Regimes by ``[jobs]
bill_register_tprs`` (per SSC, register id → TPR; a register id that is a TPR id already needs no entry). For each
pair of consecutive reads of one register (same meter point and serial) from the start of ``from`` to the
start of ``to`` (inclusive), the half-hours from the
first read's instant to the second's whose TPR under the meter's SSC (the registry's, on the first read's date;
:mod:`meterlake.mdd`) is the register's are summed from ``clean_reads``. ``difference_kwh`` = register advance −
half-hourly sum; ``status``: ``ok`` within the tolerance (``[jobs] register_tolerance_kwh``, or
``register_tolerance_share`` of the half-hourly sum if larger), ``mismatch`` beyond it (a meter wired to the wrong
SSC shows up here: its half-hours fall in the other register's windows), ``incomplete`` when half-hours of the span
have no energy in ``clean_reads``, ``unmapped`` when the register has no TPR under the meter's SSC.

Grain of the output (``billing/register_checks/from=F/to=T/register_checks.parquet``, view ``register_checks``):
one row per (meter_point, register, from) pair of reads.
"""
from __future__ import annotations

import sys
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa

from jobs import lakeio
from jobs.bill import inputs
from jobs.bill.job import extract, slot_of
from jobs.clean import vee
from jobs.registry import job as registry_job
from meterlake import calendar as cal
from meterlake import tariffs
from meterlake.errors import UsageError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

OUTPUT = "billing/register_checks/from={start}/to={end}/register_checks.parquet"
STATUSES = ("ok", "mismatch", "incomplete", "unmapped")
SCHEMA = pa.schema([
    pa.field("meter_point", pa.string(), nullable=False),
    pa.field("meter_serial", pa.string()),
    pa.field("register", pa.string(), nullable=False),
    pa.field("ssc", pa.string()),
    pa.field("tpr", pa.string()),
    pa.field("from", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("to", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("register_kwh", pa.float64()),
    pa.field("hh_kwh", pa.float64()),
    pa.field("difference_kwh", pa.float64()),
    pa.field("hh_periods", pa.int32()),
    pa.field("span_periods", pa.int32()),
    pa.field("status", pa.string(), nullable=False),
])


def transform(clean: DataFrame, registry: DataFrame, bands: DataFrame, register_tprs: DataFrame, *, start: date,
              end: date, tolerance_kwh: float, tolerance_share: float) -> DataFrame:
    """The checks (columns of :data:`SCHEMA`). ``bands``: (ssc, slot, band) of every half-hour of the span;
    ``register_tprs``: (ssc, register_id, tpr)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    # register reads from the start of ``start`` up to and including the start of ``end`` (a read at midnight
    # closes the span before it); half-hours of the dates between
    in_range = (F.col("settlement_date") >= F.lit(start)) & (F.col("settlement_date") <= F.lit(end))
    clean = clean.filter(in_range & ((F.col("read_kind") != "register")
                                     | (F.col("interval_start_utc") <= F.lit(cal.day_bounds(end)[0]))))
    regs = vee.register_reads(clean).join(clean.filter(F.col("read_kind") == "register")
                                          .select("meter_point", "meter_serial", "register_id", "interval_start_utc",
                                                  "settlement_date").distinct(),
                                          ["meter_point", "meter_serial", "register_id", "interval_start_utc"])
    w = Window.partitionBy("meter_point", "meter_serial", "register_id").orderBy("interval_start_utc")
    pairs = (regs.withColumn("to", F.lead("interval_start_utc").over(w))
             .withColumn("register_kwh", F.lead("value_kwh").over(w) - F.col("value_kwh"))
             .filter(F.col("to").isNotNull())
             .withColumnRenamed("interval_start_utc", "from")
             .withColumn("s1", slot_of(F.col("from"))).withColumn("s2", slot_of(F.col("to"))))
    reg = registry.select("meter_point", "ssc", "effective_from", "effective_to")
    latest = Window.partitionBy("meter_point", "meter_serial", "register_id", "from").orderBy(
        F.col("effective_from").desc())
    pairs = (pairs.join(reg, "meter_point", "left")
             .filter(F.col("effective_from").isNull() | ((F.col("effective_from") <= F.col("settlement_date"))
                     & (F.col("effective_to").isNull() | (F.col("settlement_date") < F.col("effective_to")))))
             .withColumn("_n", F.row_number().over(latest)).filter("_n = 1").drop("_n", "effective_from",
                                                                                  "effective_to"))
    mapped = F.broadcast(register_tprs)
    pairs = pairs.join(mapped, ["ssc", "register_id"], "left").withColumn(
        "tpr", F.coalesce(F.col("tpr"), F.when(F.col("register_id").rlike(r"^\d{5}$"), F.col("register_id"))))
    hh = (vee.meter_periods(clean).select("meter_point", "slot", "value_wh")
          .join(F.broadcast(registry.select("meter_point").distinct()), "meter_point", "left_semi"))
    p, h = pairs.alias("p"), hh.alias("h")
    spans = p.join(h, (F.col("p.meter_point") == F.col("h.meter_point")) & (F.col("h.slot") >= F.col("p.s1"))
                   & (F.col("h.slot") < F.col("p.s2")), "left")
    spans = spans.join(F.broadcast(bands).alias("b"), (F.col("b.ssc") == F.col("p.ssc"))
                       & (F.col("b.slot") == F.col("h.slot")), "left")
    in_tpr = F.col("b.band") == F.col("p.tpr")
    key = [F.col(f"p.{c}").alias(c) for c in ("meter_point", "meter_serial", "register_id", "ssc", "tpr", "from",
                                              "to", "register_kwh", "s1", "s2")]
    summed = (spans.groupBy(*key)
              .agg((F.coalesce(F.sum(F.when(in_tpr, F.col("h.value_wh"))), F.lit(0)) / 1000.0).alias("hh_kwh"),
                   F.count("h.slot").cast("int").alias("hh_periods")))
    diff = F.round(F.col("register_kwh") - F.col("hh_kwh"), 3)
    tolerance = F.greatest(F.lit(tolerance_kwh), F.col("hh_kwh") * F.lit(tolerance_share))
    status = (F.when(F.col("tpr").isNull(), F.lit("unmapped"))
              .when(F.col("hh_periods") < F.col("s2") - F.col("s1"), F.lit("incomplete"))
              .when(F.abs(diff) > tolerance, F.lit("mismatch")).otherwise(F.lit("ok")))
    return (summed.select("meter_point", "meter_serial", F.col("register_id").alias("register"), "ssc", "tpr", "from",
                          "to", F.round("register_kwh", 3).alias("register_kwh"),
                          F.round("hh_kwh", 3).alias("hh_kwh"), diff.alias("difference_kwh"), "hh_periods",
                          (F.col("s2") - F.col("s1")).cast("int").alias("span_periods"), status.alias("status"))
            .orderBy("meter_point", "register", "from"))


def register_rows(mapping: dict[str, dict[str, str]]) -> list[tuple]:
    return [(ssc, register, tpr) for ssc, regs in sorted(mapping.items()) for register, tpr in sorted(regs.items())]


def band_rows(rules, sscs: list[str], start: date, end: date) -> list[tuple]:
    return [(ssc, int(t.timestamp()) // 1800, band) for ssc in sscs for t in tariffs.halfhours(start, end)
            if (band := rules.register_of(ssc, t)) is not None]


def run(settings, start: date, end: date, *, spark=None, master: str | None = None, force: bool = False) -> dict:
    """Reconcile the registers read in [start, end); the answer (``force`` is accepted for the jobs' common options;
    the check always runs)."""
    if end <= start:
        raise UsageError(f"--to {end} is not after --from {start}")
    jl = lakeio.open_job_lake(settings)
    rules = inputs.read_mdd(jl.lake)
    if rules is None:
        raise UsageError("the register windows come from the market domain data: `meterlake mdd load DIR` first")
    registry = registry_job.extract(jl.lake)
    sscs = sorted({s for s in registry.column("ssc").to_pylist() if s})
    with lakeio.session(settings, f"meterlake-bill-check-{start}-{end}", spark, master) as s:
        clean, registry_df = extract(s, jl, start, end + timedelta(days=1)), registry_job.read_spark(s, jl)
        bands = lakeio.small_frame(s, band_rows(rules, sscs, start, end), "ssc string, slot long, band string")
        mapping = lakeio.small_frame(s, register_rows(settings.jobs.bill_register_tprs),
                                     "ssc string, register_id string, tpr string")
        result = transform(clean, registry_df, bands, mapping, start=start, end=end,
                           tolerance_kwh=settings.jobs.register_tolerance_kwh,
                           tolerance_share=settings.jobs.register_tolerance_share)
        rows = [r.asDict() for r in result.collect()]
    for r in rows:  # collected timestamps are naive in the driver's zone; the columns mean UTC
        for k in ("from", "to"):
            if r[k].tzinfo is None:
                r[k] = r[k].astimezone().astimezone(lakeio.UTC)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    path = OUTPUT.format(start=start.isoformat(), end=end.isoformat())
    digest = lakeio.write_deterministic(jl.lake, path, table)
    checks = [{k: r[k] for k in ("meter_point", "register", "from", "to", "register_kwh", "hh_kwh", "difference_kwh",
                                 "status")} for r in rows]
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in STATUSES}
    return {"path": path, "digest": digest, "from": start, "to": end, "checks": checks, "counts": counts,
            "message": f"{start} to {end}: {len(rows)} register span(s): "
                       + ", ".join(f"{n} {s}" for s, n in counts.items())}


def main(argv: list[str] | None = None) -> int:
    return lakeio.job_main(argv, "bill-check", __doc__,
                           lambda settings, a, **kw: run(settings, a.start, a.end, **kw))


if __name__ == "__main__":
    sys.exit(main())
