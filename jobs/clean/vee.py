"""Validation, gap detection and estimation (VEE) of meter reads: pure DataFrame functions.

Used by the clean job (the latest version of every read) and by settlement (the reads known by a run's
cut-off). Every function takes DataFrames and plain values and returns a DataFrame: no I/O, no session, no
settings.

Live version (:func:`live_reads`)
    Per read key (:data:`READ_KEY`, the mirror's) the highest ``source_version`` at or below the cut-off; equal
    versions are replays (the lowest Kafka offset is kept). A read whose live version has quality ``withdrawn``
    counts as absent.
Validation (:func:`flag_reads`): flags, never drops. :data:`FLAGS` lists them. Two of them (``off_grid`` and
    ``future``) quarantine the read: it is kept in ``clean_reads`` with ``is_quarantined`` but is not energy of
    any period. The others leave the value in use.
Gaps (:func:`find_gaps`)
    The expected meters of a settlement date are those with half-hourly (kWh or Wh interval) reads that day plus
    the registry's electricity meters registered that day; each has the calendar's periods (46, 48 or 50). A
    missing period is one without a usable read; consecutive missing periods form a gap.
Estimation (:func:`estimate`), in this order of preference, each marked with its method:
    ``interpolation``: a gap of at most ``short_gap_periods`` with actual neighbours on both sides: linear
    between them. ``profile``: the mean of the meter's reads in the same UK clock half-hour of the same weekday
    over the previous ``profile_weeks`` weeks (by local clock slot, so the repeated autumn hour takes the
    profile of 01:00-02:00 and nothing is asked of the missing spring hour). ``proration``: the advance between
    the meter's register reads bracketing the gap (same serial and register, summed over registers), spread
    evenly over the half-hours between the two reads.
Energy is carried in whole Wh (``value_wh``, long): sums are exact, so results do not depend on partitioning.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date
from typing import TYPE_CHECKING

from meterlake.config import Jobs
from meterlake.lake.schema import LIVE_VERSION_ORDER, READ_KEY

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

PERIOD_US = 1_800_000_000

#: The read key (:data:`READ_KEY`) as the live-version window sorts it: the meter point, then the read's date,
#: period and instant, then the rest. The date and period are stamped from the instant by the mirror, so this
#: partitions the reads exactly as the read key does; in this order the window's sort also serves the
#: per-meter-period aggregate that follows it (:func:`meter_periods`), which then sorts nothing again.
LIVE_ORDER = ("meter_point", "settlement_date", "settlement_period", "interval_start_utc", "meter_serial",
              "register_id", "read_kind", "device_id", "unit")
assert set(LIVE_ORDER) == set(READ_KEY) | {"settlement_date", "settlement_period"}

FLAGS: dict[str, str] = {
    "negative": "the value is below zero",
    "spike": "an interval value above spike_factor x the meter's median half-hour (and above spike_floor_kwh)",
    "zero_run": "part of at least zero_run_periods consecutive zero half-hours",
    "duplicate_conflict": "another copy of this read with the same source version has a different value",
    "off_grid": "an interval read whose start is not on the half-hour grid (quarantined)",
    "future": "the read is for a time after its source was created, or after as_of (quarantined)",
    "register_backwards": "a register read lower than the previous read of the same meter and register",
    "register_rollover": "a register read lower than the previous one because the register wrapped (99,9xx -> 0,0xx)",
    "meter_exchange": "the meter serial differs from the previous read's of the same meter point (a new meter)",
    "register_hh_mismatch": "the register advance since the previous register read differs from the sum of the "
                            "complete half-hourly reads over the same span by more than the tolerance",
}
QUARANTINE_FLAGS = ("off_grid", "future")
METHODS = ("actual", "source_estimate", "interpolation", "profile", "proration")
ESTIMATION_METHODS = ("interpolation", "profile", "proration")
ENERGY_UNITS = {"kWh": 1.0, "Wh": 0.001}


@dataclass(frozen=True)
class VeeParams:
    """The rules' parameters: the ``[jobs]`` settings of the same names (:class:`meterlake.config.Jobs`, where
    their defaults and meanings are)."""

    short_gap_periods: int
    profile_weeks: int
    proration_days: int
    spike_factor: float
    spike_floor_kwh: float
    zero_run_periods: int
    register_tolerance_kwh: float
    register_tolerance_share: float

    @classmethod
    def from_config(cls, jobs: Jobs) -> VeeParams:
        """The parameters of a ``[jobs]`` section (``settings.jobs``)."""
        return cls(**{f.name: getattr(jobs, f.name) for f in fields(cls)})


DEFAULT_PARAMS = VeeParams.from_config(Jobs())


def estimation_days(params: VeeParams) -> list[tuple[int, str]]:
    """What estimating a day's gaps reads around it, as (days from the day, read kind) pairs: the interval reads
    of the same weekday in the ``profile_weeks`` before (profiles), the register reads ``proration_days`` either
    side (proration)."""
    return ([(-7 * k, "interval") for k in range(1, params.profile_weeks + 1)]
            + [(j, "register") for j in range(-params.proration_days, params.proration_days + 1)])


def _F():
    from pyspark.sql import functions as F

    return F


def _W():
    from pyspark.sql import Window

    return Window


def _slot(ts: Column) -> Column:
    """Half-hours since the epoch of a UTC instant (floor): consecutive across days and clock changes."""
    F = _F()
    return F.floor(F.unix_micros(ts) / F.lit(PERIOD_US)).cast("long")


def _kwh_per_unit_sql() -> str:
    """SQL of kWh per unit of the read's ``unit`` (:data:`ENERGY_UNITS`); null for a unit that is not energy."""
    cases = " ".join(f"WHEN unit = '{unit}' THEN {kwh!r}D" for unit, kwh in ENERGY_UNITS.items())
    return f"CASE {cases} END"


