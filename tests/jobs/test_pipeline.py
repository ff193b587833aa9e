"""From generated files through the lake to settlement: registry, clean, settle (and its reproducibility), a run
diff, quality, the output views, and the CLI.

The lake is written as the mirror writes it (one part file per file and settlement date, named by a Kafka offset)
from the files the generator produced, ingested by the real ingest pipeline; the jobs run in the test session.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from jobs.clean import job as clean
from jobs.quality import job as quality
from jobs.settle import job as settle
from jobs.settle_diff import job as settle_diff
from meterlake import config, pseudonym
from meterlake import settlement_runs as runs
from meterlake.cli import cli
from meterlake.generate import Options, generate
from meterlake.lake import outputs
from meterlake.lake.files import open_lake
from tests.jobs.helpers import after, arrive_late, publish_to_lake

pytestmark = pytest.mark.slow

AUTUMN = date(2024, 10, 27)
NEW_METER = "1900000000016"


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory):
    root = tmp_path_factory.mktemp("portfolio")
    manifest = generate(Options(meters=12, days=9, start=date(2024, 10, 21), seed=3, meters_per_file=6,
                                lcl_meters=0, device_meters=1), root)
    return root, manifest


@pytest.fixture(scope="module")
def settings(portfolio, tmp_path_factory):
    root, manifest = portfolio
    base = tmp_path_factory.mktemp("jobs-lake")
    (base / "lake.key").write_text("a key of the lake's pseudonyms, for this test only\n")
    s = config.load(None)
    s = s.model_copy(update={"paths": s.paths.model_copy(update={"state_dir": base / "state",
                                                                 "lake": str(base / "lake")}),
                             "lake": s.lake.model_copy(update={"pseudonym_key_file": str(base / "lake.key")})})
    lake = open_lake(s)
    now = datetime.fromisoformat(manifest["valid_as_of"])
    publish_to_lake(lake, root, [f["path"] for f in manifest["files"]], now, pseudonym.for_settings(s))
    result = CliRunner().invoke(cli, ["registry", "load", str(root / "registry.csv"), "--json"],
                                obj=None, env={"METERLAKE_PATHS__LAKE": s.paths.lake,
                                               "METERLAKE_PATHS__STATE_DIR": str(s.paths.state_dir),
                                               "METERLAKE_LAKE__PSEUDONYM_KEY_FILE": s.lake.pseudonym_key_file})
    assert result.exit_code == 0, result.output
    loaded = json.loads(result.output)
    assert (loaded["loaded"], loaded["meter_points"]) == (12, 12)
    return s


def _defect(manifest, kind):
    return next(d for d in manifest["defects"] if d["kind"] == kind)


def _lake_id(settings, identifier: str) -> str:
    """What the lake holds for a meter point or serial of the generator's manifest: its pseudonym."""
    return pseudonym.for_settings(settings).one(identifier)


def _clean_rows(settings, day):
    lake = open_lake(settings)
    files = outputs.view_files(lake, ["clean_reads"])["clean_reads"]
    table = pq.ParquetDataset([f for f in files if f"settlement_date={day}" in f], partitioning=None).read()
    return table.to_pylist()


@pytest.fixture(scope="module")
def cleaned(settings, spark):
    return clean.run(settings, spark=spark)


def test_clean_estimates_the_missing_half_hours_by_interpolation(cleaned, settings, portfolio):
    _, manifest = portfolio
    assert cleaned["status"] == "cleaned" and len(cleaned["cleaned"]) == 9
    gap = _defect(manifest, "missing_reads")
    rows = [r for r in _clean_rows(settings, "2024-10-23") if r["meter_point"] == _lake_id(settings, gap["meter_point"])
            and r["estimation_method"] == "interpolation"]
    got = sorted(r["interval_start_utc"].strftime("%Y-%m-%dT%H:%M:%SZ") for r in rows)
    assert got == gap["interval_starts"]


