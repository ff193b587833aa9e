"""The same lake on HDFS (the stack's real NameNode and DataNode, through WebHDFS): mirror, compaction, SQL, and
exactly once under SIGKILL with fewer kill points.

Size of the kill test: METERLAKE_HDFS_KILL_READS (default 200,000) and METERLAKE_HDFS_KILLS (default 6).
"""
from __future__ import annotations

import os
import uuid
from datetime import date

import pytest

from infra.local import hdfs
from infra.local import stack as stack_mod
from meterlake.lake.files import open_lake
from streaming.mirror.compact import compact, horizon_from
from streaming.mirror.consumer import Mirror
from streaming.mirror.query import sql, stats
from tests.streaming.mirror.mirrorhelp import lake_counts, meter_days, mirror_settings, publish
from tests.streaming.mirror.test_mirror_kill import kill_and_restart
from tests.streaming.stackhelp import at_first_call

pytestmark = pytest.mark.stack


@pytest.fixture
def hdfs_settings(kafka_stack, hdfs_stack, tmp_path):
    """Test settings whose lake is a fresh directory on the stack's HDFS."""
    ctx = stack_mod.context(stack_mod.remembered(hdfs_stack))
    url = f"{hdfs.namenode_uri(ctx)}/mirror-tests/{uuid.uuid4().hex[:8]}"
    return mirror_settings(stack_mod.remembered(hdfs_stack), tmp_path).model_copy(update={
        "paths": hdfs_stack.paths.model_copy(update={"lake": url})})


def test_the_mirror_compaction_and_sql_work_on_hdfs(hdfs_settings):
    settings = hdfs_settings
    lake = open_lake(settings)
    assert not lake.local and lake.root.startswith("/mirror-tests/")
    publish(settings, meter_days(6, 2, date(2016, 10, 29)))  # 6 meters x (48 + 50) periods
    publish(settings, meter_days(6, 1, date(2016, 10, 30), seed=9))  # the same reads again, other values
    stats_ = Mirror(settings).run(until_caught_up=True)
    assert stats_.reads == 6 * (48 + 50 + 50)
    assert lake_counts(lake)[:2] == [6 * (48 + 50 + 50), 6 * (48 + 50)]
    before = sql(lake, "SELECT settlement_date, count(*), max(settlement_period) FROM reads GROUP BY 1 ORDER BY 1")
    results = compact(lake, target_bytes=1 << 20, grace_s=0, horizon=horizon_from(settings))  # 2016: past it
    assert [r.rows_out for r in results] == [6 * 48, 6 * 50]
    assert sql(lake, "SELECT settlement_date, count(*), max(settlement_period) FROM reads GROUP BY 1 "
                     "ORDER BY 1") == before == {"columns": ["settlement_date", "count_star()",
                                                             "max(settlement_period)"],
                                                 "rows": [[date(2016, 10, 29), 288, 48],
                                                          [date(2016, 10, 30), 300, 50]]}
    summary = stats(lake)
    assert (summary["files"], summary["rows"], summary["settlement_dates"]) == (
        2, 6 * (48 + 50), [date(2016, 10, 29), date(2016, 10, 30)])


@pytest.mark.slow
def test_sigkills_lose_and_duplicate_nothing_on_hdfs(hdfs_settings, tmp_path):
    reads = int(os.environ.get("METERLAKE_HDFS_KILL_READS", "200000"))
    kills = int(os.environ.get("METERLAKE_HDFS_KILLS", "6"))
    # few settlement dates per batch: on HDFS a file costs several HTTP round trips
    kill_and_restart(hdfs_settings, tmp_path, reads=reads, kills=kills, max_file_rows=10_000, days=2)


def test_a_namenode_restarted_mid_mirror_pauses_the_mirror_which_resumes_and_lands_every_read_once(
        hdfs_settings, monkeypatch):
    import threading

    from meterlake.lake.files import Lake

    # GIVEN reads to mirror, and a NameNode killed -9 at the mirror's first write and started again meanwhile (it
    # refuses connections, then answers from safe mode, then serves)
    settings = hdfs_settings
    publish(settings, meter_days(6, 2, date(2024, 1, 10)))
    restarts: list[threading.Thread] = []

    def restart():
        stack_mod.kill(settings, hdfs.NAMENODE)
        restarts.append(threading.Thread(target=stack_mod.start, args=(settings, hdfs.NAMENODE)))
        restarts[0].start()

    at_first_call(monkeypatch, Lake, "write_parquet", restart)
    try:
        # WHEN the mirror runs until caught up
        stats_ = Mirror(settings).run(until_caught_up=True, deadline_s=600)
    finally:
        for thread in restarts:
            thread.join(timeout=300)
    # THEN it paused while the NameNode was away, resumed, and the lake holds every read once
    assert stats_.sink_failures >= 1
    assert lake_counts(open_lake(settings))[:2] == [6 * 2 * 48, 6 * 2 * 48]
