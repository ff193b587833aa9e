"""The mirror against the real broker: exactly N reads land, a crash mid-batch is repaired, bad messages are
quarantined, and the CLI goes from topic to answer."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import pyarrow as pa
import pytest

from meterlake import clients, pseudonym, schema
from meterlake.lake.files import Lake, open_lake
from streaming.mirror.consumer import Mirror
from streaming.mirror.query import sql
from tests.streaming.mirror.mirrorhelp import (
    env_of,
    interval_reads,
    lake_counts,
    meter_days,
    mirror_settings,
    producer_for,
    publish,
    utc,
)

pytestmark = pytest.mark.stack


def test_every_published_read_lands_exactly_once(kafka_stack, tmp_path):
    settings = mirror_settings(kafka_stack, tmp_path / "lake", max_file_rows=5_000)
    sets = meter_days(30, 4, date(2016, 10, 28))  # 30 meters x (48+48+50+48) periods, across the clock change
    publish(settings, sets)
    device = pa.Table.from_batches([schema.build_reads(
        meter_point="1200023305967", fuel="electricity", read_kind="device", device_id="CAD-1",
        interval_start_utc=[utc(2016, 10, 30, 1, 7), utc(2016, 10, 30, 1, 12)], value=[230.0, 250.0], unit="W",
        quality="actual", source_version=1)])
    publish(settings, device, settings.kafka.devices_topic)
    stats = Mirror(settings).run(until_caught_up=True)
    n = 30 * (48 + 48 + 50 + 48)
    assert stats.reads == n + 2
    lake = open_lake(settings)
    expected_sum = round(sum(sum(v) for v in sets.column("values").to_pylist()) + 480.0, 6)
    count, distinct, total = lake_counts(lake)
    assert (count, distinct, round(total, 6)) == (n + 2, n + 2, expected_sum)
    assert sql(lake, "SELECT settlement_date, max(settlement_period) FROM reads WHERE read_kind = 'interval' "
                     "GROUP BY 1 ORDER BY 1")["rows"] == [
        [date(2016, 10, 28), 48], [date(2016, 10, 29), 48], [date(2016, 10, 30), 50], [date(2016, 10, 31), 48]]
    # AND the device's reads carry pseudonyms of its meter point and device id, never the ids themselves
    device_rows = "SELECT count(*) FROM reads_all WHERE meter_point = {} AND device_id = {}"
    assert sql(lake, device_rows.format("'1200023305967'", "'CAD-1'"))["rows"] == [[0]]
    assert sql(lake, device_rows.format("pseudonym('1200023305967')", "pseudonym('CAD-1')"),
               pseudonym.for_settings(settings))["rows"] == [[2]]
    # AND a second run finds nothing new
    again = Mirror(settings).run(until_caught_up=True)
    assert (again.reads, lake_counts(lake)[0]) == (0, n + 2)


def test_a_crash_between_a_batchs_files_is_repaired_by_the_next_run(kafka_stack, tmp_path, monkeypatch):
    # GIVEN reads over two settlement dates on one partition's batch
    settings = mirror_settings(kafka_stack, tmp_path / "lake")
    settings = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"partitions": 1})})
    publish(settings, meter_days(10, 2, date(2024, 1, 10)))
    # WHEN the process dies after the first file of the batch is renamed
    real = Lake.write_parquet
    written = []

    def dies_after_one(self, relative, table):
        if written:
            raise KeyboardInterrupt("killed")
        written.append(relative)
        return real(self, relative, table)

    monkeypatch.setattr(Lake, "write_parquet", dies_after_one)
    with pytest.raises(KeyboardInterrupt):
        Mirror(settings).run(until_caught_up=True)
    monkeypatch.setattr(Lake, "write_parquet", real)
    lake = open_lake(settings)
    assert lake_counts(lake)[0] == 10 * 48  # one date of the batch landed
    # THEN the next run rewrites exactly that batch, skipping the file that is there
    stats = Mirror(settings).run(until_caught_up=True)
    assert (stats.recovered_batches, stats.files_skipped, stats.files) == (1, 1, 1)
    assert lake_counts(lake)[:2] == [2 * 10 * 48, 2 * 10 * 48]


def test_an_unwritable_lake_pauses_the_partitions_and_the_write_is_retried(kafka_stack, tmp_path, monkeypatch):
    settings = mirror_settings(kafka_stack, tmp_path / "lake", max_file_rows=500)
    publish(settings, meter_days(10, 2, date(2024, 1, 10)))
    real = Lake.write_parquet
    failures = []

    def flaky(self, relative, table):
        if len(failures) < 3:  # the lake's disk is full, three times over
            failures.append(relative)
            raise OSError(28, "No space left on device")
        return real(self, relative, table)

    monkeypatch.setattr(Lake, "write_parquet", flaky)
    stats = Mirror(settings).run(until_caught_up=True)
    assert stats.sink_failures == 3
    assert lake_counts(open_lake(settings))[:2] == [2 * 10 * 48, 2 * 10 * 48]


def test_an_incompatible_message_goes_to_quarantine_not_into_the_lake(kafka_stack, tmp_path):
    from kafka import KafkaConsumer

    settings = mirror_settings(kafka_stack, tmp_path / "lake")
    publish(settings, interval_reads("MAC000001", [utc(2024, 1, 10, 0, 0)], [0.5]))
    producer = producer_for(settings)
    producer.send(settings.kafka.reads_topic, key=b"MAC000001", value=b"version 9 in a format we never had",
                  partition=0).get(timeout=30)
    producer.close()
    stats = Mirror(settings).run(until_caught_up=True)
    assert (stats.reads, stats.quarantined) == (1, 1)
    assert lake_counts(open_lake(settings))[0] == 1
    consumer = KafkaConsumer(settings.kafka.quarantine_topic, **clients.kafka_options(settings),
                             auto_offset_reset="earliest", consumer_timeout_ms=3_000)
    records = [row for m in consumer for row in schema.from_ipc_bytes(m.value).to_pylist()]
    consumer.close()
    assert [(r["source_file"].rsplit("/", 2)[0], r["reason"]) for r in records] == [
        (f"kafka:{settings.kafka.reads_topic}", "incompatible_message")]
    assert records[0]["detail"].startswith("not an Arrow IPC stream")


def test_two_shards_split_the_partitions_and_together_land_every_read_once(kafka_stack, tmp_path):
    # GIVEN reads on every partition and two mirrors, each owning half of the partitions by configuration
    settings = mirror_settings(kafka_stack, tmp_path / "lake")
    publish(settings, meter_days(12, 1, date(2024, 1, 10)))

    def shard(i):
        return settings.model_copy(update={"mirror": settings.mirror.model_copy(update={"shards": 2, "shard": i})})

    # WHEN each runs until caught up, one after the other
    first = Mirror(shard(0))
    first_stats = first.run(until_caught_up=True)
    second = Mirror(shard(1))
    second_stats = second.run(until_caught_up=True)
    # THEN each took its own partitions, and together the lake holds every read once
    assert sorted({tp.partition for tp in first._owned}) == [0, 2]  # of 3 partitions per topic
    assert sorted({tp.partition for tp in second._owned}) == [1]
    assert 0 < first_stats.reads < 12 * 48 and first_stats.reads + second_stats.reads == 12 * 48
    assert lake_counts(open_lake(settings))[:2] == [12 * 48, 12 * 48]


def test_from_topic_to_a_households_daily_kwh_through_the_cli(kafka_stack, tmp_path):
    settings = mirror_settings(kafka_stack, tmp_path / "lake")
    reads = pa.concat_tables([
        interval_reads("MAC000002", [utc(2014, 3, 30, 0, 0), utc(2014, 3, 30, 22, 30)], [0.25, 0.5]),
        interval_reads("MAC000002", [utc(2014, 3, 30, 23, 0)], [1.0]),
        interval_reads("MAC000003", [utc(2014, 3, 30, 0, 0)], [9.0]),
    ])
    publish(settings, reads)
    cli = [sys.executable, "-c", "from meterlake.cli import main; main()"]
    env = env_of(settings)
    run = subprocess.run(cli + ["mirror", "run", "--until-caught-up", "--json"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["reads"] == 4
    query = ("SELECT settlement_date, count(*) AS reads, sum(value) AS kwh FROM reads "
             "WHERE meter_point = {} GROUP BY 1 ORDER BY 1")
    out = subprocess.run(cli + ["lake", "sql", query.format("pseudonym('MAC000002')"), "--json"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"columns": ["settlement_date", "reads", "kwh"],
                                      "rows": [["2014-03-30", 2, 0.75], ["2014-03-31", 1, 1.0]]}
    # the lake holds the household's pseudonym, not its id
    out = subprocess.run(cli + ["lake", "sql", query.format("'MAC000002'"), "--json"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert json.loads(out.stdout)["rows"] == []
    stats = json.loads(subprocess.run(cli + ["lake", "stats", "--json"], env=env, capture_output=True, text=True,
                                      timeout=120).stdout)
    assert (stats["rows"], stats["settlement_dates"]) == (4, ["2014-03-30", "2014-03-31"])