def test_clean_flags_the_meter_exchange_and_the_register_reset(cleaned, settings, portfolio):
    _, manifest = portfolio
    exchange, reset = _defect(manifest, "meter_exchange"), _defect(manifest, "register_reset")
    flagged = {(r["meter_point"], r["meter_serial"], f) for r in _clean_rows(settings, exchange["day"])
               for f in r["flags"] if r["read_kind"] == "register"}
    assert (_lake_id(settings, exchange["meter_point"]), _lake_id(settings, exchange["new_serial"]),
            "meter_exchange") in flagged
    # the reset register read is kept (flags never drop); with this portfolio it is the meter's first register
    # read in the lake (read weekly, reset on the fifth day), so there is nothing earlier to be lower than
    registers = [(r["settlement_date"], r["value"], r["flags"]) for day in ("2024-10-21", "2024-10-25")
                 for r in _clean_rows(settings, day)
                 if r["meter_point"] == _lake_id(settings, reset["meter_point"]) and r["read_kind"] == "register"]
    assert registers == [(date(2024, 10, 25), 0.0, [])]


def test_a_rerun_of_unchanged_days_does_nothing_and_says_so(cleaned, settings, spark):
    again = clean.run(settings, spark=spark)
    assert again["status"] == "unchanged" and again["cleaned"] == [] and len(again["unchanged"]) == 9
    assert "nothing to do" in again["message"]


def _independent_total(settings, day):
    """The latest version of each electricity half-hour of ``day``, summed by DuckDB straight from the lake."""
    lake = open_lake(settings)
    files = [f.path for f in lake.live_files(day)]
    listed = ", ".join(f"'{f}'" for f in files)
    return duckdb.connect().execute(f"""
        SELECT round(sum(value), 3), round(sum(value) FILTER (WHERE quality = 'estimated'), 3) FROM (
          SELECT value, quality FROM read_parquet([{listed}])
          WHERE read_kind = 'interval' AND unit = 'kWh' AND fuel = 'electricity'
          QUALIFY row_number() OVER (PARTITION BY meter_point, meter_serial, register_id, interval_start_utc
                                     ORDER BY source_version DESC, kafka_offset) = 1)
        WHERE quality <> 'withdrawn'""").fetchone()


@pytest.fixture(scope="module")
def first_sf(settings, spark):
    return settle.run(settings, AUTUMN, "SF", spark=spark)


def test_settling_the_autumn_clock_change_day_adds_up(first_sf, settings):
    # GIVEN the generated portfolio's reads of 27 October 2024 (50 periods) in the lake
    # WHEN SF is settled
    assert first_sf["status"] == "settled"
    assert first_sf["totals"]["periods"] == 50
    # THEN the consumption is the sum DuckDB finds over the same files; nothing is missing, so the only
    # estimates are the source's own (the generator marks 0.5% of half-hours estimated)
    total, source_estimated = _independent_total(settings, AUTUMN)
    assert first_sf["totals"]["consumption_kwh"] == pytest.approx(total, abs=1e-6)
    assert first_sf["totals"]["estimated_kwh"] == pytest.approx(source_estimated, abs=1e-6)
    assert first_sf["totals"]["unsettled_meter_periods"] == 0
    # and every electricity meter (8 HH, the device meter's reads are not interval reads) is registered
    assert first_sf["totals"]["default_registry_meter_periods"] == 0
    table = pq.read_table(open_lake(settings).path(first_sf["path"]))
    assert set(table.column("gsp_group").to_pylist()) <= {f"_{c}" for c in "ABCDEFGHJKLMNP"}


def test_a_rerun_of_an_unchanged_run_does_nothing(first_sf, settings, spark):
    again = settle.run(settings, AUTUMN, "SF", spark=spark)
    assert (again["status"], again["digest"]) == ("unchanged", first_sf["digest"])


@pytest.fixture(scope="module")
def late(first_sf, settings):
    """After SF: a correction of one half-hour and a new meter's whole day, both created 10 days after the day."""
    lake = open_lake(settings)
    version = after(AUTUMN, 24 * 10)
    assert runs.cutoff_version(AUTUMN, "SF") < version < runs.cutoff_version(AUTUMN, "R1")
    return arrive_late(lake, AUTUMN, _lake_id(settings, NEW_METER), version)


