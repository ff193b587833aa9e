"""Compaction while the mirror writes: readers never see a half-compacted date, and the content is unchanged apart
from collapsed duplicates and superseded versions."""
from __future__ import annotations

import threading
import time
from datetime import date

import pytest

from meterlake.lake.files import open_lake
from streaming.mirror.compact import compact, horizon_from
from streaming.mirror.consumer import Mirror
from streaming.mirror.query import sql
from tests.streaming.mirror.mirrorhelp import VERSION, meter_days, mirror_settings, publish

pytestmark = pytest.mark.stack

SNAPSHOT = """SELECT count(*),
                     count(DISTINCT (meter_point, interval_start_utc, source_version, kafka_partition, kafka_offset)),
                     count(DISTINCT (meter_point, interval_start_utc))
              FROM reads_all"""
LATEST = "SELECT meter_point, interval_start_utc, value, source_version FROM reads ORDER BY 1, 2"


def test_compaction_concurrent_with_the_mirror_changes_nothing_readers_can_see(kafka_stack, tmp_path):
    settings = mirror_settings(kafka_stack, tmp_path / "lake", max_file_rows=300, idle_flush_s=0.2)
    lake = open_lake(settings)
    horizon = horizon_from(settings)  # these 2024 dates are past it: superseded versions collapse too
    # GIVEN 8 meters x 3 days, then a correction of day 2 (a later version), then a republish of day 1 (duplicates)
    original = meter_days(8, 3, date(2024, 3, 30), seed=1)           # 48 + 46 + 48 periods
    correction = meter_days(8, 1, date(2024, 3, 31), seed=2, version=VERSION + 1)
    republish = meter_days(8, 1, date(2024, 3, 30), seed=1)
    stop, snapshots, failures = threading.Event(), [], []
    mirror = Mirror(settings)
    mirror_thread = threading.Thread(target=mirror.run, kwargs={"stop": stop})

    def read_continuously():
        while not stop.is_set():
            try:
                snapshots.append(tuple(sql(lake, SNAPSHOT)["rows"][0]))
            except Exception as exc:  # noqa: BLE001 - a reader must never fail; reported below
                failures.append(repr(exc))

    def compact_continuously():
        while not stop.is_set():
            compact(lake, target_bytes=1 << 20, grace_s=600, horizon=horizon)
            time.sleep(0.05)

    threads = [threading.Thread(target=read_continuously), threading.Thread(target=compact_continuously)]
    mirror_thread.start()
    for t in threads:
        t.start()
    try:
        for table in (original, correction, republish):
            publish(settings, table)
            time.sleep(1.0)
        keys = 8 * (48 + 46 + 48)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and mirror.stats.reads < keys + 8 * 46 + 8 * 48:
            time.sleep(0.2)
        time.sleep(1.0)  # the idle flush of the last batches
    finally:
        stop.set()
        for t in [mirror_thread, *threads]:
            t.join(timeout=120)
    assert not failures, failures[:3]
    # THEN no reader ever counted a read twice (a compacted file and its inputs both live), nor lost one
    assert len(snapshots) > 5
    assert all(rows == distinct for rows, distinct, _ in snapshots)
    seen = [reads for _, _, reads in snapshots]
    assert seen == sorted(seen) and seen[-1] == keys
    # (compaction did run while the mirror wrote: some dates were compacted several times)
    assert max(lake.manifest(d).generation for d in lake.dates()) >= 2
    # AND a last compaction leaves the latest version of every read, each once
    before = sql(lake, LATEST)["rows"]
    compact(lake, target_bytes=1 << 20, grace_s=600, horizon=horizon)
    assert [f.name.split("-")[0] for _, f in lake.all_live_files()] == ["compacted"] * 3
    assert sql(lake, LATEST)["rows"] == before
    assert sql(lake, "SELECT count(*) FROM reads_all")["rows"] == [[keys]]
    versions = sql(lake, "SELECT settlement_date, min(source_version), max(source_version) FROM reads "
                         "GROUP BY 1 ORDER BY 1")["rows"]
    assert versions == [[date(2024, 3, 30), VERSION, VERSION], [date(2024, 3, 31), VERSION + 1, VERSION + 1],
                        [date(2024, 4, 1), VERSION, VERSION]]
