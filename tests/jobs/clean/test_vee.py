"""VEE on literal rows: live versions, each validation rule, gaps on clock-change days, each estimation method.

Spark runs a plan of this size in seconds, not milliseconds, so each module fixture below evaluates one literal
data set in which every meter exercises one behaviour; each test then asserts that behaviour on its meter.
"""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from pyspark.sql import functions as F

from jobs.clean import vee
from jobs.lakeio import calendar_frame
from tests.jobs.helpers import V1, day_of, frame, reads, starts, utc

DAY = date(2024, 10, 16)  # a Wednesday with 48 periods
AUTUMN = date(2024, 10, 27)  # 50 periods
SPRING = date(2024, 3, 31)  # 46 periods
ORDINARY = date(2024, 6, 3)


# ------------------------------------------------------------------------------------------- live version


def test_the_live_version_is_the_highest_at_or_below_the_cutoff(spark):
    # GIVEN one read delivered in three versions
    at = starts(DAY, [10])
    table = [reads("M", at, 1.0, version=100), reads("M", at, 1.5, version=200), reads("M", at, 2.0, version=300)]
    # WHEN the live version is taken with a cut-off between the second and third, and without a cut-off
    rows = vee.live_reads(frame(spark, *table), cutoff_version=250).collect()
    # THEN the second version is live (two versions were known), then the third
    assert [(r.value, r.source_version, r.versions) for r in rows] == [(1.5, 200, 2)]
    assert [r.value for r in vee.live_reads(frame(spark, *table)).collect()] == [2.0]


def test_a_replay_is_one_read_and_a_different_value_at_the_same_version_is_a_conflict(spark):
    at = starts(DAY, [10, 11])
    table = [reads("M", at, [1.0, 1.0], offset=1), reads("M", at, [1.0, 3.0], offset=2)]
    rows = {r.interval_start_utc: (r.value, r.kafka_offset, r.duplicate_conflict, r.versions)
            for r in vee.live_reads(frame(spark, *table)).collect()}
    # the copy at the lowest offset is kept either way; a copy is not another version
    assert sorted(rows.values()) == [(1.0, 1, False, 1), (1.0, 1, True, 1)]


def test_a_periods_energy_sums_its_reads_and_names_the_latest(spark):
    # GIVEN period 10 read by two registers (the second in a later file), period 11 by two meters of one meter
    # point in the same file (an exchange in the half-hour: the same version, so the serials break the tie), and
    # period 12 by a read without a serial
    p10, p11, p12 = starts(DAY, [10, 11, 12])
    table = [reads("M", [p10], 0.25, register="R1", version=V1 + 100, source_file="a"),
             reads("M", [p10], 0.5, register="R2", version=V1 + 200, source_file="b"),
             reads("M", [p11], 0.75, serial="OLD", version=V1 + 300, source_file="c"),
             reads("M", [p11], 0.125, serial="NEW", version=V1 + 300, source_file="c"),
             reads("M", [p12], 1.0, serial=None, version=V1 + 400, source_file="d")]
    # WHEN per-meter periods are taken
    periods = vee.meter_periods(vee.quarantine_reads(vee.live_reads(frame(spark, *table))))
    rows = {r.settlement_period: (r.value_wh, r.source_version, r.source_file, r.meter_serial, r.fuel)
            for r in periods.collect()}
    # THEN each is the Wh sum, with the latest read's version and file (the greatest serial on a tie), and a
    # missing serial stays missing
    assert rows == {10: (750, V1 + 200, "b", "E1", "electricity"), 11: (875, V1 + 300, "c", "OLD", "electricity"),
                    12: (1000, V1 + 400, "d", None, "electricity")}


def test_a_withdrawn_read_is_no_energy(spark):
    at = starts(DAY, [10])
    table = [reads("M", at, 1.0, version=100), reads("M", at, 1.0, version=200, quality="withdrawn")]
    flagged = vee.quarantine_reads(vee.live_reads(frame(spark, *table)))
    assert vee.meter_periods(flagged).count() == 0


# --------------------------------------------------------------------------------------------- validation

SPAN = (utc(2024, 10, 16, 0), utc(2024, 10, 16, 2))  # four half-hours
CREATED = utc(2024, 10, 16, 10)