def _kwh_per_unit() -> Column:
    return _F().expr(_kwh_per_unit_sql())


def _energy_kwh() -> Column:
    return _F().expr(_energy_kwh_sql())


_SEP = "\x00"


def max_tuple(number: str, *strings: str) -> Column:
    """The greatest (``number``, *``strings``) of a group as one string, in the order of the max of their struct:
    the non-negative long zero-padded to 20 digits, then each string after a NUL (which sorts before every other
    character; a null string counts as empty). Spark compares a struct of strings row by row in generic code: on
    millions of reads this costs about a third of the aggregate. :func:`tuple_fields` reads it back."""
    F = _F()
    parts = [F.lpad(F.col(number).cast("string"), 20, "0")]
    for name in strings:
        parts += [F.lit(_SEP), F.coalesce(F.col(name), F.lit(""))]
    return F.max(F.concat(*parts))


def tuple_fields(column: str, number: str, *strings: str) -> list[Column]:
    """The fields of a :func:`max_tuple`, named as its columns were (an empty string as null)."""
    F = _F()
    parts = F.split(F.col(column), _SEP)
    return [parts[0].cast("long").alias(number)] + [F.nullif(parts[k + 1], F.lit("")).alias(name)
                                                    for k, name in enumerate(strings)]


def half_up_sql(x: str) -> str:
    """SQL of the double ``x`` rounded to a whole number, halves away from zero, as a long: what
    ``round(x)::long`` gives (nulls and NaN alike) in plain arithmetic, where Spark's ``round`` of a double makes
    a ``java.math.BigDecimal`` per row (about 0.3 CPU seconds per 2.4 million reads). ``|x| - floor(|x|)`` is
    exact for a double, so a half is a half."""
    size = f"abs({x})"
    rounded = f"(floor({size}) + CASE WHEN {size} - floor({size}) >= 0.5D THEN 1 ELSE 0 END)"
    return f"CASE WHEN {x} < 0 THEN -{rounded} ELSE {rounded} END"


def _energy_kwh_sql() -> str:
    """SQL of :func:`_energy_kwh`."""
    return f"value * {_kwh_per_unit_sql()}"


