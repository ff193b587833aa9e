"""Erasure and retention of the reads' partitions: a meter's rows leave every date that has them through the
compaction swap, with the files that held them; a date past retention goes whole; nothing else changes."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from meterlake.lake.files import Lake
from streaming.mirror.compact import Horizon, compact, drop_dates, erase
from tests.jobs.helpers import day_of, write_lake_reads

D1, D2, D3 = date(2024, 1, 10), date(2024, 1, 11), date(2024, 1, 12)
HORIZON = Horizon(after_df_days=30, reads_ahead_days=28)
GONE, KEPT = "Pgone", "Pkept"


def _lake(tmp_path: Path) -> Lake:
    import pyarrow.fs as pafs

    lake = Lake(pafs.LocalFileSystem(), str(tmp_path / "lake"))
    write_lake_reads(lake, day_of(GONE, D1, 0.5), offset=0)
    write_lake_reads(lake, day_of(KEPT, D1, 0.25), offset=1)
    write_lake_reads(lake, day_of(GONE, D2, 0.5), offset=2)   # D2: only the erased meter
    write_lake_reads(lake, day_of(KEPT, D3, 0.25), offset=3)  # D3: never had it
    compact(lake, [D1], target_bytes=1 << 20, grace_s=600.0, horizon=HORIZON)  # D1: compacted, inputs retired
    return lake


def _live(lake: Lake, day: date):
    files = [f.path for f in lake.live_files(day)]
    return lake.dataset(files)[0].to_table().sort_by([("meter_point", "ascending"), ("interval_start_utc",
                                                                                     "ascending")])


def _every_file_meters(root: Path) -> set[str]:
    """The meter points in every Parquet file under ``root``, live or not (retired files too)."""
    out: set[str] = set()
    for path in root.rglob("*.parquet"):
        out |= set(pc.unique(pq.read_table(path, columns=["meter_point"])["meter_point"]).to_pylist())
    return out


def test_erasing_a_meter_rewrites_only_its_dates_and_leaves_no_file_holding_it(tmp_path):
    # GIVEN the erased meter on D1 (with another meter, compacted: its inputs wait for the grace period) and
    # alone on D2; D3 never had it
    lake = _lake(tmp_path)
    kept_d1, d3_manifest = _live(lake, D1).filter(pc.equal(_live(lake, D1)["meter_point"], KEPT)), lake.manifest(D3)
    # WHEN it is erased
    results = erase(lake, GONE, target_bytes=1 << 20, horizon=HORIZON)
    # THEN D1 and D2 changed, by its 48 reads each; D3 is as it was (same manifest version, same files)
    assert [(r.settlement_date, r.dropped) for r in results] == [(D1, 48), (D2, 48)]
    assert lake.manifest(D3) == d3_manifest
    # no file in the lake holds it any more, live or retired; the other meter's rows are the same
    assert _every_file_meters(tmp_path / "lake") == {KEPT}
    assert _live(lake, D1).equals(kept_d1) and _live(lake, D2).num_rows == 0
    # and erasing again finds nothing
    assert erase(lake, GONE, target_bytes=1 << 20, horizon=HORIZON) == []


def test_dropping_dates_removes_their_files_and_manifests_and_nothing_else(tmp_path):
    lake = _lake(tmp_path)
    d3 = _live(lake, D3)
    out = drop_dates(lake, [D1, D2])
    assert [(d["settlement_date"], d["files"] > 0) for d in out] == [(D1, True), (D2, True)]
    assert lake.dates() == [D3] and _live(lake, D3).equals(d3)
    assert not (tmp_path / "lake" / "_manifest" / "settlement_date=2024-01-10").exists()
