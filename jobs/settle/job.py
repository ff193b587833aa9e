"""Settle one settlement date for one run: half-hourly consumption by GSP group, supplier and profile/measurement
class, actual vs estimated, meter counts, line-loss adjusted where factors are given.

Run: ``meterlake job settle --date 2024-10-27 --run SF [--llf FILE.zip] [--json]``
(or ``spark-submit jobs/settle/job.py --date … --run …``).

A run uses only the reads known by its cut-off (:mod:`meterlake.settlement_runs`): per read the highest source
version at or before it, validated and gap-filled by :mod:`jobs.clean.vee` as of that cut-off, so a run recomputed
later gives the same rows and, written by the same code, the same bytes. Meters not in the registry are settled
under the configured default registration and counted (``default_registry_meters``).

Grain of the output (``settlement/settlement_date=D/run=R/settlement.parquet``): one row per (settlement_date,
settlement_period, gsp_group, supplier, profile_class, measurement_class) for the run. Energies in kWh from exact
sums of whole Wh. ``loss_adjusted_kwh`` multiplies each meter's half-hour by its line loss factor (GSP group,
LLFC, date, period) where one is given, else counts it unadjusted (and in ``llf_unmatched_meters``).

Incremental: the run's inputs (the live files of every date it reads, the registry, the factors, the parameters)
are fingerprinted; a re-run with the same fingerprint and its output in place does nothing and says so.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from jobs import lakeio
from jobs.clean import vee
from jobs.registry import job as registry_job
from jobs.settle import llf as llf_mod
from meterlake import jobruns
from meterlake import settlement_runs as runs
from meterlake.config import Jobs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

JOB = "settle"
JOB_VERSION = 1
GROUP = ("gsp_group", "supplier", "profile_class", "measurement_class")
OUTPUT = "settlement/settlement_date={day}/run={run}/settlement.parquet"

SCHEMA = pa.schema([
    pa.field("settlement_date", pa.date32(), nullable=False),
    pa.field("settlement_period", pa.int8(), nullable=False),
    pa.field("run", pa.string(), nullable=False),
    pa.field("gsp_group", pa.string()),
    pa.field("supplier", pa.string()),
    pa.field("profile_class", pa.string()),
    pa.field("measurement_class", pa.string()),
    pa.field("consumption_kwh", pa.float64()),
    pa.field("actual_kwh", pa.float64()),
    pa.field("estimated_kwh", pa.float64()),
    pa.field("loss_adjusted_kwh", pa.float64()),
    pa.field("meters", pa.int32()),
    pa.field("actual_meters", pa.int32()),
    pa.field("estimated_meters", pa.int32()),
    pa.field("unsettled_meters", pa.int32()),
    pa.field("default_registry_meters", pa.int32()),
    pa.field("llf_unmatched_meters", pa.int32()),
    pa.field("cutoff_utc", pa.timestamp("us", tz="UTC")),
    pa.field("cutoff_version", pa.int64()),
])


@dataclass(frozen=True)
class Defaults:
    """The registration a meter missing from the registry is settled under: the ``[jobs] default_*`` settings
    (:class:`meterlake.config.Jobs`, where their defaults are)."""

    gsp_group: str
    supplier: str
    profile_class: str | None
    measurement_class: str | None

    @classmethod
    def from_config(cls, jobs: Jobs) -> Defaults:
        return cls(**{f.name: getattr(jobs, f"default_{f.name}") for f in fields(cls)})


DEFAULTS = Defaults.from_config(Jobs())


# ------------------------------------------------------------------------------------------------- extract


def input_days(day: date, params: vee.VeeParams) -> dict[date, frozenset[str] | None]:
    """The lake partitions a settlement of ``day`` reads, and which read kinds of each (None: all):
    the day itself; interval reads of the same weekday in the ``profile_weeks`` before (profiles); register
    reads ``proration_days`` either side (proration)."""
    return lakeio.kinds_by_day([day], vee.estimation_days(params))


def factors_frame(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return lakeio.small_frame(spark, rows, "gsp_group string, llfc string, settlement_date date, "
                                           "settlement_period int, factor double")


def extract(spark: SparkSession, jl: lakeio.JobLake, day: date, params: vee.VeeParams,
            llf_paths: list[str] = ()) -> tuple[DataFrame, DataFrame, DataFrame, DataFrame]:
    """(reads, calendar, registry, line loss factors) for settling ``day``."""
    days = input_days(day, params)
    reads = lakeio.read_lake_days(spark, jl, days)
    calendar = lakeio.calendar_frame(spark, days)
    factors = [row for path in llf_paths for row in llf_mod.parse(path, [day])]
    return reads, calendar, registry_job.read_spark(spark, jl), factors_frame(spark, factors)


# ----------------------------------------------------------------------------------------------- transform


def settled_day(reads: DataFrame, calendar: DataFrame, registration: DataFrame, *, day: date,
                cutoff_version: int | None, params: vee.VeeParams, provenance: bool = True) -> DataFrame:
    """Every expected meter-period of ``day`` as known at ``cutoff_version``: meter_point, settlement_date,
    settlement_period, value_wh (null: missing, not estimable), method, source_version, source_file.
    ``registration``: the registry as of ``day`` (:func:`jobs.clean.vee.registry_as_of`). ``provenance=False``:
    source_version and source_file are null (the aggregate does not read them; see :func:`vee.meter_periods`).

    The other days loaded (profiles, register reads) are taken through the live-version rules only for the
    meters with a gap on ``day``: the cost of a settlement grows with the day's reads, hardly with the history.
    """
    from pyspark.sql import functions as F

    def known(df):  # the live, usable version of each read at the cut-off
        return vee.quarantine_reads(vee.live_reads(df, cutoff_version=cutoff_version))

    # read kind is part of a read's key and a read's versions share its date, so filtering first keeps the
    # live-version rule intact while the wide rows are handled once
    on_day = F.col("settlement_date") == F.lit(day)
    half_hourly = (F.col("read_kind") == "interval") & F.col("unit").isin(*vee.ENERGY_UNITS)
    periods = vee.materialize(vee.meter_periods(known(reads.filter(on_day & half_hourly)), provenance=provenance))
    registered = vee.registered_electricity(registration)
    held = vee.materialize(vee.held_periods(periods))  # a row a meter: both the expected meters and gaps read it
    expected = vee.expected_meters(held, registered, [day])
    missing = vee.materialize(vee.find_gaps(expected, periods, calendar, held=held))
    gap_meters = F.broadcast(missing.select("meter_point").distinct())
    # what estimation reads of the gap meters (the other days' half-hours, every register read), in one pass
    around = (~on_day & half_hourly) | (F.col("read_kind") == "register")
    basis = vee.materialize(known(reads.filter(around).join(gap_meters, "meter_point", "left_semi")))
    history, registers = vee.meter_periods(basis), vee.register_reads(basis)
    gap_periods = periods.join(gap_meters, "meter_point", "left_semi")  # estimates need only the gap meters
    estimates = vee.estimate(missing, gap_periods.unionByName(history), registers, calendar, params=params)
    return vee.settled_periods(periods, estimates, missing, [day])


def with_registration(settled: DataFrame, registration: DataFrame, factors: DataFrame, *, defaults: Defaults,
                      broadcast: bool = False) -> DataFrame:
    """``settled`` with each meter's registration (``registration``: the registry as of the day; a meter missing
    from it gets the default, ``is_default_registry``) and its line loss factor (``factor``, null when none is
    given). ``broadcast``: send the registration whole to the executors and join the reads where they are."""
    from pyspark.sql import functions as F

    reg = registration.select("meter_point", "settlement_date", *GROUP, "llfc")
    out = settled.join(F.broadcast(reg) if broadcast else reg, ["meter_point", "settlement_date"], "left")
    out = out.withColumn("is_default_registry", F.col("gsp_group").isNull())
    for name in GROUP:
        value = getattr(defaults, name)
        out = out.withColumn(name, F.when(F.col("is_default_registry"), F.lit(value).cast("string"))
                             .otherwise(F.col(name)))
    return out.join(factors, ["gsp_group", "llfc", "settlement_date", "settlement_period"], "left")


def transform(reads: DataFrame, calendar: DataFrame, registry: DataFrame, factors: DataFrame, *, day: date,
              run: str, params: vee.VeeParams = vee.DEFAULT_PARAMS, defaults: Defaults = DEFAULTS,
              broadcast_registry: bool = False) -> DataFrame:
    """The settlement rows of ``day`` for ``run`` (see the module docstring), ordered by period and group.
    ``broadcast_registry``: join the registry by broadcast (:func:`with_registration`; the same rows)."""
    from pyspark.sql import functions as F

    run = runs.check_run(run)
    cutoff = runs.cutoff_version(day, run)
    # computed once: both the meters expected (settled_day) and the registration joined to them read it
    registration = vee.materialize(vee.registry_as_of(registry, [day]))
    settled = settled_day(reads, calendar, registration, day=day, cutoff_version=cutoff, params=params,
                          provenance=False)  # the aggregate reads no read's version or file
    enriched = with_registration(settled, registration, factors, defaults=defaults, broadcast=broadcast_registry)
    return aggregate(enriched, run=run, cutoff_version=cutoff, cutoff_utc=runs.cutoff_instant(day, run)).orderBy(
        "settlement_period", *[F.col(c).asc_nulls_first() for c in GROUP])


def aggregate(enriched: DataFrame, *, run: str, cutoff_version: int, cutoff_utc: datetime) -> DataFrame:
    from pyspark.sql import functions as F

    value = F.col("value_wh")
    actual = F.col("method") == "actual"
    estimated = value.isNotNull() & ~actual
    loss = F.when(F.col("factor").isNotNull(), F.round(value * F.col("factor")).cast("long")).otherwise(value)

    def kwh(wh):
        return (F.coalesce(F.sum(wh), F.lit(0)) / 1000.0).cast("double")

    def meters(condition):
        return F.count(F.when(condition, F.lit(1))).cast("int")

    return (enriched.groupBy("settlement_date", "settlement_period", *GROUP)
            .agg(kwh(value).alias("consumption_kwh"), kwh(F.when(actual, value)).alias("actual_kwh"),
                 kwh(F.when(estimated, value)).alias("estimated_kwh"), kwh(loss).alias("loss_adjusted_kwh"),
                 meters(value.isNotNull()).alias("meters"), meters(actual).alias("actual_meters"),
                 meters(estimated).alias("estimated_meters"), meters(value.isNull()).alias("unsettled_meters"),
                 meters(F.col("is_default_registry")).alias("default_registry_meters"),
                 meters(value.isNotNull() & F.col("factor").isNull()).alias("llf_unmatched_meters"))
            .select("settlement_date", F.col("settlement_period").cast("byte"), F.lit(run).alias("run"), *GROUP,
                    "consumption_kwh", "actual_kwh", "estimated_kwh", "loss_adjusted_kwh", "meters",
                    "actual_meters", "estimated_meters", "unsettled_meters", "default_registry_meters",
                    "llf_unmatched_meters", F.lit(cutoff_utc).cast("timestamp").alias("cutoff_utc"),
                    F.lit(cutoff_version).cast("long").alias("cutoff_version")))


def to_arrow(result: DataFrame) -> pa.Table:
    """The collected result in the output schema, rows in the DataFrame's order."""
    rows = [r.asDict() for r in result.collect()]
    for r in rows:  # collected timestamps are naive in the driver's zone; the column means UTC
        if r["cutoff_utc"] is not None and r["cutoff_utc"].tzinfo is None:
            r["cutoff_utc"] = r["cutoff_utc"].astimezone().astimezone(lakeio.UTC)
    return pa.Table.from_pylist(rows, schema=SCHEMA)


