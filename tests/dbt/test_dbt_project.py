"""The dbt project on a generated lake: `meterlake models build` on DuckDB (every test of the project, the
warehouse published) and on the Spark session, the two targets' marts compared, and an incremental build that
rebuilds only the settlement date whose lake files changed.

Grain of the comparison: per mart, the row count and the sum of every numeric column.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.dbt import portfolio_lake

pytestmark = pytest.mark.slow

MARTS = ["fct_daily_consumption", "fct_monthly_consumption", "fct_load_profile", "fct_economy7_daily",
         "fct_meter_behaviour_monthly", "fct_meter_profiles_monthly", "agg_behaviour_segments",
         "fct_settlement_periods", "fct_settlement_runs", "fct_completeness_daily", "fct_arrival_service_levels",
         "dim_meters", "fct_bills", "fct_bills_by_tariff_kind"]
TOUCHED = date(2025, 3, 29)


def cli_build(settings, *args, timeout=900) -> dict:
    env = {**os.environ, "METERLAKE_PATHS__LAKE": settings.paths.lake,
           "METERLAKE_PATHS__WAREHOUSE": settings.paths.warehouse,
           "METERLAKE_PATHS__STATE_DIR": str(settings.paths.state_dir),
           "METERLAKE_SPARK__MASTER": "local[2]", "METERLAKE_SPARK__SHUFFLE_PARTITIONS": "2",
           "METERLAKE_SPARK__DRIVER_MEMORY": "768m"}
    command = [str(Path(sys.executable).with_name("meterlake")), "models", "build", *args, "--json"]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def duckdb_build(dbt_warehouse):
    return dbt_warehouse.answer


@pytest.fixture(scope="module")
def spark_build(dbt_lake, duckdb_build):
    # the generic tests ran on DuckDB over the same lake; Spark runs the models, unit and singular tests
    return cli_build(dbt_lake.settings, "--target", "spark", "--exclude", "test_type:generic")


def _warehouse(settings):
    return duckdb.connect(str(settings.warehouse_path), read_only=True)


def test_the_duckdb_build_passes_every_test_and_publishes_the_warehouse(duckdb_build, dbt_lake):
    statuses = {n["status"] for n in duckdb_build["nodes"]}
    assert duckdb_build["success"] and statuses <= {"success", "pass", "no-op"}
    kinds = {n["resource_type"] for n in duckdb_build["nodes"]}
    assert {"model", "seed", "test", "unit_test"} <= kinds
    assert duckdb_build["published"] == str(dbt_lake.settings.warehouse_path)
    con = _warehouse(dbt_lake.settings)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert set(MARTS) <= tables
    # the clock-change days have their periods: the lake holds both, every meter reads each half-hour
    periods = dict(con.execute("SELECT settlement_date, max(periods_read) FROM fct_daily_consumption "
                               "GROUP BY 1").fetchall())
    assert (periods[portfolio_lake.AUTUMN], periods[portfolio_lake.SPRING], periods[date(2024, 10, 26)]) == (
        50, 46, 48)


def test_daily_consumption_is_the_lakes_latest_versions(duckdb_build, dbt_lake):
    # the daily mart of the autumn day against the lake's own `reads` view (the live-version rule)
    from meterlake.lake.files import open_lake
    from streaming.mirror import query

    lake_con = query.connect(open_lake(dbt_lake.settings))
    expected = lake_con.execute("""SELECT meter_point, round(sum(value), 6) FROM reads
        WHERE read_kind = 'interval' AND unit = 'kWh' AND quality <> 'withdrawn' AND settlement_date = ?
        GROUP BY 1 ORDER BY 1""", [portfolio_lake.AUTUMN]).fetchall()
    got = _warehouse(dbt_lake.settings).execute("""SELECT meter_point, round(consumption_kwh, 6)
        FROM fct_daily_consumption WHERE settlement_date = ? ORDER BY 1""", [portfolio_lake.AUTUMN]).fetchall()
    assert got == expected and len(got) > 5


def test_the_settlement_marts_show_the_late_correction_between_runs(duckdb_build, dbt_lake):
    runs = _warehouse(dbt_lake.settings).execute("""SELECT run, previous_run, round(change_kwh, 6),
        changed_meter_periods, correction_changes FROM fct_settlement_runs ORDER BY run_order""").fetchall()
    # the lake's late correction added 1 kWh to one half-hour after SF's cut-off (tests/dbt/portfolio_lake.py)
    assert runs == [("SF", None, None, None, None), ("R1", "SF", 1.0, 1, 1)]


def test_the_bills_marts_are_the_lakes_bills_by_tariff_kind(duckdb_build, dbt_lake):
    # the autumn day's bill run, read from the lake's `bills` view (the current version), against the marts
    from meterlake.lake.files import open_lake
    from streaming.mirror import query

    lake_con = query.connect(open_lake(dbt_lake.settings))
    expected = lake_con.execute("""SELECT account, meter_point, kind, bill_from, bill_to, total_p FROM bills
        ORDER BY account""").fetchall()
    con = _warehouse(dbt_lake.settings)
    got = con.execute("""SELECT account, meter_point, tariff_kind, bill_from, bill_to, total_p FROM fct_bills
        ORDER BY account""").fetchall()
    assert got == expected
    assert {r[2] for r in got} == {"flat", "tou", "dynamic"}
    assert {(r[3], r[4]) for r in got} == {(portfolio_lake.AUTUMN, date(2024, 10, 28))}
    by_kind = con.execute("SELECT tariff_kind, bills, total_p FROM fct_bills_by_tariff_kind ORDER BY 1")
    assert by_kind.fetchall() == lake_con.execute("SELECT kind, count(*), sum(total_p) FROM bills GROUP BY 1 "
                                                  "ORDER BY 1").fetchall()


def _numeric_sums(con, table: str) -> dict:
    cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()
            if r[1].split("(")[0] in ("INTEGER", "BIGINT", "DOUBLE", "HUGEINT", "DECIMAL", "FLOAT", "SMALLINT",
                                      "TINYINT")]
    sums = ", ".join(f"sum({c})" for c in cols)
    row = con.execute(f"SELECT count(*){', ' + sums if cols else ''} FROM {table}").fetchone()
    return {"rows": row[0], **{c: (float(v) if v is not None else None) for c, v in zip(cols, row[1:], strict=True)}}


def test_spark_builds_the_same_marts_as_duckdb(spark_build, dbt_lake):
    assert spark_build["success"], spark_build["error"]
    assert {n["resource_type"] for n in spark_build["nodes"]} >= {"model", "unit_test", "test"}
    tables = Path(spark_build["warehouse"]) / "warehouse" / "meterlake.db"
    duck = _warehouse(dbt_lake.settings)
    spark_con = duckdb.connect()
    for mart in MARTS:
        spark_con.execute(f"CREATE VIEW {mart} AS SELECT * FROM read_parquet('{tables / mart}/**/*.parquet', "
                          "hive_partitioning = true, union_by_name = true)")
        expected, got = _numeric_sums(duck, mart), _numeric_sums(spark_con, mart)
        assert got.keys() == expected.keys(), mart
        assert got == {k: pytest.approx(v, rel=1e-9, abs=1e-9) for k, v in expected.items()}, mart
        assert expected["rows"] > 0, mart


def test_a_rerun_jobs_output_is_counted_once_on_both_targets(spark_build, dbt_lake):
    # GIVEN the autumn day's quality output written twice (the superseded version stays for the grace period)
    from meterlake.lake.files import open_lake
    from meterlake.lake.outputs import view_files

    day_dir = Path(dbt_lake.lake) / "quality" / f"settlement_date={portfolio_lake.AUTUMN}"
    assert len(list(day_dir.glob("_v-*"))) == 2
    current = [f for f in view_files(open_lake(dbt_lake.settings), ["quality"])["quality"]
               if f.startswith(str(day_dir))]
    meters = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet({current!r})").fetchone()[0]
    assert meters > 0
    # THEN both targets count the day's meters once
    table = Path(spark_build["warehouse"]) / "warehouse" / "meterlake.db" / "fct_completeness_daily"
    spark_rows = duckdb.connect().execute(f"""SELECT expected_meters FROM read_parquet('{table}/**/*.parquet')
        WHERE settlement_date = ?""", [portfolio_lake.AUTUMN]).fetchall()
    duck_rows = _warehouse(dbt_lake.settings).execute("SELECT expected_meters FROM fct_completeness_daily "
                                                      "WHERE settlement_date = ?", [portfolio_lake.AUTUMN]).fetchall()
    assert spark_rows == duck_rows == [(meters,)]


INCREMENTAL = ("fct_daily_consumption", "fct_load_profile")


def _spark_table(build: dict, mart: str) -> duckdb.DuckDBPyRelation:
    table = Path(build["warehouse"]) / "warehouse" / "meterlake.db" / mart
    return duckdb.connect().sql(f"SELECT * FROM read_parquet('{table}/**/*.parquet', hive_partitioning = true)")


def _invocations(rel) -> dict:
    return dict(rel.aggregate("cast(settlement_date AS DATE), any_value(dbt_invocation_id)",
                              "cast(settlement_date AS DATE)").fetchall())


@pytest.fixture(scope="module")
def touched(duckdb_build, spark_build, dbt_lake):
    """After both targets built: a late correction of one half-hour of TOUCHED lands in the lake. The marts'
    build of each date before it, per target and incremental mart, and TOUCHED's kWh before."""
    settings = dbt_lake.settings
    before = {("duckdb", m): _invocations(_warehouse(settings).sql(f"SELECT * FROM {m}")) for m in INCREMENTAL}
    before |= {("spark", m): _invocations(_spark_table(spark_build, m)) for m in INCREMENTAL}
    kwh = _warehouse(settings).execute("SELECT sum(consumption_kwh) FROM fct_daily_consumption "
                                       "WHERE settlement_date = ?", [TOUCHED]).fetchone()[0]
    portfolio_lake.add_late_correction(settings, TOUCHED, kwh=2.0, offset=90_001)
    return before, kwh