#: SQL of the usable interval reads (:func:`usable_intervals`)
USABLE_INTERVALS_SQL = ("read_kind = 'interval' AND unit IN ({}) AND NOT is_quarantined AND quality <> 'withdrawn'"
                        .format(", ".join(f"'{unit}'" for unit in ENERGY_UNITS)))


# ------------------------------------------------------------------------------------------- live version


def live_reads(reads: DataFrame, *, cutoff_version: int | None = None) -> DataFrame:
    """The live version of every read known at ``cutoff_version`` (None: every version).

    Adds ``versions`` (distinct source versions of the read up to the cut-off) and ``duplicate_conflict``
    (another copy with the live version has a different value).
    """
    F, W = _F(), _W()
    r = reads if cutoff_version is None else reads.filter(F.col("source_version") <= F.lit(cutoff_version))
    # one shuffle, by meter point: it serves the read key's window here and, downstream, every window, aggregate
    # and join keyed by meter point first (per-meter periods, gaps, baselines), which then need no shuffle of
    # their own (Spark would otherwise hash on the whole read key, then again on the meter point)
    r = r.repartition("meter_point")
    key = W.partitionBy(*LIVE_ORDER)
    ordered = key.orderBy(*(F.col(name).desc_nulls_last() if way == "descending" else F.col(name).asc_nulls_last()
                            for name, way in LIVE_VERSION_ORDER))
    top = F.col("_top") == F.col("source_version")
    r = (r.withColumn("_rank", F.row_number().over(ordered))
         .withColumn("_top", F.max("source_version").over(key)))
    # distinct versions, not copies: a replay (the same version again) is not a version, and compaction's
    # collapsing of copies must not change the count
    r = (r.withColumn("versions", F.size(F.collect_set("source_version").over(key)).cast("int"))
         .withColumn("duplicate_conflict",
                     F.min(F.when(top, F.col("value"))).over(key) != F.max(F.when(top, F.col("value"))).over(key)))
    return r.filter(F.col("_rank") == 1).drop("_rank", "_top")


# ---------------------------------------------------------------------------------------------- validation


def _flag_array(conditions: dict[str, Column]) -> Column:
    F = _F()
    return F.filter(F.array(*[F.when(c, F.lit(name)) for name, c in conditions.items()]), lambda x: x.isNotNull())


def _quarantine_conditions(as_of_us: int | None) -> dict[str, Column]:
    F = _F()
    start = F.unix_micros(F.col("interval_start_utc"))
    interval = F.col("read_kind") == "interval"
    end = F.when(interval, start + F.lit(PERIOD_US)).otherwise(start)
    future = end > F.col("source_version")
    if as_of_us is not None:
        future = future | (end > F.lit(as_of_us))
    return {"off_grid": interval & (F.pmod(start, F.lit(PERIOD_US)) != 0), "future": future}


def quarantine_reads(live: DataFrame, *, as_of_us: int | None = None) -> DataFrame:
    """Only the quarantining flags (what settlement needs): adds ``flags`` and ``is_quarantined``."""
    F = _F()
    conditions = _quarantine_conditions(as_of_us)
    return (live.withColumn("flags", _flag_array(conditions))
            .withColumn("is_quarantined", F.coalesce(conditions["off_grid"] | conditions["future"], F.lit(False))))