def test_a_run_is_reproduced_byte_for_byte_after_later_data_arrives(late, first_sf, settings, spark):
    again = settle.run(settings, AUTUMN, "SF", spark=spark)
    # the inputs changed (new files), so SF was recomputed, and came out the same, byte for byte
    assert again["status"] == "settled" and again["same_as_previous"] is True
    assert again["digest"] == first_sf["digest"]


def test_the_next_run_sees_the_late_data(late, first_sf, settings, spark):
    r1 = settle.run(settings, AUTUMN, "R1", spark=spark)
    assert r1["totals"]["consumption_kwh"] == pytest.approx(first_sf["totals"]["consumption_kwh"] + 1.0 + 50 * 0.1)
    assert r1["totals"]["default_registry_meter_periods"] == 50  # the new meter is not registered


def test_the_run_diff_lists_the_correction_and_the_late_reads(late, settings, spark):
    out = settle_diff.run(settings, AUTUMN, "SF", "R1", limit=1000, spark=spark)
    assert out["changes"] == 51
    assert {k: v for k, v in out["reasons"].items() if v} == {"correction": 1, "late_read": 50}
    fix = [r for r in out["rows"] if r["reason"] == "correction"]
    assert [(r["meter_point"], r["settlement_period"], r["delta_kwh"]) for r in fix] == [
        (late["meter_point"], 20, pytest.approx(1.0))]
    assert {r["meter_point"] for r in out["rows"] if r["reason"] == "late_read"} == {_lake_id(settings, NEW_METER)}


def test_quality_measures_completeness_and_estimates(cleaned, settings, spark, portfolio):
    _, manifest = portfolio
    out = quality.run(settings, [date(2024, 10, 23)], spark=spark)
    assert out["status"] == "measured"
    gap = _defect(manifest, "missing_reads")
    lake = open_lake(settings)
    rows = pq.ParquetDataset(outputs.view_files(lake, ["quality"])["quality"], partitioning=None).read().to_pylist()
    row = next(r for r in rows if r["meter_point"] == _lake_id(settings, gap["meter_point"]))
    assert (row["expected_periods"], row["received_periods"], row["estimated_periods"], row["missing_periods"]) == (
        48, 44, 4, 0)
    assert row["estimated_share"] == pytest.approx(4 / 48)
    assert row["first_arrival_h"] > 0  # files are created after the day ends
    assert quality.run(settings, [date(2024, 10, 23)], spark=spark)["status"] == "unchanged"


def test_outputs_are_queryable_as_views(late, settings, spark):
    again = settle_diff.run(settings, AUTUMN, "SF", "R1", spark=spark)
    # the inputs have not changed since the last comparison: listed from its output, the same changes
    assert (again["status"], again["changes"], {k: v for k, v in again["reasons"].items() if v}) == (
        "unchanged", 51, {"correction": 1, "late_read": 50})
    con = duckdb.connect()
    made = outputs.register_duckdb(con, open_lake(settings))
    assert {"clean_reads", "settlement", "settlement_diff", "registry"} <= set(made)
    runs_settled = con.execute("SELECT run, count(DISTINCT settlement_period) FROM settlement "
                               "WHERE settlement_date = DATE '2024-10-27' GROUP BY run ORDER BY run").fetchall()
    assert runs_settled == [("R1", 50), ("SF", 50)]
    # and through `meterlake lake sql`
    from streaming.mirror import query

    answer = query.sql(open_lake(settings), "SELECT reason, count(*) FROM settlement_diff GROUP BY 1 ORDER BY 1")
    assert answer["rows"] == [["correction", 1], ["late_read", 50]]