def _validation_data():
    t = [utc(2024, 10, d) for d in (1, 8, 15)]
    halfhours = [SPAN[0] + timedelta(minutes=30 * k) for k in range(4)]
    tables = [
        reads("NEG", starts(DAY, [1, 2]), [0.4, -0.2]),
        day_of("SPIKE", DAY, 0.2, skip=(20,)), reads("SPIKE", starts(DAY, [20]), 4.0),
        day_of("BIG", DAY, 4.0),
        reads("Z12", starts(DAY, list(range(1, 13))), 0.0), reads("Z12", starts(DAY, [13]), 0.3),
        reads("Z11", starts(DAY, list(range(1, 12))), 0.0), reads("Z11", starts(DAY, [12]), 0.3),
        reads("GRID", starts(DAY, [4]), 0.5), reads("GRID", [starts(DAY, [5])[0] + timedelta(minutes=7)], 0.6),
        # a file created at 10:00 UTC with reads for 09:00 (complete), 09:30 (ends at 10:00) and 10:00
        reads("FUT", [utc(2024, 10, 16, 9), utc(2024, 10, 16, 9, 30), utc(2024, 10, 16, 10)], [0.1, 0.2, 0.3],
              version=int(CREATED.timestamp()) * 1_000_000),
        reads("BACK", t, [5000.0, 5100.0, 4000.0], kind="register"),
        reads("WRAP", t, [99_800.0, 99_950.0, 30.0], kind="register"),
        reads("EXCH", t[:1], 5000.0, kind="register", serial="E1"),
        reads("EXCH", t[1:2], 0.0, kind="register", serial="X1"),
    ]
    # register reads 00:00 and 02:00 UTC around four half-hours of 0.5 kWh: advances of 2.0, 2.5 and 4.0 kWh
    for meter, advance in (("MM-EQUAL", 2.0), ("MM-TOLERATED", 2.5), ("MM-BAD", 4.0)):
        tables += [reads(meter, [SPAN[0]], 1000.0, kind="register"),
                   reads(meter, [SPAN[1]], 1000.0 + advance, kind="register"), reads(meter, halfhours, 0.5)]
    # an incomplete span (three half-hours) is not compared
    tables += [reads("MM-INCOMPLETE", [SPAN[0]], 1000.0, kind="register"),
               reads("MM-INCOMPLETE", [SPAN[1]], 1009.0, kind="register"), reads("MM-INCOMPLETE", halfhours[:3], 0.5)]
    return tables


@pytest.fixture(scope="module")
def flagged(spark):
    """{meter: [(read kind, start 'YYYY-MM-DDTHH:MM' UTC, value, [flags], is_quarantined)]}, sorted."""
    live = vee.live_reads(frame(spark, *_validation_data()))
    out = vee.flag_reads(live)
    # the session time zone (UTC) formats the instant, whatever the machine's zone
    out = out.withColumn("at", F.date_format("interval_start_utc", "yyyy-MM-dd'T'HH:mm"))
    result: dict[str, list] = {}
    for r in out.collect():
        result.setdefault(r.meter_point, []).append((r.read_kind, r.at, r.value, list(r.flags), r.is_quarantined))
    return {k: sorted(v) for k, v in result.items()}


def _with(flagged, meter, flag):
    return [(at, value) for _, at, value, flags, _ in flagged[meter] if flag in flags]


def test_negative_values_are_flagged(flagged):
    assert _with(flagged, "NEG", "negative") == [("2024-10-15T23:30", -0.2)]


def test_a_spike_is_judged_against_the_meters_own_median(flagged):
    # a 4.0 kWh half-hour is 20x the small meter's median (0.2) and above the 3 kWh floor; the big meter's is not
    assert _with(flagged, "SPIKE", "spike") == [("2024-10-16T08:30", 4.0)]
    assert _with(flagged, "BIG", "spike") == []


def test_a_run_of_twelve_zero_half_hours_is_flagged_but_eleven_is_not(flagged):
    assert len(_with(flagged, "Z12", "zero_run")) == 12
    assert _with(flagged, "Z11", "zero_run") == []


def test_an_off_grid_read_is_quarantined(flagged):
    assert [(at, q) for _, at, _, flags, q in flagged["GRID"]] == [("2024-10-16T00:30", False),
                                                                    ("2024-10-16T01:07", True)]
    assert _with(flagged, "GRID", "off_grid") == [("2024-10-16T01:07", 0.6)]


def test_a_read_for_a_time_after_its_source_was_created_is_future(flagged):
    assert _with(flagged, "FUT", "future") == [("2024-10-16T10:00", 0.3)]


