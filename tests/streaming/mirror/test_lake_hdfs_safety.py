"""The lake's commit protocol on the stack's real HDFS (WebHDFS): a reader never sees a date half-changed, two
writers never overwrite each other."""
from __future__ import annotations

import threading
import uuid
from datetime import date

import pyarrow as pa
import pytest

from infra.local import hdfs
from infra.local import stack as stack_mod
from meterlake import calendar as cal
from meterlake.lake import layout
from meterlake.lake.files import open_lake
from meterlake.lake.schema import LAKE_SCHEMA
from streaming.mirror.compact import Horizon, compact
from streaming.mirror.query import connect, sql

pytestmark = pytest.mark.stack

DAY = date(2016, 10, 29)  # 48 periods, long past its horizon: compaction keeps only the latest of each read
HORIZON = Horizon(after_df_days=30, reads_ahead_days=28)


@pytest.fixture
def hdfs_lake_settings(hdfs_stack):
    ctx = stack_mod.context(stack_mod.remembered(hdfs_stack))
    url = f"{hdfs.namenode_uri(ctx)}/safety-tests/{uuid.uuid4().hex[:8]}"
    settings = stack_mod.remembered(hdfs_stack)
    return settings.model_copy(update={"paths": settings.paths.model_copy(update={"lake": url})})


def part(meters: range, first: int, *, partition: int = 0) -> tuple[str, pa.Table]:
    """A mirror file of DAY: every period of ``meters``, at Kafka offsets from ``first``; its name and rows."""
    periods = list(cal.periods(DAY))
    rows = [{"meter_point": f"M{m:04d}", "fuel": "electricity", "register_id": "S", "read_kind": "interval",
             "interval_start_utc": start, "settlement_date": DAY, "settlement_period": p, "value": 0.5,
             "unit": "kWh", "quality": "actual", "source_version": 1, "kafka_topic": "meter-reads",
             "kafka_partition": partition, "kafka_offset": first + i}
            for i, m in enumerate(meters) for p, start in periods]
    name = layout.part_name("meter-reads", partition, first, first + len(meters) - 1)
    return f"{layout.date_dir(DAY)}/{name}", pa.Table.from_pylist(rows, schema=LAKE_SCHEMA)


def test_readers_see_the_right_count_while_compaction_runs_again_and_again_on_hdfs(hdfs_lake_settings):
    lake = open_lake(hdfs_lake_settings)
    # GIVEN a date whose parts hold 4 meters' reads twice (a replay): 4 x 48 distinct reads, compacted once
    lake.write_parquet(*part(range(4), 0))
    lake.write_parquet(*part(range(4), 4))
    compact(lake, target_bytes=1 << 20, grace_s=600, horizon=HORIZON)
    count = f"SELECT count(*) FROM reads_all WHERE settlement_date = DATE '{DAY}' AND meter_point < 'M0100'"
    assert sql(lake, count)["rows"] == [[4 * 48]]
    stop, seen, errors = threading.Event(), [], []

    def read_continuously():
        while not stop.is_set():
            try:
                con = connect(lake, days=[DAY])
                try:
                    seen.append(con.execute(count).fetchone()[0])
                finally:
                    con.close()
            except Exception as exc:  # noqa: BLE001 - a reader must never fail; reported below
                errors.append(repr(exc))

    readers = [threading.Thread(target=read_continuously) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        # WHEN another meter's reads land and compaction runs, again and again (each swap replaces the manifest)
        for k in range(6):
            lake.write_parquet(*part(range(100 + k, 101 + k), 8 + k))
            compact(lake, target_bytes=1 << 20, grace_s=600, horizon=HORIZON)
    finally:
        stop.set()
        for t in readers:
            t.join()
    # THEN no reader ever saw another count: without a manifest both replays' parts would be live
    assert errors == []
    assert len(seen) > 10
    assert set(seen) == {4 * 48}


@pytest.fixture(params=["local", pytest.param("hdfs", marks=pytest.mark.stack)])
def any_lake(request, tmp_path):
    if request.param == "local":
        import pyarrow.fs as pafs

        from meterlake.lake.files import Lake

        return Lake(pafs.LocalFileSystem(), str(tmp_path / "lake"))
    return open_lake(request.getfixturevalue("hdfs_lake_settings"))


def test_of_two_compactions_of_a_date_at_once_one_commits_and_nothing_is_lost_or_doubled(any_lake, monkeypatch):
    from meterlake.errors import MeterlakeError
    from streaming.mirror.compact import compact_date

    lake = any_lake
    lake.write_parquet(*part(range(0, 2), 0))
    lake.write_parquet(*part(range(2, 4), 2))
    commit = lake.write_manifest

    def other_compaction_first(manifest):
        # GIVEN a second compaction that starts after a third part landed and commits before this one
        monkeypatch.setattr(lake, "write_manifest", commit)
        lake.write_parquet(*part(range(4, 6), 4))
        compact_date(lake, DAY, target_bytes=1 << 20, grace_s=600, horizon=HORIZON)
        commit(manifest)

    monkeypatch.setattr(lake, "write_manifest", other_compaction_first)
    # WHEN the first one comes to commit: it finds its version taken and fails, having overwritten nothing
    with pytest.raises(MeterlakeError, match="another compaction changed the date"):
        compact_date(lake, DAY, target_bytes=1 << 20, grace_s=600, horizon=HORIZON)
    # THEN the date holds the six meters' reads once each
    assert sql(lake, "SELECT count(*), count(DISTINCT meter_point) FROM reads_all")["rows"] == [[6 * 48, 6]]