def test_the_cli_settles_in_its_own_spark_application(late, settings):
    env = {**os.environ, "METERLAKE_PATHS__LAKE": settings.paths.lake,
           "METERLAKE_PATHS__STATE_DIR": str(settings.paths.state_dir), "METERLAKE_SPARK__MASTER": "local[2]",
           "METERLAKE_SPARK__SHUFFLE_PARTITIONS": "2"}
    llf = Path(__file__).parent / "settle" / "data" / "llflond_tiny.ptf"
    command = [str(Path(sys.executable).with_name("meterlake")), "job", "settle", "--date", "2024-10-27", "--run", "R2",
               "--llf", str(llf), "--json"]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    answer = json.loads(out.stdout)
    assert (answer["status"], answer["run"], answer["totals"]["periods"]) == ("settled", "R2", 50)
    # R2 of 27 October 2024: sources created by the end of 27 December (GMT)
    assert (answer["cutoff_utc"], answer["cutoff_version"]) == ("2024-12-28T00:00:00Z", 1735343999999999)
    # run again: nothing to do, and every time in the answer is UTC with a Z (README: --json)
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    unchanged = json.loads(again.stdout)
    assert (unchanged["status"], unchanged["digest"], unchanged["cutoff_utc"]) == (
        "unchanged", answer["digest"], "2024-12-28T00:00:00Z")
    assert re.fullmatch(r"2024-10-27 R2: inputs unchanged since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z; "
                        r"nothing to do", unchanged["message"]), unchanged["message"]


def test_every_run_is_recorded_with_its_cpu_bytes_read_and_cost(late, settings, spark):
    # GIVEN prices of 2.5 per core-hour and 0.01 per GB read
    priced = settings.model_copy(update={"costs": settings.costs.model_copy(update={
        "core_hour_price": 2.5, "gb_read_price": 0.01, "unit": "test-units"})})
    # WHEN R3 is settled, then settled again with nothing changed
    answer = settle.run(priced, AUTUMN, "R3", spark=spark)
    settle.run(priced, AUTUMN, "R3", spark=spark)
    env = {"METERLAKE_PATHS__LAKE": settings.paths.lake, "METERLAKE_PATHS__STATE_DIR": str(settings.paths.state_dir)}
    result = CliRunner().invoke(cli, ["runs", "--job", "settle", "--json"], obj=None, env=env)
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)["runs"]
    # THEN `meterlake runs` lists both, newest first, with the job's arguments and outcome
    r3 = [r for r in listed if r["arguments"].get("run_name") == "R3"]
    assert [(r["status"], r["outcome"]) for r in r3] == [("succeeded", "unchanged"), ("succeeded", "settled")]
    rerun, run = r3
    assert run["arguments"]["day"] == "2024-10-27" and run["job"] == "settle"
    # the settling run read the day's live files through Spark (a file scanned twice counts twice), and wrote
    # the rows it answered
    assert run["files_read"] >= len(open_lake(settings).live_files(AUTUMN)) and run["inputs_digest"]
    assert run["bytes_read"] > 0
    assert run["rows_in"] > 0 and run["rows_out"] == answer["rows"]
    metrics = run["spark_task_metrics"]
    assert metrics["stages"] > 0 and metrics["tasks"] > 0 and run["spark_executor_cpu_s"] > 0
    assert run["cpu_s"] > 0 and run["wall_s"] > 0 and run["peak_memory_bytes"] > 0
    # and the cost is the CPU time and the bytes read at the configured prices
    assert (run["core_hour_price"], run["gb_read_price"], run["cost_unit"]) == (2.5, 0.01, "test-units")
    assert run["cost"] == pytest.approx(run["cpu_s"] / 3600 * 2.5 + run["bytes_read"] / 1e9 * 0.01, rel=1e-3)
    # the unchanged rerun read no data: no Spark, no bytes, a smaller cost
    assert (rerun["bytes_read"], rerun["spark_task_metrics"], rerun["inputs_digest"]) == (0, None, None)
    assert rerun["cost"] < run["cost"]
    # the CLI's run in its own Spark application (above) is recorded too, its driver JVM's CPU time counted
    r2 = [r for r in listed if r["arguments"].get("run_name") == "R2" and r["outcome"] == "settled"]
    assert r2 and r2[0]["spark_driver_cpu_s"] > 0 and r2[0]["cost_unit"] == "core-hours"
