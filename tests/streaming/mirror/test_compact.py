"""Compaction: duplicates collapse, superseded versions stay until no settlement run can need them, files merge,
the swap is one manifest write."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from meterlake import config, schema
from meterlake.lake import layout
from meterlake.lake.files import Lake
from meterlake.pseudonym import Pseudonymiser
from streaming.mirror.compact import Horizon, collapse, compact, compact_date, horizon_from, superseded_rows
from streaming.mirror.convert import Message, to_table
from streaming.mirror.query import sql
from tests.streaming.mirror.mirrorhelp import interval_reads, utc

PSEUDONYMS = Pseudonymiser(b"a test key of thirty-two bytes!!")

DAY = date(2024, 1, 10)
HORIZON = Horizon(after_df_days=30, reads_ahead_days=28)  # the default configuration's (horizon_from)
WITHIN = datetime(2026, 7, 7, 22, 59, tzinfo=UTC).timestamp()  # a minute before DAY's horizon ends
PAST = datetime(2026, 7, 7, 23, 0, tzinfo=UTC).timestamp()


def _rows(*rows: dict) -> pa.Table:
    base = {"meter_point": "MAC000001", "meter_serial": None, "fuel": "electricity", "register_id": "S",
            "read_kind": "interval", "interval_start_utc": utc(2024, 1, 10, 0, 0), "settlement_date": DAY,
            "settlement_period": 1, "value": 0.0, "unit": "kWh", "quality": "actual", "source_file": None,
            "source_line": None, "device_id": None, "source_version": 1, "file_id": None, "batch_id": None,
            "kafka_topic": "meter-reads", "kafka_partition": 0, "kafka_offset": 0}
    from meterlake.lake.schema import LAKE_SCHEMA

    return pa.Table.from_pylist([{**base, **r} for r in rows], schema=LAKE_SCHEMA)


def _unique(name: str) -> str:
    """A compacted file's name with its run's token (8 hex digits) as ``*``."""
    return re.sub(r"^(compacted-\d+-\d+)-[0-9a-f]{8}(\.parquet)$", r"\1-*\2", name)


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
    table = to_table([Message("meter-reads", partition, first, schema.to_ipc_bytes(reads))], PSEUDONYMS).table
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
    result = compact_date(lake, DAY, target_bytes=1 << 20, grace_s=60, horizon=HORIZON, now=1000.0)
    assert (result.inputs, result.outputs, result.rows_in, result.rows_out) == (3, 1, 5, 4)
    # THEN the one live file holds each read's versions once (now=1000 is 1970: every run may still need them)
    assert [_unique(f.name) for f in lake.live_files(DAY)] == ["compacted-1-0-*.parquet"]
    assert _values(lake, "reads_all") == [(1, 1.0), (2, 2.0), (2, 2.5), (3, 3.0)]
    assert _values(lake) == [(1, 1.0), (2, 2.5), (3, 3.0)]
    # AND the inputs stay on disk for readers holding the old list, until the grace period is over
    assert len(lake.date_listing(DAY)) == 4
    later = compact_date(lake, DAY, target_bytes=1 << 20, grace_s=60, horizon=HORIZON, now=1061.0)
    assert not later.compacted and len(later.deleted) == 3
    assert [_unique(i.base_name) for i in lake.date_listing(DAY)] == ["compacted-1-0-*.parquet"]


def test_a_part_written_after_compaction_is_live_and_a_rewrite_of_a_merged_one_is_not(lake):
    t = [utc(2024, 1, 10, 0, 0), utc(2024, 1, 10, 0, 30)]
    merged = _part(lake, 0, 0, 4, t[:1], [1.0])
    compact(lake, target_bytes=1 << 20, grace_s=0, horizon=HORIZON)
    assert not lake.exists(f"{layout.date_dir(DAY)}/{merged}")
    # WHEN the mirror rewrites the merged batch after a crash, and writes the next one
    _part(lake, 0, 0, 4, t[:1], [1.0])
    _part(lake, 0, 5, 5, t[1:], [2.0])
    # THEN only the new batch is live beside the compacted file
    assert [_unique(f.name) for f in lake.live_files(DAY)] == ["compacted-1-0-*.parquet",
                                                               "part-meter-reads-0-5-5.parquet"]
    assert lake.part_retired_or_present(DAY, layout.PartName("meter-reads", 0, 0, 4))
    assert _values(lake, "reads_all") == [(1, 1.0), (2, 2.0)]


def test_big_dates_are_split_to_about_the_target_size(lake):
    starts = [utc(2024, 1, 10, 0, 0)]
    for p in range(40):
        reads = interval_reads(f"MAC{p:06d}", starts * 1, [float(p)])
        table = to_table([Message("meter-reads", 0, p, schema.to_ipc_bytes(reads))], PSEUDONYMS).table
        lake.write_parquet(f"{layout.date_dir(DAY)}/{layout.part_name('meter-reads', 0, p, p)}", table)
    part_size = lake.date_listing(DAY)[0].size
    result = compact_date(lake, DAY, target_bytes=10 * part_size, grace_s=60, horizon=HORIZON)
    assert 3 <= result.outputs <= 5 and result.rows_out == 40
    assert sql(lake, "SELECT count(*), sum(value) FROM reads")["rows"] == [[40, float(sum(range(40)))]]


def test_an_interrupted_compaction_leaves_the_old_files_live(lake, monkeypatch):
    _part(lake, 0, 0, 0, [utc(2024, 1, 10, 0, 0)], [1.0])

    def crash(manifest):
        raise KeyboardInterrupt

    monkeypatch.setattr(lake, "write_manifest", crash)
    with pytest.raises(KeyboardInterrupt):
        compact_date(lake, DAY, target_bytes=1 << 20, grace_s=60, horizon=HORIZON)
    # the compacted file was written but is not live: the manifest was never swapped
    assert "compacted-1-0-*.parquet" in [_unique(i.base_name) for i in lake.date_listing(DAY)]
    assert [f.name for f in lake.live_files(DAY)] == ["part-meter-reads-0-0-0.parquet"]


def test_with_superseded_versions_kept_only_copies_of_one_version_collapse():
    table = _rows(
        {"value": 1.0, "source_version": 1, "kafka_offset": 0},
        {"value": 1.5, "source_version": 2, "kafka_offset": 9},   # a correction ...
        {"value": 1.5, "source_version": 2, "kafka_offset": 5},   # ... published twice
        {"value": 1.7, "source_version": 2, "kafka_offset": 7},   # the same version with another value: a conflict
    )
    out = collapse(table, keep_superseded=True)
    assert out.select(["source_version", "value", "kafka_offset"]).to_pylist() == [
        {"source_version": 2, "value": 1.5, "kafka_offset": 5},
        {"source_version": 2, "value": 1.7, "kafka_offset": 7},
        {"source_version": 1, "value": 1.0, "kafka_offset": 0}]
    assert superseded_rows(out) == 2


def test_the_horizon_is_the_df_cutoff_of_the_last_settlement_reading_the_date_plus_a_margin():
    assert horizon_from(config.Settings()) == HORIZON
    # 2024-01-10 is read by settlements up to 2024-02-07, whose DF cut-off is the end of 2026-06-07 (BST)
    assert HORIZON.end(DAY) == datetime(2026, 7, 7, 23, 0, tzinfo=UTC)
    tight = horizon_from(config.Settings(mirror={"superseded_after_df_days": 0},
                                         jobs={"profile_weeks": 0, "proration_days": 3}))
    assert tight == Horizon(0, 3) and tight.end(DAY) == datetime(2026, 5, 13, 23, 0, tzinfo=UTC)


def test_within_the_horizon_a_superseded_version_stays(lake):
    t = [utc(2024, 1, 10, 0, 0)]
    _part(lake, 0, 0, 4, t, [1.0])
    _part(lake, 0, 5, 9, t, [1.5], version=2)  # a correction
    result = compact_date(lake, DAY, target_bytes=1 << 20, grace_s=60, horizon=HORIZON, now=WITHIN)
    assert (result.compacted, result.past_horizon, result.superseded) == (True, False, 1)
    assert _values(lake, "reads_all") == [(1, 1.0), (1, 1.5)]
    assert _values(lake) == [(1, 1.5)]
    assert lake.manifest(DAY).superseded == 1


def test_the_first_compaction_past_the_horizon_keeps_only_the_latest_version(lake):
    t = [utc(2024, 1, 10, 0, 0)]
    _part(lake, 0, 0, 4, t, [1.0])
    _part(lake, 0, 5, 9, t, [1.5], version=2)
    compact_date(lake, DAY, target_bytes=1 << 20, grace_s=60, horizon=HORIZON, now=WITHIN)
    # WHEN the date passes its horizon, with no new files since
    result = compact_date(lake, DAY, target_bytes=1 << 20, grace_s=60, horizon=HORIZON, now=PAST)
    # THEN it is compacted again, down to the latest version, and the manifest says nothing is left to collapse
    assert (result.compacted, result.past_horizon, result.rows_in, result.rows_out) == (True, True, 2, 1)
    assert _values(lake, "reads_all") == [(1, 1.5)]
    assert (lake.manifest(DAY).generation, lake.manifest(DAY).superseded) == (2, 0)
    again = compact_date(lake, DAY, target_bytes=1 << 20, grace_s=60, horizon=HORIZON, now=PAST + 1)
    assert not again.compacted


@pytest.mark.parametrize("now", [pytest.param(WITHIN, id="within the horizon"), pytest.param(PAST, id="past it")])
def test_copies_of_a_read_always_collapse_to_the_lowest_offset(lake, now):
    t = [utc(2024, 1, 10, 0, 0), utc(2024, 1, 10, 0, 30)]
    _part(lake, 0, 0, 4, t, [1.0, 2.0])
    _part(lake, 0, 5, 9, t, [1.0, 2.0])  # the same reads published again
    result = compact_date(lake, DAY, target_bytes=1 << 20, grace_s=60, horizon=HORIZON, now=now)
    assert (result.rows_in, result.rows_out, result.superseded) == (4, 2, 0)
    rows = sql(lake, "SELECT settlement_period, value, kafka_offset FROM reads_all ORDER BY 1")["rows"]
    assert rows == [[1, 1.0, 0], [2, 2.0, 0]]


def test_a_date_is_merged_a_meter_point_range_at_a_time_within_the_row_budget(lake, monkeypatch):
    import pyarrow.parquet as pq

    from streaming.mirror import compact as compact_mod
    from tests.streaming.mirror.test_lake_hdfs_safety import DAY as DAY_2016
    from tests.streaming.mirror.test_lake_hdfs_safety import part

    # GIVEN 20 meters' 48 reads, published twice (960 reads, 1,920 rows), in four part files
    for k, meters in enumerate((range(0, 10), range(10, 20), range(0, 10), range(10, 20))):
        lake.write_parquet(*part(meters, 100 * k))
    held = []
    real = compact_mod.collapse
    monkeypatch.setattr(compact_mod, "collapse", lambda t, **kw: held.append(t.num_rows) or real(t, **kw))
    # WHEN the date is compacted with a budget of 200 rows (two meters' rows) at a time
    result = compact_date(lake, DAY_2016, target_bytes=1 << 20, grace_s=60, horizon=HORIZON, batch_rows=200)
    # THEN no step held more than the budget, and the output is every read once, sorted by meter point
    assert held and max(held) <= 200 and sum(held) == 1920
    assert (result.rows_in, result.rows_out) == (1920, 960)
    meters = [m for f in lake.live_files(DAY_2016) for m in pq.read_table(f.path).column("meter_point").to_pylist()]
    assert len(meters) == 960 and meters == sorted(meters) and len(set(meters)) == 20