def test_an_as_of_instant_makes_later_reads_future(spark):
    table = reads("FUT", [utc(2024, 10, 16, 9), utc(2024, 10, 16, 9, 30)], [0.1, 0.2])
    as_of = int(utc(2024, 10, 16, 9, 45).timestamp()) * 1_000_000
    out = vee.quarantine_reads(vee.live_reads(frame(spark, table)), as_of_us=as_of).collect()
    assert sorted((r.value, list(r.flags), r.is_quarantined) for r in out) == [(0.1, [], False),
                                                                             (0.2, ["future"], True)]


def test_a_register_going_down_is_backwards_unless_it_wrapped(flagged):
    assert [(at, f) for _, at, _, f, _ in flagged["BACK"] if f] == [("2024-10-15T00:00", ["register_backwards"])]
    assert [(at, f) for _, at, _, f, _ in flagged["WRAP"] if f] == [("2024-10-15T00:00", ["register_rollover"])]


def test_a_new_serial_on_a_meter_point_is_a_meter_exchange(flagged):
    assert _with(flagged, "EXCH", "meter_exchange") == [("2024-10-08T00:00", 0.0)]


@pytest.mark.parametrize("meter, expected", [
    pytest.param("MM-EQUAL", [], id="register advance equals the half-hourly sum"),
    pytest.param("MM-TOLERATED", [], id="within the 1 kWh tolerance"),
    pytest.param("MM-BAD", [("2024-10-16T02:00", 1004.0)], id="2 kWh more than the half-hours"),
    pytest.param("MM-INCOMPLETE", [], id="a span with a missing half-hour is not compared"),
])
def test_register_reads_are_checked_against_the_half_hourly_sum(flagged, meter, expected):
    assert _with(flagged, meter, "register_hh_mismatch") == expected


def test_no_rule_fires_on_ordinary_reads(flagged):
    assert [f for _, _, _, f, _ in flagged["MM-EQUAL"] if f] == []
    assert [f for _, _, _, f, _ in flagged["BIG"] if f] == []


# ------------------------------------------------------------------------------------ gaps and estimation


def _estimation_data():
    week = AUTUMN - timedelta(days=7)
    return [
        # periods 11 and 12 missing between 1.0 kWh (10) and 2.5 kWh (13); a history that would give a profile
        day_of("INTERP", DAY, 1.0, skip=(11, 12, 13)), reads("INTERP", starts(DAY, [13]), 2.5),
        day_of("INTERP", DAY - timedelta(days=7), 9.0),
        # periods 20-29 missing; the two previous Wednesdays read 0.4 and 0.6; the Tuesday before is no profile
        day_of("PROF", DAY, 1.0, skip=tuple(range(20, 30))), day_of("PROF", DAY - timedelta(days=7), 0.4),
        day_of("PROF", DAY - timedelta(days=14), 0.6), day_of("PROF", DAY - timedelta(days=1), 5.0),
        # the autumn Sunday without periods 3-8 (01:00-02:00 BST, 01:00-02:00 GMT, 02:00-03:00 GMT); the Sunday
        # before read 0.3 at 01:00 and 0.7 at 01:30 clock time (its periods 3 and 4) and 0.1 otherwise
        day_of("AUT", AUTUMN, 1.0, skip=(3, 4, 5, 6, 7, 8)), day_of("AUT", week, 0.1, skip=(3, 4)),
        reads("AUT", starts(week, [3, 4]), [0.3, 0.7]),
        # no half-hours at all; register reads of 1000 at the day's start and 1024 at the next day's start
        reads("PRORATE", [starts(DAY, [1])[0], starts(DAY + timedelta(days=1), [1])[0]], [1000.0, 1024.0],
              kind="register"),
        # a gap of period 5 between two actuals, a source estimate in 6, period 40 missing
        day_of("LABEL", DAY, 1.0, skip=(5, 6, 40)), reads("LABEL", starts(DAY, [6]), 0.8, quality="estimated"),
        # three periods missing on an ordinary day
        day_of("HOLES", ORDINARY, 0.5, skip=(3, 4, 10)),
    ]


REGISTERED = [("PRORATE", DAY), ("NONE", DAY), ("CLOCK", SPRING), ("CLOCK", AUTUMN), ("CLOCK", ORDINARY)]


