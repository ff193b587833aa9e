"""Job outputs are replaced by versions behind a commit pointer: a crash mid-replacement leaves the previous
output whole and current, and its leftovers are collected by the next write."""
from __future__ import annotations

import fsspec.implementations.local as fsspec_local
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from jobs import lakeio
from meterlake.lake.files import Lake
from meterlake.lake.outputs import current_files, view_files

SLOT = "quality/settlement_date=2026-01-01"


class CrashingAtRename(fsspec_local.LocalFileSystem):
    """A local filesystem whose process dies (an error, here) at the first rename or move."""

    def mv(self, *args, **kwargs):
        raise OSError("killed while renaming")


def _values(lake: Lake) -> list[int]:
    return sorted(pq.read_table(lake.path(lakeio.current(lake, SLOT))).column("v").to_pylist())


def test_a_crash_while_replacing_an_output_leaves_the_previous_one_current(spark, tmp_path):
    local = Lake(pafs.LocalFileSystem(), str(tmp_path))
    jl = lakeio.JobLake(local, f"file://{tmp_path}", grace_s=0)
    lakeio.write_spark_dir(spark.createDataFrame([(1,), (2,)], "v int"), jl, SLOT)
    assert _values(local) == [1, 2]
    # WHEN the next run dies while putting its output in place
    crashing = lakeio.JobLake(Lake(pafs.PyFileSystem(pafs.FSSpecHandler(CrashingAtRename())), str(tmp_path)),
                              jl.url, grace_s=0)
    with pytest.raises(OSError, match="killed"):
        lakeio.write_spark_dir(spark.createDataFrame([(3,)], "v int"), crashing, SLOT)
    # THEN the previous output is still there, whole, and is what readers get
    assert _values(local) == [1, 2]
    version = tmp_path / lakeio.current(local, SLOT)
    assert view_files(local, ["quality"])["quality"] == sorted(str(p) for p in version.glob("part-*.parquet"))
    # and the next write replaces it and removes what the crashed one left
    lakeio.write_spark_dir(spark.createDataFrame([(4,), (5,)], "v int"), jl, SLOT)
    assert _values(local) == [4, 5]
    left = sorted(p.name for p in (tmp_path / SLOT).iterdir())
    assert len(left) == 2 and left[0] == "_current" and left[1].startswith("_v-")
    assert [p.name for p in (tmp_path / "quality").iterdir()] == ["settlement_date=2026-01-01"]


def test_readers_take_the_files_of_the_highest_pointer_and_an_older_lakes_files_elsewhere():
    listing = ["a/_current/000000000001-x1.json", "a/_current/000000000002-y2.json", "a/_v-x1/part-0.parquet",
               "a/_v-y2/part-0.parquet", "a/_v-y2/_SUCCESS", "a/_v-z3/part-0.parquet", "a/part-old.parquet",
               "b/part-0.parquet", "b/.part-1.parquet.tmp", "c/file.parquet"]
    assert current_files(listing) == ["a/_v-y2/part-0.parquet", "b/part-0.parquet", "c/file.parquet"]


def test_a_single_file_output_is_versioned_and_its_digest_follows_the_current_version(tmp_path):
    import pyarrow as pa

    lake = Lake(pafs.LocalFileSystem(), str(tmp_path))
    first = lakeio.write_deterministic(lake, "settlement/settlement_date=2026-01-01/run=SF/settlement.parquet",
                                       pa.table({"v": [1]}), grace_s=0)
    second = lakeio.write_deterministic(lake, "settlement/settlement_date=2026-01-01/run=SF/settlement.parquet",
                                        pa.table({"v": [2]}), grace_s=0)
    assert first != second
    assert lakeio.file_digest(lake, "settlement/settlement_date=2026-01-01/run=SF/settlement.parquet") == second
