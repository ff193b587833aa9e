"""The schema evolution rule (docs/lake.md) as every reader applies it: a column a reader does not know is not an
error; files of a newer version keep their added columns wherever rows are passed on whole."""
from __future__ import annotations

import fsspec.implementations.local as fsspec_local
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from jobs.registry import job as registry
from meterlake.lake.files import Lake
from streaming.mirror.compact import compact_date
from streaming.mirror.query import sql
from tests.streaming.mirror.test_lake_hdfs_safety import DAY, HORIZON, part


def _with_tariff(table: pa.Table) -> pa.Table:
    return table.append_column(pa.field("tariff", pa.string()), pa.array(["T1"] * table.num_rows))


@pytest.fixture(params=["local", "remote"])
def lake(request, tmp_path):
    """A lake on the local disk, and the same through a pyarrow PyFileSystem: the code path of HDFS and S3."""
    if request.param == "local":
        return Lake(pafs.LocalFileSystem(), str(tmp_path))
    return Lake(pafs.PyFileSystem(pafs.FSSpecHandler(fsspec_local.LocalFileSystem())), str(tmp_path))


def test_the_lakes_views_and_compaction_keep_a_newer_mirrors_added_column(lake):
    # GIVEN a part of this version, then one of a newer mirror with an added column
    lake.write_parquet(*part(range(0, 2), 0))
    name, newer = part(range(2, 4), 2)
    lake.write_parquet(name, _with_tariff(newer))
    query = "SELECT count(*), count(tariff) FROM reads_all"
    # THEN the views read both files with the added column (null in the older file)
    assert sql(lake, query)["rows"] == [[4 * 48, 2 * 48]]
    # AND compaction, which passes rows on whole, keeps it
    compact_date(lake, DAY, target_bytes=1 << 20, grace_s=600, horizon=HORIZON)
    assert sql(lake, query)["rows"] == [[4 * 48, 2 * 48]]


def test_a_registry_csv_with_a_column_this_version_does_not_know_loads():
    text = ("meter_point,gsp_group,supplier,effective_from,tariff\n"
            "MAC000001,_A,SUPA,2024-01-01,economy\n")
    table, problems = registry.parse(text, "r.csv")
    assert problems == []
    assert table.column("gsp_group").to_pylist() == ["_A"]