def flag_reads(live: DataFrame, *, params: VeeParams = DEFAULT_PARAMS, as_of_us: int | None = None) -> DataFrame:
    """Every validation rule of :data:`FLAGS` on the live reads: adds ``flags`` (array, in FLAGS order) and
    ``is_quarantined``.

    Baselines and runs are taken over the reads given (the job's loaded window), so a read near the window's
    edge is judged on what was loaded.
    """
    F, W = _F(), _W()
    q = _quarantine_conditions(as_of_us)
    interval = (F.col("read_kind") == "interval") & F.col("unit").isin(*ENERGY_UNITS)
    register = F.col("read_kind") == "register"
    r = live.withColumn("_kwh", F.when(interval, _energy_kwh())).withColumn("_slot", _slot(F.col("interval_start_utc")))
    usable = interval & ~q["off_grid"] & ~q["future"]

    # spike: against the meter's own median half-hour over the loaded reads
    baseline = (r.filter(usable & (F.col("_kwh") >= 0)).groupBy("meter_point")
                .agg(F.percentile(F.col("_kwh"), F.lit(0.5)).alias("_baseline")))
    r = r.join(baseline, "meter_point", "left")
    spike = usable & (F.col("_kwh") > F.greatest(F.col("_baseline") * F.lit(params.spike_factor),
                                                  F.lit(params.spike_floor_kwh)))

    # zero run: consecutive zero half-hours share (slot - number of zeros so far)
    by_time = W.partitionBy("meter_point").orderBy("_slot", "interval_start_utc", "register_id", "meter_serial")
    zero = usable & (F.col("_kwh") == 0)
    r = r.withColumn("_zeros", F.sum(F.when(zero, 1).otherwise(0)).over(
        by_time.rowsBetween(W.unboundedPreceding, W.currentRow)))
    r = r.withColumn("_island", F.when(zero, F.col("_slot") - F.col("_zeros")))
    r = r.withColumn("_run", F.sum(F.when(zero, 1).otherwise(0)).over(W.partitionBy("meter_point", "_island")))
    zero_run = zero & (F.col("_run") >= params.zero_run_periods)

    # meter exchange: the serial changes between consecutive reads of a meter point (of the same kind); the old
    # meter's last read and the new one's first may share an instant: then the order they were sent in decides
    # (serials are pseudonyms in the lake, so their order means nothing)
    by_kind = W.partitionBy("meter_point", "read_kind").orderBy(
        "interval_start_utc", "source_version", "source_file", "source_line", "meter_serial", "register_id")
    r = r.withColumn("_prev_serial", F.lag("meter_serial").over(by_kind))
    exchange = F.col("_prev_serial").isNotNull() & ~F.col("meter_serial").eqNullSafe(F.col("_prev_serial"))

    # registers: backwards, rollover, and the advance against the half-hourly sum. Only register reads have
    # them: they are worked out on those rows alone and the others rejoin them by a union (a join of the spans'
    # sums back onto every read would shuffle and sort every read by the read key)
    halfhours = r.filter(usable).select(F.col("meter_point").alias("_mp"), F.col("register_id").alias("_reg"),
                                        "interval_start_utc", "_slot", "_kwh")
    others = r.filter(~F.coalesce(register, F.lit(False)))
    r = r.filter(register)
    by_register = W.partitionBy("meter_point", "meter_serial", "register_id", "read_kind").orderBy(
        "interval_start_utc")
    r = (r.withColumn("_prev_value", F.when(register, F.lag("value").over(by_register)))
         .withColumn("_prev_start", F.when(register, F.lag("interval_start_utc").over(by_register))))
    cap = F.pow(F.lit(10.0), F.floor(F.log10(F.greatest(F.col("_prev_value"), F.lit(1.0)))) + 1)
    lower = register & (F.col("value") < F.col("_prev_value"))
    rollover = lower & (F.col("_prev_value") >= cap * 0.9) & (F.col("value") < cap * 0.1)
    r = r.withColumn("_rollover", F.coalesce(rollover, F.lit(False)))
    raw_advance = F.col("value") - F.col("_prev_value") + F.when(F.col("_rollover"), cap).otherwise(0.0)
    to_kwh = F.coalesce(_kwh_per_unit(), F.lit(1.0))
    r = r.withColumn("_advance", F.when(register & F.col("_prev_value").isNotNull(), raw_advance * to_kwh))
    r = r.withColumn("_rid", F.concat_ws("|", *[F.coalesce(F.col(c).cast("string"), F.lit("\u2205"))
                                              for c in READ_KEY]))
    spans = r.filter(register & F.col("_prev_start").isNotNull() & (F.col("_advance") >= 0)).select(
        "_rid", F.col("meter_point").alias("_mp"), F.col("register_id").alias("_reg"),
        F.col("_prev_start").alias("_t1"), F.col("interval_start_utc").alias("_t2"))
    sums = (spans.join(halfhours, ["_mp", "_reg"])
            .filter((F.col("interval_start_utc") >= F.col("_t1")) & (F.col("interval_start_utc") < F.col("_t2")))
            .groupBy("_rid", "_t1", "_t2")
            .agg(F.sum("_kwh").alias("_hh_kwh"), F.countDistinct("_slot").alias("_hh_n"))
            .withColumn("_span_n", (F.unix_micros("_t2") - F.unix_micros("_t1")) / F.lit(PERIOD_US))
            .select("_rid", "_hh_kwh", "_hh_n", "_span_n"))
    r = r.join(sums, "_rid", "left").unionByName(others, allowMissingColumns=True)
    mismatch = (F.col("_hh_n") == F.col("_span_n")) & (F.abs(F.col("_advance") - F.col("_hh_kwh")) > F.greatest(
        F.lit(params.register_tolerance_kwh), F.col("_hh_kwh") * params.register_tolerance_share))

    conditions = {
        "negative": F.col("value") < 0,
        "spike": spike,
        "zero_run": zero_run,
        "duplicate_conflict": F.col("duplicate_conflict"),
        "off_grid": q["off_grid"],
        "future": q["future"],
        "register_backwards": lower & ~F.col("_rollover"),
        "register_rollover": F.col("_rollover"),
        "meter_exchange": exchange,
        "register_hh_mismatch": register & mismatch,
    }
    conditions = {name: F.coalesce(c, F.lit(False)) for name, c in conditions.items()}
    out = (r.withColumn("flags", _flag_array(conditions))
           .withColumn("is_quarantined", conditions["off_grid"] | conditions["future"]))
    return out.drop(*[c for c in out.columns if c.startswith("_")])