def _daily_kwh(rel) -> float:
    day = rel.filter(f"cast(settlement_date AS DATE) = DATE '{TOUCHED}'")
    return day.aggregate("sum(consumption_kwh)").fetchall()[0][0]


def test_a_second_build_rebuilds_only_the_touched_settlement_date(touched, dbt_lake):
    # GIVEN the warehouse built, then a late correction of one half-hour of one date lands in the lake
    settings = dbt_lake.settings
    before, kwh_before = touched
    # WHEN the incremental marts are built again
    again = cli_build(settings, "--select", " ".join(INCREMENTAL))
    # THEN only that date's rows were rebuilt, and they carry the correction
    assert again["success"]
    con = _warehouse(settings)
    for mart in INCREMENTAL:
        after = _invocations(con.sql(f"SELECT * FROM {mart}"))
        assert {d for d, inv in after.items() if inv != before["duckdb", mart][d]} == {TOUCHED}, mart
    assert _daily_kwh(con.sql("SELECT * FROM fct_daily_consumption")) == pytest.approx(kwh_before + 2.0)


def test_a_second_spark_build_overwrites_only_the_touched_dates_partitions(touched, dbt_lake):
    # GIVEN the Spark marts built, then the late correction of TOUCHED
    before, kwh_before = touched
    # WHEN the incremental marts are built again on Spark (their models only: the tests ran on the first build)
    again = cli_build(dbt_lake.settings, "--target", "spark", "--select", " ".join(INCREMENTAL),
                      "--exclude", "test_type:generic test_type:singular test_type:unit")
    # THEN only TOUCHED's partition was overwritten (insert_overwrite), carrying the correction; the others kept
    assert again["success"]
    for mart in INCREMENTAL:
        after = _invocations(_spark_table(again, mart))
        assert after.keys() == before["spark", mart].keys(), mart
        assert {d for d, inv in after.items() if inv != before["spark", mart][d]} == {TOUCHED}, mart
    assert _daily_kwh(_spark_table(again, "fct_daily_consumption")) == pytest.approx(kwh_before + 2.0)


