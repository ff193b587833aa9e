"""`meterlake models build --target spark` on a lake on HDFS: the Spark session reads the lake's hdfs:// files.

Two meters on the autumn clock change (50 periods): A reads 0.5 kWh every half-hour and has period 20 corrected
to 0.75 kWh by a later version; B reads 0.25 kWh without periods 10 and 11.
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

from meterlake import pseudonym
from meterlake.lake.files import open_lake
from tests.jobs.helpers import hdfs_lake_settings, write_two_meters_with_a_correction

pytestmark = [pytest.mark.stack, pytest.mark.slow]

DAY = date(2024, 10, 27)
A, B = "1200000000014", "1200000000025"


def test_the_daily_mart_builds_on_spark_from_a_lake_on_hdfs(hdfs_stack, tmp_path):
    settings = hdfs_lake_settings(hdfs_stack, "dbt-tests")
    url = settings.paths.lake
    a, b = write_two_meters_with_a_correction(open_lake(settings), pseudonym.for_settings(settings), DAY, A, B)

    env = {**os.environ, "METERLAKE_PATHS__LAKE": url, "METERLAKE_PATHS__STATE_DIR": str(settings.paths.state_dir),
           "METERLAKE_STACK__PORT_OFFSET": str(settings.stack.port_offset),
           "METERLAKE_PATHS__WAREHOUSE": str(tmp_path / "wh" / "meterlake.duckdb"),
           "METERLAKE_SPARK__MASTER": "local[2]", "METERLAKE_SPARK__SHUFFLE_PARTITIONS": "2",
           "METERLAKE_SPARK__DRIVER_MEMORY": "768m"}
    command = [str(Path(sys.executable).with_name("meterlake")), "models", "build", "--target", "spark",
               "--select", "+fct_daily_consumption", "--exclude", "test_type:generic", "--json"]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    answer = json.loads(out.stdout)
    assert answer["success"] and answer["lake"] == url

    table = Path(answer["warehouse"]) / "warehouse" / "meterlake.db" / "fct_daily_consumption"
    rows = duckdb.connect().execute(f"""SELECT meter_point, periods_in_day, periods_read, round(consumption_kwh, 6)
        FROM read_parquet('{table}/**/*.parquet', hive_partitioning = true) ORDER BY periods_read DESC""").fetchall()
    assert rows == [(a, 50, 50, 25.25), (b, 50, 48, 12.0)]