# ------------------------------------------------------------------------------------------ half-hour values


def usable_intervals(flagged: DataFrame) -> DataFrame:
    """The usable interval reads (energy units, not quarantined, not withdrawn), each with its energy in whole Wh
    (``value_wh``): what :func:`meter_periods` sums per period, and what billing sums per bill."""
    # SQL text rather than Column calls: each pyspark.sql.functions call is a py4j round trip (milliseconds
    # apiece on a busy machine), a fixed cost of every job run
    wh = half_up_sql(f"({_energy_kwh_sql()}) * 1000")
    return flagged.filter(USABLE_INTERVALS_SQL).withColumn("value_wh", _F().expr(wh))


def meter_periods(flagged: DataFrame, *, provenance: bool = True) -> DataFrame:
    """Per meter point and settlement period, the energy of its usable interval reads (summed over registers
    and serials) in whole Wh.

    Columns: meter_point, settlement_date, settlement_period, slot, value_wh, is_source_estimate,
    source_version (the latest of the period's reads), source_file (that read's file), meter_serial, fuel.
    ``provenance=False``: those last four are null (for a caller that does not read them: finding the latest
    read's is a string maximum per period, and the strings are the bulk of a materialised period).
    """
    F = _F()
    latest = ("source_version", "source_file", "meter_serial", "fuel")
    if provenance:
        which, fields_ = [max_tuple(*latest).alias("_latest")], tuple_fields("_latest", *latest)
    else:
        which = []
        fields_ = [F.lit(None).cast(kind).alias(name) for name, kind in zip(
            latest, ("long", "string", "string", "string"), strict=True)]
    # usable interval reads are on the half-hour grid: one instant per period, so grouping by the instant is
    # grouping by the period, in the order the live-version window left the rows (:data:`LIVE_ORDER`)
    return (usable_intervals(flagged)
            .groupBy("meter_point", "settlement_date", "settlement_period", "interval_start_utc")
            .agg(F.sum("value_wh").alias("value_wh"),
                 F.max(F.col("quality") == "estimated").alias("is_source_estimate"), *which)
            .withColumn("slot", _slot(F.col("interval_start_utc")))
            .select("meter_point", "settlement_date", F.col("settlement_period").cast("int"), "slot", "value_wh",
                    "is_source_estimate", *fields_))


