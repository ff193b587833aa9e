"""The warehouse's setting, its atomic publication, and the dbt seeds that copy the platform's rules."""
from __future__ import annotations

import csv
import os
from datetime import date

import duckdb
import pytest

from meterlake import calendar as cal
from meterlake import config, warehouse


def test_the_warehouse_is_resolved_from_the_config_files_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("METERLAKE_PATHS__WAREHOUSE", raising=False)
    cfg = tmp_path / "conf" / "meterlake.toml"
    cfg.parent.mkdir()
    cfg.write_text('[paths]\nwarehouse = "wh/meterlake.duckdb"\n')
    assert config.load(cfg).warehouse_path == tmp_path / "conf" / "wh" / "meterlake.duckdb"
    monkeypatch.chdir(tmp_path)
    assert config.load(None).warehouse_path == tmp_path / "warehouse" / "meterlake.duckdb"


def test_the_example_config_names_the_default_warehouse():
    example = (warehouse.PROJECT_DIR.parent / "meterlake.example.toml").read_text()
    assert 'warehouse = "warehouse/meterlake.duckdb"\n' in example


def _db(path, value):
    con = duckdb.connect(str(path))
    con.execute("CREATE OR REPLACE TABLE t AS SELECT ? AS v", [value])
    con.close()


def test_publishing_replaces_the_warehouse_while_a_reader_keeps_the_old_one(tmp_path):
    # GIVEN a published warehouse that a reader has open
    target = tmp_path / "wh" / "meterlake.duckdb"
    first, second = tmp_path / "first.duckdb", tmp_path / "second.duckdb"
    _db(first, 1)
    _db(second, 2)
    warehouse.publish(first, target)
    reader = duckdb.connect(str(target), read_only=True)
    # WHEN a new build is published
    warehouse.publish(second, target)
    # THEN the reader still reads the old file whole, a new reader the new one, and no temporary file is left
    assert reader.execute("SELECT v FROM t").fetchone() == (1,)
    reader.close()
    assert duckdb.connect(str(target), read_only=True).execute("SELECT v FROM t").fetchone() == (2,)
    assert os.listdir(target.parent) == ["meterlake.duckdb"]


def test_a_failed_publication_leaves_the_old_warehouse(tmp_path):
    target = tmp_path / "meterlake.duckdb"
    _db(tmp_path / "first.duckdb", 1)
    warehouse.publish(tmp_path / "first.duckdb", target)
    with pytest.raises(FileNotFoundError):
        warehouse.publish(tmp_path / "missing.duckdb", target)
    assert duckdb.connect(str(target), read_only=True).execute("SELECT v FROM t").fetchone() == (1,)
    assert sorted(os.listdir(tmp_path)) == ["first.duckdb", "meterlake.duckdb"]


def _seed(name):
    with open(warehouse.PROJECT_DIR / "seeds" / f"{name}.csv", newline="") as f:
        return list(csv.reader(f))


def test_the_clock_change_seed_is_the_calendars():
    rows = _seed("clock_change_days")
    assert rows == [[str(v) for v in row] for row in warehouse.seed_rows()["clock_change_days"]]
    days = {r[0]: int(r[1]) for r in rows[1:]}
    # the two clock changes the dbt tests' lake spans, and the module's own answer for every year seeded
    assert (days["2024-10-27"], days["2025-03-30"]) == (50, 46)
    assert "2024-10-26" not in days
    assert len(days) == 2 * len(warehouse.SEED_YEARS)
    assert all(cal.periods_in_day(date.fromisoformat(d)) == n for d, n in days.items())


def test_the_settlement_runs_seed_is_in_run_order():
    assert _seed("settlement_runs") == [["run", "run_order"], ["SF", "1"], ["R1", "2"], ["R2", "3"], ["R3", "4"],
                                        ["RF", "5"], ["DF", "6"]]


def test_the_duckdb_builds_memory_comes_from_the_settings(tmp_path):
    import yaml

    from meterlake import config, warehouse

    # GIVEN settings that give the dbt build 3GB (a large day needs more than the 2GB default)
    path = tmp_path / "meterlake.toml"
    path.write_text(f'[paths]\nlake = "{tmp_path / "lake"}"\n\n[models]\nduckdb_memory = "3GB"\n')
    settings = config.load(path)
    # WHEN dbt's environment is made from them
    env = warehouse.dbt_environment(settings, "duckdb")
    # THEN the profile's DuckDB memory_limit is read from the variable that carries the setting
    profile = yaml.safe_load((warehouse.PROJECT_DIR / "profiles.yml").read_text())
    limit = profile["meterlake"]["outputs"]["duckdb"]["settings"]["memory_limit"]
    assert "env_var('METERLAKE_DBT_DUCKDB_MEMORY'" in limit
    assert env["METERLAKE_DBT_DUCKDB_MEMORY"] == "3GB"
    assert config.Settings().models.duckdb_memory == "2GB"
