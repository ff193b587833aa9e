"""Compaction: the latest version of each read wins, files merge, the swap is one manifest write."""
from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from meterlake import schema
from streaming.mirror import layout
from streaming.mirror.compact import collapse, compact, compact_date
from streaming.mirror.convert import Message, to_table
from streaming.mirror.lake import Lake
from streaming.mirror.query import sql
from tests.streaming.mirror.mirrorhelp import interval_reads, utc

DAY = date(2024, 1, 10)


def _rows(*rows: dict) -> pa.Table:
    base = {"meter_point": "MAC000001", "meter_serial": None, "fuel": "electricity", "register_id": "S",
            "read_kind": "interval", "interval_start_utc": utc(2024, 1, 10, 0, 0), "settlement_date": DAY,
            "settlement_period": 1, "value": 0.0, "unit": "kWh", "quality": "actual", "source_file": None,
            "source_line": None, "device_id": None, "source_version": 1, "file_id": None, "batch_id": None,
            "kafka_topic": "meter-reads", "kafka_partition": 0, "kafka_offset": 0}
    from streaming.mirror.convert import LAKE_SCHEMA

    return pa.Table.from_pylist([{**base, **r} for r in rows], schema=LAKE_SCHEMA)


def test_the_highest_source_version_of_a_read_wins_and_identical_copies_collapse():
    table = _rows(
        {"value": 1.0, "source_version": 1, "kafka_offset": 0},
        {"value": 1.5, "source_version": 2, "kafka_offset": 5},   # a correction supersedes version 1
        {"value": 1.5, "source_version": 2, "kafka_offset": 9},   # the correction published twice
        {"value": 7.0, "register_id": "DY", "kafka_offset": 1},  # another register: another read
        {"value": 3.0, "interval_start_utc": utc(2024, 1, 10, 0, 30), "settlement_period": 2, "kafka_offset": 2},
        {"value": 3.0, "interval_start_utc": utc(2024, 1, 10, 0, 30), "settlement_period": 2, "kafka_offset": 3},
    )
    out = collapse(table)
    assert out.select(["register_id", "settlement_period", "value", "source_version", "kafka_offset"]).to_pylist() \
        == [{"register_id": "DY", "settlement_period": 1, "value": 7.0, "source_version": 1, "kafka_offset": 1},
            {"register_id": "S", "settlement_period": 1, "value": 1.5, "source_version": 2, "kafka_offset": 5},
            {"register_id": "S", "settlement_period": 2, "value": 3.0, "source_version": 1, "kafka_offset": 2}]


def test_reads_differing_only_in_a_null_versus_a_value_are_different_reads():
    table = _rows({"meter_serial": None, "value": 1.0}, {"meter_serial": "E1", "value": 2.0},
                  {"meter_serial": None, "value": 1.0, "kafka_offset": 4})
    assert sorted(collapse(table).column("value").to_pylist()) == [1.0, 2.0]


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(pafs.LocalFileSystem(), str(tmp_path / "lake"))


def _part(lake: Lake, partition: int, first: int, last: int, starts, values, version=1) -> str:
    reads = interval_reads("MAC000001", starts, values, version=version)
    table = to_table([Message("meter-reads", partition, first, schema.to_ipc_bytes(reads))]).table
    name = layout.part_name("meter-reads", partition, first, last)
    lake.write_parquet(f"{layout.date_dir(DAY)}/{name}", table)
    return name


def _values(lake: Lake, view: str = "reads") -> list[tuple]:
    return [tuple(r) for r in sql(lake, f"SELECT settlement_period, value FROM {view} ORDER BY 1, 2")["rows"]]