def register_reads(flagged: DataFrame) -> DataFrame:
    """Usable register reads in kWh: meter_point, meter_serial, register_id, interval_start_utc, value_kwh."""
    F = _F()
    usable = ((F.col("read_kind") == "register") & F.col("unit").isin(*ENERGY_UNITS) & ~F.col("is_quarantined")
              & (F.col("quality") != "withdrawn"))
    return flagged.filter(usable).select("meter_point", "meter_serial", "register_id", "interval_start_utc",
                                         _energy_kwh().alias("value_kwh"))


# --------------------------------------------------------------------------------------------------- gaps


def expected_meters(periods: DataFrame, registered: DataFrame, days: Iterable[date]) -> DataFrame:
    """(meter_point, settlement_date) expected on each target day: the meters with half-hourly reads that day
    (``periods``: :func:`meter_periods`, or its :func:`held_periods`) and the ``registered`` ones (meter_point,
    settlement_date). A meter with neither is not expected: the registry says which meters should exist."""
    F = _F()
    targets = sorted(set(days))
    read = periods.filter(F.col("settlement_date").isin(targets)).select("meter_point", "settlement_date")
    listed = registered.filter(F.col("settlement_date").isin(targets)).select("meter_point", "settlement_date")
    return read.unionByName(listed).distinct()


def held_periods(periods: DataFrame) -> DataFrame:
    """Per meter-day of ``periods`` (:func:`meter_periods`, a row a slot), the periods it holds: meter_point,
    settlement_date, _held. A meter-day's row, not a period's: what :func:`expected_meters` and
    :func:`find_gaps` need of the periods, computed once (materialised by the caller) instead of twice."""
    F = _F()
    return periods.groupBy("meter_point", "settlement_date").agg(F.count(F.lit(1)).alias("_held"))


def find_gaps(expected: DataFrame, periods: DataFrame, calendar: DataFrame, *,
              held: DataFrame | None = None) -> DataFrame:
    """The missing periods of the expected meter-days, one row each, with their gap: meter_point,
    settlement_date, settlement_period, slot, local_slot, weekday, gap_first, gap_last (slots), gap_len.
    ``held``: :func:`held_periods` of ``periods`` when the caller has it."""
    F, W = _F(), _W()
    # the calendar is a few rows per day: broadcast, never shuffled on its one or few dates
    days = F.broadcast(calendar.select("settlement_date", "settlement_period", "slot", "local_slot", "weekday"))
    # only the meter-days without a read in every period are laid on the grid (most meter-days are complete)
    held = held_periods(periods) if held is None else held
    counts = days.groupBy("settlement_date").agg(F.count(F.lit(1)).alias("_periods"))
    short = (expected.join(F.broadcast(counts), "settlement_date")
             .join(held, ["meter_point", "settlement_date"], "left")
             .filter(F.coalesce(F.col("_held"), F.lit(0)) < F.col("_periods"))
             .select("meter_point", "settlement_date"))
    grid = short.join(days, "settlement_date")
    read = periods.select("meter_point", "slot").join(short.select("meter_point").distinct(), "meter_point",
                                                      "left_semi")
    missing = grid.join(read, ["meter_point", "slot"], "left_anti")
    order = W.partitionBy("meter_point", "settlement_date").orderBy("slot")
    missing = missing.withColumn("_island", F.col("slot") - F.row_number().over(order))
    island = W.partitionBy("meter_point", "settlement_date", "_island")
    return (missing.withColumn("gap_first", F.min("slot").over(island))
            .withColumn("gap_last", F.max("slot").over(island))
            .withColumn("gap_len", F.count(F.lit(1)).over(island).cast("int"))
            .drop("_island"))


# ---------------------------------------------------------------------------------------------- estimation


