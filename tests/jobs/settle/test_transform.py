"""Settlement on literal rows: every period of the local day, groups from the registry (or the default), line
loss adjustment, actual vs estimated, and each run's cut-off."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from jobs.clean import vee
from jobs.lakeio import calendar_frame
from jobs.registry.job import SCHEMA as REGISTRY_SCHEMA
from jobs.settle import job, llf
from meterlake import settlement_runs as runs
from tests.jobs.helpers import after, day_of, frame, reads, starts

TINY_LLF = Path(__file__).with_name("data") / "llflond_tiny.ptf"
A, B, C = "1200000000014", "1200000000025", "1200000000036"


def _registry(spark, rows):
    import pyarrow as pa

    from jobs.lakeio import spark_schema

    table = pa.Table.from_pylist(rows, schema=REGISTRY_SCHEMA)
    return spark.createDataFrame([tuple(r.values()) for r in table.to_pylist()], spark_schema(REGISTRY_SCHEMA))


def _reg(mp, gsp="_C", supplier="SUPA", pc="1", llfc="1"):
    return {"meter_point": mp, "fuel": "electricity", "gsp_group": gsp, "supplier": supplier, "profile_class": pc,
            "ssc": "0393", "llfc": llfc, "measurement_class": None, "effective_from": date(2024, 1, 1),
            "effective_to": None, "source_file": "registry.csv"}


def _settle(spark, tables, day, run="SF", registry=(), factors_for=None, broadcast=False):
    reads_df = frame(spark, *tables)
    calendar = calendar_frame(spark, job.input_days(day, vee.DEFAULT_PARAMS))
    factors = job.factors_frame(spark, llf.parse(TINY_LLF, [factors_for]) if factors_for else [])
    result = job.transform(reads_df, calendar, _registry(spark, list(registry)), factors, day=day, run=run,
                           broadcast_registry=broadcast)
    return job.to_arrow(result).to_pylist()


@pytest.fixture(scope="module", params=[
    pytest.param((date(2024, 3, 31), 46), id="spring clock change"),
    pytest.param((date(2024, 10, 27), 50), id="autumn clock change"),
    pytest.param((date(2024, 10, 16), 48), id="ordinary day"),
])
def settled(request, spark):
    # GIVEN meter A (registered: _C, SUPA, profile class 1, LLFC 1) reading 0.5 kWh in every half-hour of the
    # local day, meter B (not registered) reading 0.25 except periods 10 and 11, meter C registered but silent
    day, periods = request.param
    # WHEN the day is settled (SF) with the London factors of the tiny D0265 (LLFC 1: 1.05 to period 14, then 1.1)
    return day, periods, _settle(spark, _two_meters_reading(day), day, registry=[_reg(A), _reg(C)], factors_for=day)


def _two_meters_reading(day):
    """A's and B's reads of ``day`` (C, registered, reads nothing)."""
    version = after(day, 2)
    return [day_of(A, day, 0.5, version=version), day_of(B, day, 0.25, skip=(10, 11), version=version)]


def test_a_broadcast_registry_gives_the_same_rows_as_a_shuffled_one(spark):
    # the job broadcasts a small registry (jobs.registry_broadcast_rows) and joins a large one by a shuffle
    day = date(2024, 10, 16)
    both = [_settle(spark, _two_meters_reading(day), day, registry=[_reg(A), _reg(C)], broadcast=b)
            for b in (False, True)]
    assert both[0] == both[1]
    assert {r["gsp_group"] for r in both[1]} == {"_C", "UNREGISTERED"}  # the registration was joined


def _group(rows, gsp):
    return {r["settlement_period"]: r for r in rows if r["gsp_group"] == gsp}


def test_every_period_of_the_local_day_is_settled(settled):
    day, periods, rows = settled
    registered = _group(rows, "_C")
    assert sorted(registered) == list(range(1, periods + 1))
    assert {r["consumption_kwh"] for r in registered.values()} == {0.5}
    assert sum(r["consumption_kwh"] for r in rows) == pytest.approx(0.5 * periods + 0.25 * periods)
    assert {r["settlement_date"] for r in rows} == {day} and {r["run"] for r in rows} == {"SF"}


def test_a_silent_registered_meter_is_counted_unsettled(settled):
    _, periods, rows = settled
    assert {(r["meters"], r["unsettled_meters"]) for r in _group(rows, "_C").values()} == {(1, 1)}


def test_an_unregistered_meter_is_settled_under_the_default_and_counted(settled):
    _, periods, rows = settled
    default = _group(rows, "UNREGISTERED")
    assert sorted(default) == list(range(1, periods + 1))
    assert {(r["supplier"], r["profile_class"], r["default_registry_meters"]) for r in default.values()} == {
        ("UNREGISTERED", None, 1)}


def test_actual_and_estimated_energy_are_split(settled):
    _, _, rows = settled
    default = _group(rows, "UNREGISTERED")
    assert (default[10]["actual_kwh"], default[10]["estimated_kwh"], default[10]["estimated_meters"]) == (0.0, 0.25, 1)
    assert (default[9]["actual_kwh"], default[9]["estimated_kwh"], default[9]["actual_meters"]) == (0.25, 0.0, 1)


def test_line_losses_apply_the_meters_factor_for_the_period(settled):
    _, periods, rows = settled
    registered = _group(rows, "_C")
    if periods == 46:  # the tiny D0265 has no factors for the spring day: energy counts unadjusted
        assert {(r["loss_adjusted_kwh"], r["llf_unmatched_meters"]) for r in registered.values()} == {(0.5, 1)}
        return
    assert (registered[14]["loss_adjusted_kwh"], registered[15]["loss_adjusted_kwh"]) == (0.525, 0.55)
    assert {r["llf_unmatched_meters"] for r in registered.values()} == {0}
    # meters without a registration have no LLFC, so no factor
    assert {r["llf_unmatched_meters"] for r in _group(rows, "UNREGISTERED").values()} == {1}


#: SF is 5 working days after the settlement date, to the end of that day in London (BST or GMT)
SF_CUTOFF_UTC = {date(2024, 3, 31): datetime(2024, 4, 5, 23, 0, tzinfo=UTC),  # Fri 5 April, BST
                 date(2024, 10, 27): datetime(2024, 11, 2, 0, 0, tzinfo=UTC),  # Fri 1 November, GMT
                 date(2024, 10, 16): datetime(2024, 10, 23, 23, 0, tzinfo=UTC)}  # Wed 23 October, BST


def test_the_output_has_the_documented_schema_and_order(settled):
    day, _, rows = settled
    assert list(rows[0]) == job.SCHEMA.names
    cutoff = SF_CUTOFF_UTC[day]  # the last microsecond before it is the last version the run takes
    assert {(r["cutoff_utc"], r["cutoff_version"]) for r in rows} == {
        (cutoff, int(cutoff.timestamp()) * 1_000_000 - 1)}
    keys = [(r["settlement_period"], r["gsp_group"]) for r in rows]
    assert keys == sorted(keys)


def test_each_run_sees_only_the_versions_known_by_its_cutoff(spark):
    # GIVEN one half-hour of 2024-10-16 delivered 2 days after it, corrected 20 days after, then 50 days after
    day = date(2024, 10, 16)
    at = starts(day, [20])
    delivered = {2: 0.5, 20: 0.7, 50: 0.9}
    tables = [reads(A, at, v, version=after(day, 24 * d)) for d, v in delivered.items()]
    df = frame(spark, *tables)
    # WHEN each run takes the live versions at its cut-off
    seen = {}
    for run in runs.RUNS:
        rows = vee.live_reads(df, cutoff_version=runs.cutoff_version(day, run)).collect()
        seen[run] = [r.value for r in rows]
    # THEN SF (cut-off +7 days) sees the first delivery, R1 (+1 month) the correction, R2 and later the last one
    assert seen == {"SF": [0.5], "R1": [0.7], "R2": [0.9], "R3": [0.9], "RF": [0.9], "DF": [0.9]}


def test_a_read_arriving_after_the_cutoff_is_not_in_the_run(spark):
    day = date(2024, 10, 16)
    sf_cutoff = runs.cutoff_instant(day, "SF")
    late = reads(B, starts(day, [5]), 1.0, version=int((sf_cutoff + timedelta(seconds=1)).timestamp()) * 1_000_000)
    on_time = day_of(A, day, 0.5, version=after(day, 2))
    rows = _settle(spark, [on_time, late], day, run="SF")
    assert {r["gsp_group"] for r in rows} == {"UNREGISTERED"}
    assert sum(r["consumption_kwh"] for r in rows) == pytest.approx(0.5 * 48)