def test_compaction_merges_the_live_files_and_swaps_them_in(lake):
    t = [utc(2024, 1, 10, 0, 0), utc(2024, 1, 10, 0, 30), utc(2024, 1, 10, 1, 0)]
    _part(lake, 0, 0, 4, t[:2], [1.0, 2.0])
    _part(lake, 0, 5, 9, t[1:], [2.5, 3.0], version=2)   # corrects period 2
    _part(lake, 1, 0, 0, t[:1], [1.0])                    # a copy of period 1 (another partition, same version)
    assert _values(lake, "reads_all") == [(1, 1.0), (1, 1.0), (2, 2.0), (2, 2.5), (3, 3.0)]
    result = compact_date(lake, DAY, target_bytes=1 << 20, grace_s=60, now=1000.0)
    assert (result.inputs, result.outputs, result.rows_in, result.rows_out) == (3, 1, 5, 3)
    # THEN the one live file holds each read once, latest version
    assert [f.name for f in lake.live_files(DAY)] == ["compacted-1-0.parquet"]
    assert _values(lake, "reads_all") == [(1, 1.0), (2, 2.5), (3, 3.0)]
    # AND the inputs stay on disk for readers holding the old list, until the grace period is over
    assert len(lake.date_listing(DAY)) == 4
    later = compact_date(lake, DAY, target_bytes=1 << 20, grace_s=60, now=1061.0)
    assert not later.compacted and len(later.deleted) == 3
    assert [i.base_name for i in lake.date_listing(DAY)] == ["compacted-1-0.parquet"]


def test_a_part_written_after_compaction_is_live_and_a_rewrite_of_a_merged_one_is_not(lake):
    t = [utc(2024, 1, 10, 0, 0), utc(2024, 1, 10, 0, 30)]
    merged = _part(lake, 0, 0, 4, t[:1], [1.0])
    compact(lake, target_bytes=1 << 20, grace_s=0)
    assert not lake.exists(f"{layout.date_dir(DAY)}/{merged}")
    # WHEN the mirror rewrites the merged batch after a crash, and writes the next one
    _part(lake, 0, 0, 4, t[:1], [1.0])
    _part(lake, 0, 5, 5, t[1:], [2.0])
    # THEN only the new batch is live beside the compacted file
    assert [f.name for f in lake.live_files(DAY)] == ["compacted-1-0.parquet", "part-meter-reads-0-5-5.parquet"]
    assert lake.part_retired_or_present(DAY, layout.PartName("meter-reads", 0, 0, 4))
    assert _values(lake, "reads_all") == [(1, 1.0), (2, 2.0)]


def test_big_dates_are_split_to_about_the_target_size(lake):
    starts = [utc(2024, 1, 10, 0, 0)]
    for p in range(40):
        reads = interval_reads(f"MAC{p:06d}", starts * 1, [float(p)])
        table = to_table([Message("meter-reads", 0, p, schema.to_ipc_bytes(reads))]).table
        lake.write_parquet(f"{layout.date_dir(DAY)}/{layout.part_name('meter-reads', 0, p, p)}", table)
    part_size = lake.date_listing(DAY)[0].size
    result = compact_date(lake, DAY, target_bytes=10 * part_size, grace_s=60)
    assert 3 <= result.outputs <= 5 and result.rows_out == 40
    assert sql(lake, "SELECT count(*), sum(value) FROM reads")["rows"] == [[40, float(sum(range(40)))]]


def test_an_interrupted_compaction_leaves_the_old_files_live(lake, monkeypatch):
    _part(lake, 0, 0, 0, [utc(2024, 1, 10, 0, 0)], [1.0])

    def crash(manifest):
        raise KeyboardInterrupt

    monkeypatch.setattr(lake, "write_manifest", crash)
    with pytest.raises(KeyboardInterrupt):
        compact_date(lake, DAY, target_bytes=1 << 20, grace_s=60)
    # the compacted file was written but is not live: the manifest was never swapped
    assert "compacted-1-0.parquet" in [i.base_name for i in lake.date_listing(DAY)]
    assert [f.name for f in lake.live_files(DAY)] == ["part-meter-reads-0-0-0.parquet"]