def _interpolated(missing: DataFrame, periods: DataFrame, params: VeeParams) -> DataFrame:
    F = _F()
    prev = periods.select("meter_point", (F.col("slot") + 1).alias("gap_first"), F.col("value_wh").alias("_prev"))
    nxt = periods.select("meter_point", (F.col("slot") - 1).alias("gap_last"), F.col("value_wh").alias("_next"))
    short = missing.filter(F.col("gap_len") <= params.short_gap_periods)
    k = (F.col("slot") - F.col("gap_first") + 1).cast("double")
    value = F.round(F.col("_prev") + (F.col("_next") - F.col("_prev")) * k / (F.col("gap_len") + 1)).cast("long")
    return (short.join(prev, ["meter_point", "gap_first"]).join(nxt, ["meter_point", "gap_last"])
            .select("meter_point", "slot", value.alias("_interpolation")))


def _profiled(missing: DataFrame, periods: DataFrame, calendar: DataFrame, params: VeeParams) -> DataFrame:
    F = _F()
    history = (periods.join(F.broadcast(calendar.select("slot", "local_slot")), "slot")
               .select("meter_point", "local_slot", F.col("settlement_date").alias("_hist_date"), "value_wh"))
    weeks = F.datediff(F.col("settlement_date"), F.col("_hist_date"))
    return (missing.select("meter_point", "slot", "settlement_date", "local_slot")
            .join(history, ["meter_point", "local_slot"])
            .filter((weeks > 0) & (weeks % 7 == 0) & (weeks <= 7 * params.profile_weeks))
            .groupBy("meter_point", "slot")
            .agg(F.round(F.sum("value_wh") / F.count("value_wh")).cast("long").alias("_profile")))


def _prorated(missing: DataFrame, registers: DataFrame) -> DataFrame:
    F = _F()
    gaps = (missing.select("meter_point", "gap_first", "gap_last").distinct()
            .withColumn("_t_start", F.timestamp_seconds(F.col("gap_first") * 1800))
            .withColumn("_t_end", F.timestamp_seconds((F.col("gap_last") + 1) * 1800)))
    reads = registers.select("meter_point", "meter_serial", "register_id", F.col("interval_start_utc").alias("_t"),
                             F.col("value_kwh").alias("_v"))
    keys = ["meter_point", "gap_first", "gap_last", "meter_serial", "register_id"]
    before = (gaps.join(reads, "meter_point").filter(F.col("_t") <= F.col("_t_start")).groupBy(*keys)
              .agg(F.max(F.struct("_t", "_v")).alias("_r1")))
    after = (gaps.join(reads, "meter_point").filter(F.col("_t") >= F.col("_t_end")).groupBy(*keys)
             .agg(F.min(F.struct("_t", "_v")).alias("_r2")))
    span = (F.unix_micros(F.col("_r2._t")) - F.unix_micros(F.col("_r1._t"))) / F.lit(PERIOD_US)
    same = [F.col(f"b.{k}").eqNullSafe(F.col(f"a.{k}")) for k in keys]  # a serial or register may be null
    rates = (before.alias("b").join(after.alias("a"), same)
             .select(*[F.col(f"b.{k}").alias(k) for k in keys], "b._r1", "a._r2"))
    rates = (rates.withColumn("_advance", F.col("_r2._v") - F.col("_r1._v"))
             .filter(F.col("_advance") >= 0)
             .withColumn("_rate_wh", F.col("_advance") * 1000 / span)
             .groupBy("meter_point", "gap_first", "gap_last").agg(F.sum("_rate_wh").alias("_rate_wh")))
    return (missing.select("meter_point", "slot", "gap_first", "gap_last")
            .join(rates, ["meter_point", "gap_first", "gap_last"])
            .select("meter_point", "slot", F.round("_rate_wh").cast("long").alias("_proration")))