def test_docs_generate_describes_every_mart_and_column_and_the_dashboards(duckdb_build, dbt_lake):
    from meterlake import warehouse

    out = warehouse.run_dbt(["docs", "generate"], dbt_lake.settings)
    assert out["success"], out["error"]
    target = Path(warehouse.dbt_environment(dbt_lake.settings, "duckdb")["METERLAKE_DBT_TARGET_PATH"])
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    marts = {n["name"]: n for n in manifest["nodes"].values()
             if n["resource_type"] == "model" and n["fqn"][1] == "marts"}
    assert set(MARTS) == set(marts)
    for name, node in marts.items():
        assert node["description"].strip(), name
        built = {c.lower() for c in catalog["nodes"][node["unique_id"]]["columns"]}
        described = {c for c, meta in node["columns"].items() if meta["description"].strip()}
        assert built == described, (name, built ^ described)
    assert {e["label"] for e in manifest["exposures"].values()} >= {"Consumption behaviour", "Settlement",
                                                                    "Data quality"}


def test_source_freshness_reads_the_lakes_own_columns(duckdb_build, dbt_lake):
    from meterlake import warehouse
    from meterlake.lake.files import open_lake
    from streaming.mirror import query

    warehouse.run_dbt(["source", "freshness", "--select", "source:lake.reads"], dbt_lake.settings)
    target = Path(warehouse.dbt_environment(dbt_lake.settings, "duckdb")["METERLAKE_DBT_TARGET_PATH"])
    result = json.loads((target / "sources.json").read_text())["results"]
    assert [r["unique_id"] for r in result] == ["source.meterlake.lake.reads"]
    newest = query.connect(open_lake(dbt_lake.settings)).execute(
        "SELECT strftime(make_timestamp(max(source_version)), '%Y-%m-%dT%H:%M:%S') FROM reads_all").fetchone()[0]
    # the newest source was created in 2025, far beyond error_after (7 days): stale
    assert (result[0]["max_loaded_at"][:19], result[0]["status"]) == (newest, "error")
