"""`meterlake lake sql`: a result larger than the row limit is a usage error, never cut silently; --limit raises
or lifts it."""
from __future__ import annotations

import json

import pyarrow.fs as pafs
from click.testing import CliRunner

from meterlake.cli import cli
from meterlake.lake.files import Lake
from tests.streaming.mirror.test_lake_hdfs_safety import part

QUERY = "SELECT meter_point, interval_start_utc FROM reads_all"


def run(lake_dir, *args: str):
    return CliRunner().invoke(cli, ["lake", "sql", QUERY, *args, "--json"], prog_name="meterlake",
                              env={"METERLAKE_PATHS__LAKE": str(lake_dir)})


def test_the_row_limit_refuses_a_larger_result_and_limit_overrides_it(tmp_path):
    lake = Lake(pafs.LocalFileSystem(), str(tmp_path / "lake"))
    lake.write_parquet(*part(range(250), 0))  # 250 meters x 48 periods = 12,000 reads
    refused = run(tmp_path / "lake")
    assert refused.exit_code == 2
    error = json.loads(refused.stdout)["error"]
    assert (error["type"], error["limit"]) == ("usage", 10_000)
    assert "more than 10000 rows" in error["message"] and "--limit" in error["message"]
    small = run(tmp_path / "lake", "--limit", "11999")
    assert small.exit_code == 2
    whole = run(tmp_path / "lake", "--limit", "12000")
    assert whole.exit_code == 0 and len(json.loads(whole.stdout)["rows"]) == 12_000
    assert json.loads(whole.stdout)["columns"] == ["meter_point", "interval_start_utc"]
    unlimited = run(tmp_path / "lake", "--limit", "0")
    assert unlimited.exit_code == 0 and len(json.loads(unlimited.stdout)["rows"]) == 12_000