def estimate(missing: DataFrame, periods: DataFrame, registers: DataFrame, calendar: DataFrame, *,
             params: VeeParams = DEFAULT_PARAMS) -> DataFrame:
    """An estimate for each missing period that can have one: meter_point, settlement_date, settlement_period,
    slot, value_wh, method (interpolation, profile or proration; see the module docstring)."""
    F = _F()
    interpolation = _interpolated(missing, periods, params)
    profile = _profiled(missing, periods, calendar, params)
    proration = _prorated(missing, registers)
    out = (missing.select("meter_point", "settlement_date", "settlement_period", "slot", "gap_first", "gap_last")
           .join(interpolation, ["meter_point", "slot"], "left")
           .join(profile, ["meter_point", "slot"], "left")
           .join(proration, ["meter_point", "slot"], "left"))
    method = (F.when(F.col("_interpolation").isNotNull(), F.lit("interpolation"))
              .when(F.col("_profile").isNotNull(), F.lit("profile"))
              .when(F.col("_proration").isNotNull(), F.lit("proration")))
    return (out.withColumn("method", method).filter(F.col("method").isNotNull())
            .select("meter_point", "settlement_date", F.col("settlement_period").cast("int"), "slot",
                    F.coalesce("_interpolation", "_profile", "_proration").alias("value_wh"), "method"))


def settled_periods(periods: DataFrame, estimates: DataFrame, missing: DataFrame, days: Iterable[date]) -> DataFrame:
    """Every expected period of the target ``days``: meter_point, settlement_date, settlement_period, value_wh
    (null: missing and not estimated), method (actual, source_estimate, interpolation, profile, proration, or
    null), source_version, source_file.
    """
    F = _F()
    actual = (periods.filter(F.col("settlement_date").isin(sorted(set(days))))
              .select("meter_point", "settlement_date", "settlement_period", "value_wh",
                      F.when(F.col("is_source_estimate"), F.lit("source_estimate")).otherwise(F.lit("actual"))
                      .alias("method"), "source_version", "source_file"))
    keys = ["meter_point", "settlement_date", "settlement_period"]
    gaps = (missing.select(*keys)
            .join(estimates.select(*keys, "value_wh", "method"), keys, "left")
            .withColumn("source_version", F.lit(None).cast("long"))
            .withColumn("source_file", F.lit(None).cast("string")))
    return actual.unionByName(gaps)


def registered_electricity(registry_asof: DataFrame) -> DataFrame:
    """(meter_point, settlement_date) of the registry's electricity meters (from :func:`registry_as_of`)."""
    F = _F()
    return registry_asof.filter(F.col("fuel") == "electricity").select("meter_point", "settlement_date")


def registry_as_of(registry: DataFrame, days: Iterable[date]) -> DataFrame:
    """The registration in force on each day: one row per (meter_point, settlement_date) with the registry's
    attributes (the latest ``effective_from`` at or before the day whose ``effective_to`` is after it)."""
    F, W = _F(), _W()
    # the days as literals: a frame of Python rows would be a Python RDD, whose every read starts Python workers
    targets = registry.sparkSession.range(1).select(
        F.explode(F.array(*[F.lit(d) for d in sorted(set(days))])).alias("settlement_date"))
    joined = registry.crossJoin(targets).filter(
        (F.col("effective_from") <= F.col("settlement_date"))
        & (F.col("effective_to").isNull() | (F.col("settlement_date") < F.col("effective_to"))))
    latest = W.partitionBy("meter_point", "settlement_date").orderBy(F.col("effective_from").desc())
    return joined.withColumn("_n", F.row_number().over(latest)).filter(F.col("_n") == 1).drop("_n")


def materialize(df: DataFrame) -> DataFrame:
    """``df`` computed once and kept by the executors (a local checkpoint), for a result several branches of a
    plan read: without it, Spark plans each branch's copy of the windows and joins again, and the plans grow
    with every step. Same rows, same semantics; only the execution changes. (A checkpoint's size estimate can be
    wrong, so the jobs' sessions broadcast only on measured sizes: :data:`jobs.lakeio.JOB_CONF`.)"""
    return df.localCheckpoint(eager=True)