@pytest.fixture(scope="module")
def estimated(spark):
    """Gaps, estimates and settled periods of the estimation data over four target days."""
    days = [DAY, AUTUMN, SPRING, ORDINARY]
    live = vee.quarantine_reads(vee.live_reads(frame(spark, *_estimation_data())))
    periods = vee.meter_periods(live)
    registered = spark.createDataFrame(REGISTERED, "meter_point string, settlement_date date")
    expected = vee.expected_meters(periods, registered, days)
    loaded = {r.settlement_date for r in live.select("settlement_date").distinct().collect()} | set(days)
    calendar = calendar_frame(spark, loaded)
    missing = vee.find_gaps(expected, periods, calendar)
    estimates = vee.estimate(missing, periods, vee.register_reads(live), calendar)
    settled = vee.settled_periods(periods, estimates, missing, days)
    keys = ["meter_point", "settlement_date", "settlement_period"]
    rows = (settled.join(missing.select(*keys, "gap_len"), keys, "left")
            .select(*keys, "value_wh", "method", "gap_len").collect())
    out: dict[tuple[str, date], dict[int, tuple]] = {}
    for r in rows:
        out.setdefault((r.meter_point, r.settlement_date), {})[r.settlement_period] = (r.value_wh, r.method,
                                                                                        r.gap_len)
    return out


@pytest.mark.parametrize("day, periods", [
    pytest.param(SPRING, 46, id="spring clock change"),
    pytest.param(AUTUMN, 50, id="autumn clock change"),
    pytest.param(ORDINARY, 48, id="ordinary day"),
])
def test_a_registered_meter_without_reads_misses_every_period_of_the_local_day(estimated, day, periods):
    got = estimated[("CLOCK", day)]
    assert sorted(got) == list(range(1, periods + 1))
    assert set(got.values()) == {(None, None, periods)}


def test_missing_periods_form_gaps(estimated):
    got = estimated[("HOLES", ORDINARY)]
    assert {p: v[2] for p, v in got.items() if v[2] is not None} == {3: 2, 4: 2, 10: 1}


def test_a_short_gap_is_interpolated_between_its_neighbours(estimated):
    got = estimated[("INTERP", DAY)]
    assert (got[11][:2], got[12][:2]) == ((1500, "interpolation"), (2000, "interpolation"))


def test_a_long_gap_takes_the_same_weekday_profile(estimated):
    got = estimated[("PROF", DAY)]
    assert {p: got[p][:2] for p in range(20, 30)} == {p: (500, "profile") for p in range(20, 30)}


def test_the_autumn_repeated_hour_takes_the_profile_of_its_clock_time(estimated):
    got = estimated[("AUT", AUTUMN)]
    assert [got[p][:2] for p in range(3, 9)] == [(300, "profile"), (700, "profile"), (300, "profile"),
                                                  (700, "profile"), (100, "profile"), (100, "profile")]


def test_a_long_gap_without_history_is_prorated_from_bracketing_register_reads(estimated):
    # 24 kWh over the 48 half-hours between the two register reads
    got = estimated[("PRORATE", DAY)]
    assert sorted(got) == list(range(1, 49))
    assert set(v[:2] for v in got.values()) == {(500, "proration")}


def test_a_gap_with_no_basis_is_left_unestimated(estimated):
    assert set(v[:2] for v in estimated[("NONE", DAY)].values()) == {(None, None)}


def test_settled_periods_label_actuals_source_estimates_and_estimates(estimated):
    got = estimated[("LABEL", DAY)]
    assert len(got) == 48
    assert (got[4][:2], got[5][:2], got[6][:2], got[40][:2]) == (
        (1000, "actual"), (900, "interpolation"), (800, "source_estimate"), (1000, "interpolation"))


def test_the_registration_in_force_on_the_day_is_taken(spark):
    registry = spark.createDataFrame([
        ("M1", "_A", "SUPA", date(2024, 1, 1), date(2024, 10, 10), "electricity"),
        ("M1", "_A", "SUPB", date(2024, 10, 10), None, "electricity"),
        ("M2", "_C", "SUPC", date(2024, 11, 1), None, "electricity"),
    ], "meter_point string, gsp_group string, supplier string, effective_from date, effective_to date, "
       "fuel string")
    rows = vee.registry_as_of(registry, [date(2024, 10, 9), DAY]).collect()
    assert sorted((r.meter_point, r.settlement_date.isoformat(), r.supplier) for r in rows) == [
        ("M1", "2024-10-09", "SUPA"), ("M1", "2024-10-16", "SUPB")]


# ---------------------------------------------------------------------------------------------- parameters


def test_the_parameters_are_the_jobs_settings(monkeypatch):
    from meterlake import config

    monkeypatch.setenv("METERLAKE_JOBS__PROFILE_WEEKS", "2")
    monkeypatch.setenv("METERLAKE_JOBS__SPIKE_FACTOR", "6.5")
    params = vee.VeeParams.from_config(config.load(None).jobs)
    assert (params.profile_weeks, params.spike_factor, params.short_gap_periods) == (2, 6.5, 4)
