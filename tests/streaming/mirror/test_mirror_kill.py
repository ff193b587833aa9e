"""Exactly once under SIGKILL: the mirror runs as its own process (the CLI) and is killed at random moments while
reads stream through the real broker; after restarts the lake holds every read exactly once.

Size: METERLAKE_KILL_READS reads (default 1,000,000) and METERLAKE_KILLS kills (default 20).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import date

import pyarrow as pa
import pytest

from meterlake import clients, schema
from streaming import kafka_io
from streaming.mirror.consumer import Mirror
from streaming.mirror.lake import open_lake
from streaming.mirror.query import connect
from tests.streaming.mirror.mirrorhelp import env_of, meter_days, mirror_settings, producer_for

pytestmark = [pytest.mark.stack, pytest.mark.slow]

READS = int(os.environ.get("METERLAKE_KILL_READS", "1000000"))
KILLS = int(os.environ.get("METERLAKE_KILLS", "20"))
CHECKSUM = "SELECT count(*), count(DISTINCT (meter_point, interval_start_utc)), " \
           "sum(hash(meter_point, interval_start_utc, value)) FROM {}"


def _chunks(total_reads: int, pieces: int, days: int) -> list[pa.Table]:
    """Meter-days of 48 reads (ordinary January days), ``pieces`` chunks of distinct meters."""
    meter_days_total = total_reads // 48
    meters = meter_days_total // days
    per_chunk = max(1, meters // pieces)
    out = []
    for i, first in enumerate(range(0, meters, per_chunk)):
        n = min(per_chunk, meters - first)
        out.append(meter_days(n, days, date(2024, 1, 1), seed=i, prefix=f"K{i:03d}M"))
    return out


def _stream(settings, chunks: list[pa.Table], pace_s: float, message_bytes: int, done: threading.Event,
            errors: list) -> None:
    try:
        producer = producer_for(settings)
        for chunk in chunks:
            # small messages and small files: many batches, so kills often land inside one
            kafka_io.publish_reads(producer, settings.kafka.reads_topic, chunk, settings.kafka.partitions,
                                   target_bytes=message_bytes)
            time.sleep(pace_s)
        producer.close()
    except Exception as exc:  # reported by the test
        errors.append(exc)
    finally:
        done.set()


def _checksum(table_sql: str, con) -> tuple:
    return tuple(con.execute(CHECKSUM.format(table_sql)).fetchone())


def kill_and_restart(settings, tmp_path, *, reads: int, kills: int, max_file_rows: int, days: int = 30,
                     message_bytes: int = 16 << 10) -> int:
    """Stream ``reads`` reads while the mirror (the CLI, its own process) is SIGKILLed ``kills`` times at random
    moments and restarted; drain with a last run; check the lake. Returns how many batches were cut short."""
    settings = settings.model_copy(update={"mirror": settings.mirror.model_copy(update={
        "max_file_rows": max_file_rows, "idle_flush_s": 0.3, "instance_id": "kill-test"})})
    clients.ensure_topics(settings)
    chunks = _chunks(reads, kills, days)
    expected_reads = sum(sum(chunk.column("periods").to_pylist()) for chunk in chunks)
    done, errors = threading.Event(), []
    rng = random.Random(20)
    producer = threading.Thread(target=_stream, args=(settings, chunks, 1.5, message_bytes, done, errors))
    producer.start()
    cli = [sys.executable, "-c", "from meterlake.cli import main; main()", "-v", "mirror", "run"]
    env = env_of(settings)
    killed_at = []
    with open(tmp_path / "mirror.log", "ab") as log:
        try:
            for _ in range(kills):
                started = time.monotonic()
                proc = subprocess.Popen(cli, env=env, stdout=subprocess.DEVNULL, stderr=log)
                time.sleep(rng.uniform(1.5, 5.0))
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed_at.append(round(time.monotonic() - started, 2))
        finally:
            producer.join()
    assert not errors, errors
    assert len(killed_at) == kills
    rewritten = (tmp_path / "mirror.log").read_text(errors="replace").count("cut short by the last run")
    print(f"killed after {killed_at} s; {rewritten} batches were cut short and rewritten on restart")
    # WHEN a last run drains what is left
    Mirror(settings).run(until_caught_up=True)
    # THEN the lake holds exactly the reads produced: count, distinct reads and a checksum of every read
    con = connect(open_lake(settings))
    produced = schema.unpack(pa.concat_tables(chunks)).select(["meter_point", "interval_start_utc", "value"])
    con.register("produced", produced)
    expected = _checksum("produced", con)
    assert expected[:2] == (expected_reads, expected_reads)
    assert _checksum("reads_all", con) == expected
    con.close()
    return rewritten


def test_twenty_sigkills_lose_and_duplicate_nothing(kafka_stack, tmp_path):
    settings = mirror_settings(kafka_stack, tmp_path / "lake")
    rewritten = kill_and_restart(settings, tmp_path, reads=READS, kills=KILLS, max_file_rows=2_500)
    if KILLS >= 10:  # the kills did land inside batches, so the repair path ran
        assert rewritten >= 1