# ---------------------------------------------------------------------------------------------------- load


def output_path(day: date, run: str) -> str:
    return OUTPUT.format(day=day.isoformat(), run=run)


def load(table: pa.Table, jl: lakeio.JobLake, day: date, run: str) -> str:
    """Write the run's rows; returns the file's SHA-256."""
    return lakeio.write_deterministic(jl.lake, output_path(day, run), table)


# ----------------------------------------------------------------------------------------------------- run


def input_state(jl: lakeio.JobLake, day: date, params: vee.VeeParams) -> dict:
    """The state of what settling ``day`` reads (:func:`extract`): its lake partitions and the registry; a job
    settling ``day`` fingerprints it."""
    return {"inputs": lakeio.partition_state(jl, input_days(day, params)),
            "registry": registry_job.stored(jl).digest, "params": asdict(params)}


def _fingerprint(jl: lakeio.JobLake, day: date, run: str, params: vee.VeeParams, defaults: Defaults,
                 llf_paths: list[str]) -> str:
    return lakeio.fingerprint({
        "job": JOB, "version": JOB_VERSION, "run": run, "cutoff": runs.cutoff_version(day, run),
        **input_state(jl, day, params), "llf": llf_mod.digest(llf_paths), "defaults": asdict(defaults),
    })


def totals(table: pa.Table) -> dict:
    import pyarrow.compute as pc

    def total(name):
        return round(pc.sum(table.column(name)).as_py() or 0.0, 3)

    return {name: total(name) for name in ("consumption_kwh", "actual_kwh", "estimated_kwh", "loss_adjusted_kwh")} | {
        "meter_periods": int(pc.sum(table.column("meters")).as_py() or 0),
        "estimated_meter_periods": int(pc.sum(table.column("estimated_meters")).as_py() or 0),
        "unsettled_meter_periods": int(pc.sum(table.column("unsettled_meters")).as_py() or 0),
        "default_registry_meter_periods": int(pc.sum(table.column("default_registry_meters")).as_py() or 0),
        "periods": len(pc.unique(table.column("settlement_period"))),
    }


@jobruns.recorded("settle")
def run(settings, day: date, run_name: str, *, llf_paths: list[str] = (), spark: SparkSession | None = None,
        master: str | None = None, force: bool = False) -> dict:
    """Settle ``day`` for ``run_name`` unless its inputs are unchanged since the last settlement; the answer."""
    run_name = runs.check_run(run_name)
    params, defaults = vee.VeeParams.from_config(settings.jobs), Defaults.from_config(settings.jobs)
    jl = lakeio.open_job_lake(settings)
    key = f"{day.isoformat()}/{run_name}"
    checkpoint = lakeio.read_checkpoint(jl.lake, JOB)
    fp = _fingerprint(jl, day, run_name, params, defaults, list(llf_paths))
    previous = checkpoint.get(key)
    answer = {"settlement_date": day, "run": run_name, "cutoff_utc": runs.cutoff_instant(day, run_name),
              "cutoff_version": runs.cutoff_version(day, run_name), "path": output_path(day, run_name)}
    existing = lakeio.file_digest(jl.lake, output_path(day, run_name))
    if not force and previous and previous["fingerprint"] == fp and existing == previous["digest"]:
        return {**answer, "path": lakeio.current(jl.lake, output_path(day, run_name)), "status": "unchanged",
                "digest": existing, "rows": previous["rows"],
                "totals": previous["totals"], "same_as_previous": True,
                "message": f"{day} {run_name}: inputs unchanged since "
                           f"{lakeio.stamp(datetime.fromisoformat(previous['at']))}; nothing to do"}
    with lakeio.session(settings, f"meterlake-settle-{day}-{run_name}", spark, master) as s:
        reads, calendar, registry, factors = extract(s, jl, day, params, list(llf_paths))
        result = transform(reads, calendar, registry, factors, day=day, run=run_name, params=params,
                           defaults=defaults,
                           broadcast_registry=registry_job.fits_broadcast(jl, settings.jobs.registry_broadcast_rows))
        table = to_arrow(result)
    digest = load(table, jl, day, run_name)
    summary = totals(table)
    reproduced = None if previous is None else previous["digest"] == digest
    lakeio.write_checkpoint(jl.lake, JOB, {key: {"fingerprint": fp, "digest": digest, "rows": table.num_rows,
                                                 "totals": summary, "at": lakeio.stamp()}})
    return {**answer, "path": lakeio.current(jl.lake, output_path(day, run_name)), "status": "settled",
            "digest": digest, "rows": table.num_rows, "totals": summary,
            "same_as_previous": reproduced,
            "message": f"{day} {run_name}: {table.num_rows} rows, {summary['consumption_kwh']:,.3f} kWh "
                       f"({summary['estimated_kwh']:,.3f} estimated)"}


def main(argv: list[str] | None = None) -> int:
    return lakeio.job_main(argv, "settle", __doc__,
                           lambda settings, a, **kw: run(settings, a.date, a.run, llf_paths=a.llf, **kw))


if __name__ == "__main__":
    sys.exit(main())
